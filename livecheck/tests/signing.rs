//! The signed test context (SPEC §6): with a shared secret, the test headers carry a signature; test context from
//! outside without one, or with a wrong one, is no test, and counted. HTTP over real servers on loopback, messages
//! through agents, signals on the bus of a running instance.

mod support;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{routing::get, Router};
use livecheck::{
    context::{
        append_current_test, Headers, HEADER_EXECUTION_SIGNATURE, HEADER_EXPIRES, HEADER_SIGNATURE, HEADER_TEST_ID,
    },
    current_test,
    http::{LiveCheckLayer, RequestBuilderExt},
    stream::Topic,
    transport::{MemoryTransport, Message, Transport},
    Case, CaseResult, CaseSettings, LiveCheck, LiveCheckBuilder, Signal, State, TestContext, TestRun,
};
use support::{builder, executions, signals, until, ReportReader};

const SECRET: &str = "s3cret";

/// Waits for `stage` (30 s), noting whether the test context it writes carries a signature.
struct OneStage {
    stage: Signal<()>,
    writes_signature: Arc<Mutex<Option<bool>>>,
}

impl Case for OneStage {
    type Args = ();
    async fn run(&self, _test: &TestRun, _args: ()) -> CaseResult {
        let mut headers = Headers::new();
        append_current_test(&mut headers);
        *self.writes_signature.lock().unwrap() = Some(headers.get(HEADER_SIGNATURE).is_some());
        self.stage.wait(Duration::from_secs(30)).await?;
        Ok(())
    }
}

fn one_stage(app: &LiveCheck) -> livecheck::CaseHandle<OneStage> {
    app.register(CaseSettings::new("orders"), |s| OneStage {
        stage: s.declare("stage"),
        writes_signature: Arc::default(),
    })
    .unwrap()
}

/// A builder on `transport` that signs test context with `secret`.
fn signing(transport: &MemoryTransport, secret: &str) -> LiveCheckBuilder {
    builder(transport).signing_secret(secret)
}

/// A context claiming to be a test of `orders`, expiring in year 9999.
fn forged(id: &str) -> TestContext {
    let far = "9999-12-31T23:59:59Z".parse().unwrap();
    TestContext::new(id, "orders", chrono::Utc::now(), far)
}

/// What a service saw: the test current in each handler call, and the signature header it received.
#[derive(Clone, Default)]
struct Seen {
    tests: Arc<Mutex<Vec<Option<String>>>>,
    signatures: Arc<Mutex<Vec<Option<String>>>>,
}

/// A service behind `app`'s layer on a free loopback port, whose handler records what it sees, sends `stage` for
/// the current test (a no-op with none) and calls `next` with the current test. Returns its URL.
async fn service(app: &LiveCheck, stage: Option<Signal<()>>, next: Option<String>) -> (String, Seen) {
    let seen = Seen::default();
    let handler = {
        let seen = seen.clone();
        move |headers: axum::http::HeaderMap| async move {
            seen.tests.lock().unwrap().push(current_test().map(|t| t.id().to_owned()));
            let signature = headers.get(HEADER_SIGNATURE).map(|v| v.to_str().unwrap().to_owned());
            seen.signatures.lock().unwrap().push(signature);
            if let Some(stage) = stage {
                stage.notify().await.unwrap();
            }
            if let Some(next) = next {
                reqwest::Client::new().get(next).with_current_test().send().await.unwrap();
            }
            "ok"
        }
    };
    let router = Router::new().route("/", get(handler)).layer(LiveCheckLayer::new(app));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (format!("http://{address}/"), seen)
}

