//! HTTP propagation and the fake-request client against real HTTP servers on loopback (SPEC appendix 5, 6
//! and 28; SPEC §5 item 7).

use std::{
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use axum::{extract::State, http::StatusCode, routing::get, Router};
use livecheck::{
    context::{HEADER_EXPIRES, HEADER_TEST_ID},
    current_test,
    http::{FakeRequestClient, LiveCheckLayer, RequestBuilderExt},
    CaseSettings, Error, LiveCheck, TestContext,
};

/// Serves `router` on a free loopback port until the test ends; returns its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{address}")
}

fn test(id: &str) -> TestContext {
    let now = chrono::Utc::now();
    TestContext::new(id, "orders", now, now + chrono::Duration::hours(3))
}

#[derive(Clone, Default)]
struct Seen {
    /// The current test id each handler call saw, and what the downstream call received.
    handler: Arc<Mutex<Vec<Option<String>>>>,
    downstream: Arc<Mutex<Vec<Option<String>>>>,
    base: Arc<Mutex<String>>,
}

async fn front(State(seen): State<Seen>) -> &'static str {
    seen.handler.lock().unwrap().push(current_test().map(|t| t.id().to_owned()));
    let base = seen.base.lock().unwrap().clone();
    reqwest::Client::new().get(format!("{base}/downstream")).with_current_test().send().await.unwrap();
    "ok"
}

async fn downstream(State(seen): State<Seen>, headers: axum::http::HeaderMap) -> &'static str {
    let id = headers.get(HEADER_TEST_ID).map(|v| v.to_str().unwrap().to_owned());
    seen.downstream.lock().unwrap().push(id);
    "ok"
}

#[tokio::test]
async fn a_request_with_test_headers_sees_the_test_in_its_handler_only_and_passes_it_on() {
    let app = LiveCheck::builder().build();
    let seen = Seen::default();
    let router = Router::new()
        .route("/front", get(front))
        .route("/downstream", get(downstream))
        .layer(LiveCheckLayer::new(&app))
        .with_state(seen.clone());
    let base = serve(router).await;
    *seen.base.lock().unwrap() = base.clone();

    let client = reqwest::Client::new();
    livecheck::scope(Some(test("t-1")), async { client.get(format!("{base}/front")).with_current_test().send().await })
        .await
        .unwrap();
    client.get(format!("{base}/front")).with_current_test().send().await.unwrap();

    assert_eq!(*seen.handler.lock().unwrap(), vec![Some("t-1".to_owned()), None]);
    assert_eq!(*seen.downstream.lock().unwrap(), vec![Some("t-1".to_owned()), None]);
    assert_eq!(current_test(), None);
}

#[tokio::test]
async fn partial_or_malformed_http_headers_mean_no_test_and_are_counted() {
    let app = LiveCheck::builder().build();
    let seen = Seen::default();
    let router = Router::new()
        .route("/downstream", get(downstream))
        .route(
            "/front",
            get(|State(seen): State<Seen>| async move {
                seen.handler.lock().unwrap().push(current_test().map(|t| t.id().to_owned()));
                "ok"
            }),
        )
        .layer(LiveCheckLayer::new(&app))
        .with_state(seen.clone());
    let base = serve(router).await;
    let client = reqwest::Client::new();
    let pairs = test("t-1").header_pairs();
    // Only the id.
    client.get(format!("{base}/front")).header(HEADER_TEST_ID, "t-1").send().await.unwrap();
    // All four, but the expiry is not a timestamp.
    let mut bad = client.get(format!("{base}/front"));
    for (name, value) in &pairs {
        bad = bad.header(*name, if *name == HEADER_EXPIRES { "tomorrow" } else { value.as_str() });
    }
    bad.send().await.unwrap();
    assert_eq!(*seen.handler.lock().unwrap(), vec![None, None]);
    assert_eq!(app.metrics().headers_malformed, 2);
}

/// A server that answers 500 `failures` times, then 200 with a body; counts requests.
async fn flaky(failures: u32, status: StatusCode) -> (String, Arc<AtomicU32>) {
    let count = Arc::new(AtomicU32::new(0));
    let router = Router::new()
        .route(
            "/",
            get(move |State(count): State<Arc<AtomicU32>>| async move {
                let n = count.fetch_add(1, Ordering::SeqCst);
                if n < failures {
                    (status, "no")
                } else {
                    (StatusCode::OK, "payload")
                }
            }),
        )
        .route(
            "/hang",
            get(|State(count): State<Arc<AtomicU32>>| async move {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .with_state(count.clone());
    (serve(router).await, count)
}

fn settings() -> CaseSettings {
    CaseSettings::new("c")
        .url_error_retries(3)
        .url_error_delay_min(Duration::from_millis(10))
        .url_error_delay_backoff(2.0)
        .url_error_delay_max(Duration::from_millis(30))
        .url_timeout_total(Duration::from_millis(300))
}

#[tokio::test]
async fn three_server_errors_then_success_returns_the_payload() {
    let (base, count) = flaky(3, StatusCode::INTERNAL_SERVER_ERROR).await;
    let client = FakeRequestClient::new(&settings()).unwrap();
    let started = Instant::now();
    assert_eq!(client.get(&base).await.unwrap(), b"payload");
    assert_eq!(count.load(Ordering::SeqCst), 4);
    assert!(started.elapsed() >= Duration::from_millis(10 + 20 + 30), "backoff 10, 20, then capped at 30 ms");
}

#[tokio::test]
async fn persistent_server_errors_end_in_service_down_after_the_retries() {
    let (base, count) = flaky(u32::MAX, StatusCode::BAD_GATEWAY).await;
    let client = FakeRequestClient::new(&settings()).unwrap();
    let error = client.get(&base).await.unwrap_err();
    assert!(
        matches!(&error, Error::ServiceDown { url: Some(url), reason }
            if *url == base && reason.contains("502") && reason.contains("3 retries")),
        "{error}"
    );
    assert_eq!(count.load(Ordering::SeqCst), 4, "one try and three retries");
}

#[tokio::test]
async fn a_refused_connection_ends_in_service_down() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let client = FakeRequestClient::new(&settings()).unwrap();
    let error = client.get(&format!("http://{address}/")).await.unwrap_err();
    // The cause, not only reqwest's "error sending request".
    assert!(
        matches!(&error, Error::ServiceDown { reason, .. } if reason.to_lowercase().contains("connection refused")),
        "{error}"
    );
}

#[tokio::test]
async fn a_client_error_fails_at_once_without_retries() {
    let (base, count) = flaky(u32::MAX, StatusCode::NOT_FOUND).await;
    let client = FakeRequestClient::new(&settings()).unwrap();
    let error = client.get(&base).await.unwrap_err();
    assert!(matches!(error, Error::HttpStatus { status: 404, .. }), "{error}");
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_hung_server_hits_the_total_timeout_and_is_retried() {
    let (base, count) = flaky(0, StatusCode::OK).await;
    let client = FakeRequestClient::new(&settings()).unwrap();
    let started = Instant::now();
    let error = client.get(&format!("{base}/hang")).await.unwrap_err();
    assert!(matches!(&error, Error::ServiceDown { reason, .. } if reason.contains("timed out")), "{error}");
    assert_eq!(count.load(Ordering::SeqCst), 4, "timeouts are retried");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(4 * 300) && elapsed < Duration::from_secs(5), "{elapsed:?}");
}