/// `GET url` with exactly these headers.
async fn get_with(url: &str, headers: impl IntoIterator<Item = (&'static str, String)>) {
    let request = headers.into_iter().fold(reqwest::Client::new().get(url), |r, (n, v)| r.header(n, v));
    request.send().await.unwrap().error_for_status().unwrap();
}

#[tokio::test]
async fn a_forged_http_request_is_no_test_sends_no_signal_and_is_counted_while_a_signed_one_carries_the_test() {
    let server_transport = MemoryTransport::new();
    let server = signing(&server_transport, SECRET).build();
    let stage = one_stage(&server).stage.clone();
    let (url, seen) = service(&server, Some(stage), None).await;

    // No signature, a signature of nothing, and a signed context whose expiry was pushed out afterwards.
    get_with(&url, forged("forged-1").header_pairs()).await;
    let zeros = forged("forged-2").header_pairs().into_iter().chain([(HEADER_SIGNATURE, "0".repeat(64))]);
    get_with(&url, zeros).await;
    let client_transport = MemoryTransport::new();
    let client = signing(&client_transport, SECRET).build();
    let case = one_stage(&client);
    let tampered = case.trigger_with_id("tampered", &()).await.unwrap().header_pairs().into_iter().map(|(n, v)| {
        let v = if n == HEADER_EXPIRES { "9999-12-31T23:59:59+00:00".to_owned() } else { v };
        (n, v)
    });
    get_with(&url, tampered).await;
    // A test triggered by an app with the secret.
    let test = case.trigger_with_id("t-1", &()).await.unwrap();
    let sent_signature = test.header_pairs().into_iter().find(|(n, _)| *n == HEADER_SIGNATURE).map(|(_, v)| v);
    assert!(sent_signature.is_some(), "a test triggered with a secret carries its signature");
    livecheck::scope(Some(test), async { reqwest::Client::new().get(&url).with_current_test().send().await })
        .await
        .unwrap();

    assert_eq!(*seen.tests.lock().unwrap(), vec![None, None, None, Some("t-1".to_owned())]);
    assert_eq!(seen.signatures.lock().unwrap()[3], sent_signature);
    let metrics = server.metrics();
    assert_eq!((metrics.headers_unsigned, metrics.headers_bad_signature, metrics.headers_malformed), (1, 2, 0));
    let bus = signals(&server_transport);
    assert_eq!(bus.iter().map(|(_, s)| s.key.as_str()).collect::<Vec<_>>(), ["t-1"], "forged requests signal nothing");
    assert!(bus[0].0.headers.get(HEADER_SIGNATURE).is_some(), "the signal carries the signature");
}

#[tokio::test]
async fn during_rotation_the_previous_secret_is_accepted_and_passed_on_signed_with_the_current_one() {
    let transport = MemoryTransport::new();
    let downstream = signing(&transport, "new").build();
    let (downstream_url, downstream_seen) = service(&downstream, None, None).await;
    let rotated = signing(&transport, "new").previous_signing_secret("old").build();
    let (url, seen) = service(&rotated, None, Some(downstream_url)).await;

    for (secret, id) in [("old", "signed-old"), ("new", "signed-new"), ("guess", "signed-unknown")] {
        let client = signing(&transport, secret).build();
        let test = one_stage(&client).trigger_with_id(id, &()).await.unwrap();
        livecheck::scope(Some(test), async { reqwest::Client::new().get(&url).with_current_test().send().await })
            .await
            .unwrap();
    }

    let expected = |ids: &[&str]| ids.iter().map(|id| (!id.is_empty()).then(|| id.to_string())).collect::<Vec<_>>();
    assert_eq!(*seen.tests.lock().unwrap(), expected(&["signed-old", "signed-new", ""]));
    // The downstream service knows only the new secret: the old signature was replaced on the way.
    assert_eq!(*downstream_seen.tests.lock().unwrap(), expected(&["signed-old", "signed-new", ""]));
    assert_eq!(rotated.metrics().headers_bad_signature, 1);
    assert_eq!(downstream.metrics().headers_bad_signature + downstream.metrics().headers_unsigned, 0);
}

#[tokio::test]
async fn an_agent_handles_unsigned_messages_with_no_test_and_counts_them() {
    let transport = MemoryTransport::with_partitions(1);
    let worker = signing(&transport, SECRET).build();
    let outsider = builder(&transport).signing_secret("").build();
    let case = one_stage(&worker);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let orders: Topic<String> = Topic::new(&worker, "orders");
    let agent = {
        let seen = seen.clone();
        orders
            .agent("worker", 1, move |event| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push((event.value, current_test().map(|t| t.id().to_owned())));
                    Ok(())
                }
            })
            .await
            .unwrap()
    };
    // Produced by an app without the secret: unsigned.
    let outside: Topic<String> = Topic::new(&outsider, "orders");
    livecheck::scope(Some(forged("forged")), outside.send("k", &"from outside".to_owned())).await.unwrap();
    // A triggered test, and a context made by hand: the app signs what it writes.
    let test = case.trigger_with_id("t-1", &()).await.unwrap();
    livecheck::scope(Some(test), orders.send("k", &"triggered".to_owned())).await.unwrap();
    let by_hand =
        TestContext::new("t-2", "orders", chrono::Utc::now(), chrono::Utc::now() + chrono::Duration::hours(1));
    livecheck::scope(Some(by_hand), orders.send("k", &"by hand".to_owned())).await.unwrap();

    until(Duration::from_secs(10), || seen.lock().unwrap().len() == 3).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [("from outside", None), ("triggered", Some("t-1")), ("by hand", Some("t-2"))]
            .map(|(v, t)| (v.to_owned(), t.map(str::to_owned)))
    );
    assert_eq!(worker.metrics().headers_unsigned, 1);
    agent.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_signing_instance_passes_signed_tests_and_counts_unsigned_signals_on_the_bus() {
    let transport = MemoryTransport::new();
    let instance = signing(&transport, SECRET).build();
    let instance_case = one_stage(&instance);
    let service = signing(&transport, SECRET).build();
    let case = one_stage(&service);
    let outsider = builder(&transport).signing_secret("").build();
    let outsider_case = one_stage(&outsider);
    let mut reader = ReportReader::new(&transport).await;
    let running = instance.start().await.unwrap();

    livecheck::scope(Some(forged("forged")), outsider_case.stage.notify()).await.unwrap();
    let test = case.trigger_with_id("t-1", &()).await.unwrap();
    livecheck::scope(Some(test), case.stage.notify()).await.unwrap();

    let report = reader.next(Duration::from_secs(5)).await;
    assert_eq!((report.state, report.test.unwrap().id), (State::Pass, "t-1".to_owned()));
    until(Duration::from_secs(1), || instance.metrics().signals_received == 2).await;
    let metrics = instance.metrics();
    assert_eq!((metrics.headers_unsigned, metrics.headers_bad_signature, metrics.headers_malformed), (1, 0, 0));
    assert_eq!(*instance_case.writes_signature.lock().unwrap(), Some(true), "the executing test is signed too");
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn without_a_secret_the_signature_header_is_neither_checked_nor_written() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).signing_secret("").build();
    let test = one_stage(&app).trigger_with_id("t-1", &()).await.unwrap();
    // The four headers and baggage, no signature.
    assert_eq!(test.header_pairs().len(), 5);
    assert!(test.header_pairs().iter().all(|(n, v)| *n != HEADER_SIGNATURE && !v.contains("signature")));
    assert_eq!(executions(&transport).len(), 1);
    let published = &transport.messages("livecheck")[0].message.headers;
    assert_eq!((published.len(), published.get(HEADER_SIGNATURE)), (5, None));

    let mut headers: Headers = forged("f-1").header_pairs().into_iter().collect();
    headers.push(HEADER_SIGNATURE, "not even hex");
    assert_eq!(app.test_from_headers(&headers).map(|t| t.id().to_owned()), Some("f-1".to_owned()));
    let metrics = app.metrics();
    assert_eq!((metrics.headers_unsigned, metrics.headers_bad_signature, metrics.headers_malformed), (0, 0, 0));
    assert_eq!(headers.get(HEADER_TEST_ID), Some(&b"f-1"[..]));
}

/// Executions on the pending-tests stream are signed too: with signing on, one without an execution signature, with
/// a wrong one, with genuine test headers but no execution signature, with its arguments or expiry changed after
/// signing, or stored under another key than its id is refused — never run, never in the case's health, counted — while a genuine one runs.
#[tokio::test(start_paused = true)]
async fn a_signing_instance_runs_only_executions_signed_over_their_whole_content() {
    let transport = MemoryTransport::new();
    let instance = signing(&transport, SECRET).build();
    let instance_case = one_stage(&instance);
    let service = signing(&transport, SECRET).build();
    let case = one_stage(&service);
    let mut reader = ReportReader::new(&transport).await;
    let running = instance.start().await.unwrap();

    // What a service with the secret publishes: the execution and its signature.
    let genuine = {
        let sibling = MemoryTransport::new();
        let app = signing(&sibling, SECRET).build();
        one_stage(&app).trigger_with_id("copied", &()).await.unwrap();
        (*sibling.messages("livecheck")[0].message).clone()
    };
    assert!(genuine.headers.get(HEADER_EXECUTION_SIGNATURE).is_some(), "a signing app signs its executions");
    let publish = |message: Message| {
        let transport = transport.clone();
        async move { transport.publish("livecheck", message).await.unwrap() }
    };
    // 1. No headers at all.
    let bare = Message { headers: Headers::new(), key: Some("bare".into()), ..genuine.clone() };
    publish(bare).await;
    // 2. Test headers correctly signed, but no execution signature.
    let mut context_only = genuine.clone();
    context_only.headers = genuine
        .headers
        .iter()
        .filter(|(n, _)| *n != HEADER_EXECUTION_SIGNATURE)
        .map(|(n, v)| (n.to_owned(), v.to_vec()))
        .collect();
    publish(context_only).await;
    // 3. Arguments and expiry changed after signing.
    let mut tampered = genuine.clone();
    tampered.value =
        String::from_utf8(genuine.value.clone()).unwrap().replace("\"test_args\":[]", "\"test_args\":[1]").into_bytes();
    assert_ne!(tampered.value, genuine.value);
    publish(tampered).await;
    // 4. Signed with another secret, through the public API (as `livecheck trigger` with a wrong secret does).
    let outsider = signing(&transport, "guess").build();
    outsider.trigger_by_name("orders", Some("wrong-secret"), &(), Duration::from_secs(60)).await.unwrap();
    // 5. No secret at all.
    let unsigned = builder(&transport).signing_secret("").build();
    unsigned.trigger_by_name("orders", Some("no-secret"), &(), Duration::from_secs(60)).await.unwrap();
    // 6. A genuine execution stored under another key (another partition: maybe another instance).
    let mut rekeyed = genuine.clone();
    rekeyed.key = Some("another-key".into());
    publish(rekeyed).await;
    // And a genuine one.
    let test = case.trigger_with_id("t-1", &()).await.unwrap();
    livecheck::scope(Some(test), case.stage.notify()).await.unwrap();

    let report = reader.next(Duration::from_secs(5)).await;
    assert_eq!((report.state, report.test.unwrap().id), (State::Pass, "t-1".to_owned()));
    until(Duration::from_secs(1), || instance.metrics().tests_received == 7).await;
    // Long after every refused test would have timed out, nothing else was reported.
    assert!(reader.next_within(Duration::from_secs(120)).await.is_none(), "a refused execution ran");
    let metrics = instance.metrics();
    assert_eq!((metrics.tests_unsigned, metrics.tests_bad_signature), (3, 3));
    assert_eq!(metrics.tests_finished, 1);
    let health = instance_case.health();
    assert_eq!((health.count(State::Pass), health.total_failures), (1, 0), "refused tests are not in the health");
    assert_eq!(health.interval_median_seconds, None, "refused tests do not count as arrivals");
    running.shutdown().await.unwrap();
}
