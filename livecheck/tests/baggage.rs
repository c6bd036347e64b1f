//! The test context in W3C baggage (SPEC §6, issue 17): a request or message whose only carrier is the `baggage`
//! header — as an OpenTelemetry-instrumented service passes it on, knowing nothing of LiveCheck — is a test;
//! signed context in baggage is checked as in headers; what LiveCheck writes keeps others' baggage members.

mod support;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{routing::get, Router};
use livecheck::{
    context::{
        append_current_test, Carriers, Headers, BAGGAGE_EXPIRES, BAGGAGE_SIGNATURE, BAGGAGE_TEST_ID, BAGGAGE_TEST_NAME,
        BAGGAGE_TIMESTAMP, HEADER_BAGGAGE, HEADER_EXPIRES, HEADER_SIGNATURE, HEADER_TEST_ID, HEADER_TEST_NAME,
        HEADER_TIMESTAMP,
    },
    current_test,
    http::{LiveCheckLayer, RequestBuilderExt},
    stream::Topic,
    transport::{MemoryTransport, Message, Transport},
    Case, CaseHandle, CaseResult, CaseSettings, LiveCheck, Signal, State, TestContext, TestRun,
};
use support::{builder, signals, until, ReportReader};

const SECRET: &str = "s3cret";

/// Waits 30 s for `stage`.
struct OneStage {
    stage: Signal<()>,
}

impl Case for OneStage {
    type Args = ();
    async fn run(&self, _test: &TestRun, _args: ()) -> CaseResult {
        self.stage.wait(Duration::from_secs(30)).await?;
        Ok(())
    }
}

fn one_stage(app: &LiveCheck) -> CaseHandle<OneStage> {
    app.register(CaseSettings::new("orders"), |s| OneStage { stage: s.declare("stage") }).unwrap()
}

/// The value of header `name` of `test`.
fn header(test: &TestContext, name: &str) -> String {
    test.header_pairs().into_iter().find(|(n, _)| *n == name).unwrap().1
}

/// The baggage an OpenTelemetry SDK that never heard of LiveCheck passes on for `test`: our members among others,
/// with properties and spaces; the timestamp's `+` left as it is (Go does), the expiry's `+` and `:` encoded
/// (Python does).
fn otel_baggage(test: &TestContext) -> String {
    let expires = header(test, HEADER_EXPIRES).replace('+', "%2B").replace(':', "%3A");
    format!(
        "userId=alice;src=web, {BAGGAGE_TEST_ID} = {} ;origin=otel,{BAGGAGE_TEST_NAME}={},{BAGGAGE_TIMESTAMP}={},\
         {BAGGAGE_EXPIRES}={expires}, tenant=acme",
        test.id(),
        test.case_name(),
        header(test, HEADER_TIMESTAMP),
    )
}

/// What a service saw: the test current in each handler call.
type Seen = Arc<Mutex<Vec<Option<String>>>>;

/// A service behind `app`'s layer on a free loopback port, whose handler records the current test and sends
/// `stage` for it (a no-op with none). Returns its URL.
async fn service(app: &LiveCheck, stage: Signal<()>) -> (String, Seen) {
    let seen = Seen::default();
    let handler = {
        let seen = seen.clone();
        move || async move {
            seen.lock().unwrap().push(current_test().map(|t| t.id().to_owned()));
            stage.notify().await.unwrap();
            "ok"
        }
    };
    let router = Router::new().route("/", get(handler)).layer(LiveCheckLayer::new(app));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (format!("http://{address}/"), seen)
}

/// `GET url` with exactly these headers (a name may come several times).
async fn get_with(url: &str, headers: &[(&str, String)]) {
    let request = headers.iter().fold(reqwest::Client::new().get(url), |r, (n, v)| r.header(*n, v));
    request.send().await.unwrap().error_for_status().unwrap();
}

#[tokio::test]
async fn a_request_carrying_the_test_only_in_baggage_runs_its_handler_in_the_test_whose_signal_makes_it_pass() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let case = one_stage(&app);
    let mut reader = ReportReader::new(&transport).await;
    let running = app.start().await.unwrap();
    let (url, seen) = service(&app, case.stage.clone()).await;

    let test = case.trigger_with_id("t-1", &()).await.unwrap();
    get_with(&url, &[(HEADER_BAGGAGE, otel_baggage(&test))]).await;
    let report = reader.next(Duration::from_secs(10)).await;
    assert_eq!((report.state, report.test.unwrap().id), (State::Pass, "t-1".to_owned()));

    // Our members over two `baggage` headers, with one of someone else's between; and a request with no test.
    let second = case.trigger_with_id("t-2", &()).await.unwrap();
    let members = otel_baggage(&second);
    let (first, rest) = members.split_at(members.find(BAGGAGE_TIMESTAMP).unwrap());
    let split = [
        (HEADER_BAGGAGE, first.trim_end_matches(',').to_owned()),
        ("x-other", "y".into()),
        (HEADER_BAGGAGE, rest.to_owned()),
    ];
    get_with(&url, &split).await;
    let report = reader.next(Duration::from_secs(10)).await;
    assert_eq!((report.state, report.test.unwrap().id), (State::Pass, "t-2".to_owned()));
    get_with(&url, &[(HEADER_BAGGAGE, "userId=alice".into())]).await;

    assert_eq!(*seen.lock().unwrap(), [Some("t-1".to_owned()), Some("t-2".to_owned()), None]);
    assert_eq!(current_test(), None);
    assert_eq!(app.metrics().headers_malformed, 0);
    // The signal sent in the handler carries the test in both carriers.
    let bus = signals(&transport);
    let (message, _) = bus.iter().find(|(_, signal)| signal.key == "t-1").unwrap();
    assert_eq!(message.headers.get(HEADER_TEST_ID), Some(&b"t-1"[..]));
    assert_eq!(TestContext::from_headers(&only(&message.headers, HEADER_BAGGAGE)).unwrap(), Some(test));
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn reqwest_adds_a_baggage_header_of_its_own_beside_the_others() {
    let received = Arc::new(Mutex::new(Vec::new()));
    let handler = {
        let received = received.clone();
        move |headers: axum::http::HeaderMap| async move {
            let baggage = headers.get_all(HEADER_BAGGAGE).iter().map(|v| v.to_str().unwrap().to_owned()).collect();
            *received.lock().unwrap() = baggage;
            "ok"
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, Router::new().route("/", get(handler))).await.unwrap() });

    let now = chrono::Utc::now();
    let test = TestContext::new("t-1", "orders", now, now + chrono::Duration::hours(1));
    let request = reqwest::Client::new().get(&url).header(HEADER_BAGGAGE, "userId=alice;p=1");
    livecheck::scope(Some(test.clone()), async { request.with_current_test().send().await }).await.unwrap();

    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 2, "{received:?}");
    assert_eq!(received[0], "userId=alice;p=1");
    let ours: Headers = [(HEADER_BAGGAGE, received[1].clone())].into_iter().collect();
    assert_eq!(TestContext::from_headers(&ours).unwrap(), Some(test));
}

#[tokio::test]
async fn with_signing_on_baggage_without_a_valid_signature_is_no_test_and_is_counted() {
    let server_transport = MemoryTransport::new();
    let server = builder(&server_transport).signing_secret(SECRET).build();
    let stage = one_stage(&server).stage.clone();
    let (url, seen) = service(&server, stage).await;
    let client_transport = MemoryTransport::new();
    let client = builder(&client_transport).signing_secret(SECRET).build();
    let signed = one_stage(&client).trigger_with_id("t-1", &()).await.unwrap();
    let signature = header(&signed, HEADER_SIGNATURE);

    // No signature; a signature of nothing; a genuine signature over another expiry; the genuine signature
    // in the header while the context is in baggage (each carrier brings its own).
    get_with(&url, &[(HEADER_BAGGAGE, otel_baggage(&signed))]).await;
    let zeros = format!("{},{BAGGAGE_SIGNATURE}={}", otel_baggage(&signed), "0".repeat(64));
    get_with(&url, &[(HEADER_BAGGAGE, zeros)]).await;
    let later = TestContext::new("t-1", "orders", signed.timestamp(), signed.expires() + chrono::Duration::days(365));
    let pushed_out = format!("{},{BAGGAGE_SIGNATURE}={signature}", otel_baggage(&later));
    get_with(&url, &[(HEADER_BAGGAGE, pushed_out)]).await;
    get_with(&url, &[(HEADER_BAGGAGE, otel_baggage(&signed)), (HEADER_SIGNATURE, signature.clone())]).await;
    // The genuine one, as an OpenTelemetry SDK passes it on.
    let genuine = format!("{},{BAGGAGE_SIGNATURE}={signature};seen=1", otel_baggage(&signed));
    get_with(&url, &[(HEADER_BAGGAGE, genuine)]).await;

    assert_eq!(*seen.lock().unwrap(), [None, None, None, None, Some("t-1".to_owned())]);
    let metrics = server.metrics();
    assert_eq!((metrics.headers_unsigned, metrics.headers_bad_signature, metrics.headers_malformed), (2, 2, 0));
    let bus = signals(&server_transport);
    assert_eq!(bus.iter().map(|(_, s)| s.key.as_str()).collect::<Vec<_>>(), ["t-1"], "forged requests signal nothing");
    assert_eq!(bus[0].0.headers.get(HEADER_SIGNATURE), Some(signature.as_bytes()), "passed on signed");

    // Messages too: a forged context in baggage is no test for the signing app.
    let forged: Headers = [(HEADER_BAGGAGE, otel_baggage(&later))].into_iter().collect();
    assert_eq!(server.test_from_headers(&forged), None);
    assert_eq!(server.metrics().headers_unsigned, 3);
}

/// The headers of `headers` named `name`.
fn only(headers: &Headers, name: &str) -> Headers {
    headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(n, v)| (n.to_owned(), v.to_vec())).collect()
}

#[tokio::test]
async fn messages_with_only_baggage_are_read_by_agents_and_test_from_headers() {
    let transport = MemoryTransport::with_partitions(1);
    let producer = builder(&transport).context_carriers(Carriers::Baggage).build();
    let consumer = builder(&transport).build();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let agent = {
        let seen = seen.clone();
        Topic::<String>::new(&consumer, "orders")
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
    let orders: Topic<String> = Topic::new(&producer, "orders");
    let test = one_stage(&producer).trigger_with_id("t-1", &()).await.unwrap();
    livecheck::scope(Some(test.clone()), orders.send("k", &"in a test".to_owned())).await.unwrap();
    orders.send("k", &"no test".to_owned()).await.unwrap();

    until(Duration::from_secs(10), || seen.lock().unwrap().len() == 2).await;
    let expected = [("in a test", Some("t-1")), ("no test", None)].map(|(v, t)| (v.to_owned(), t.map(str::to_owned)));
    assert_eq!(*seen.lock().unwrap(), expected);
    agent.shutdown().await;
    let message = &transport.messages("orders")[0].message;
    let names: Vec<&str> = message.headers.iter().map(|(n, _)| n).collect();
    assert_eq!(names, [HEADER_BAGGAGE], "the app writes baggage only");
    // The execution it published, too.
    let execution = &transport.messages("livecheck")[0].message;
    assert_eq!(execution.headers.get(HEADER_TEST_ID), None);
    assert_eq!(TestContext::from_headers(&execution.headers).unwrap(), Some(test.clone()));

    // Several `baggage` headers, our members spread over them, among others.
    let text = otel_baggage(&test);
    let mut several = Headers::new();
    for (i, part) in text.split(',').enumerate() {
        several.push(if i % 2 == 0 { "baggage" } else { "Baggage" }, part.to_owned());
        several.push("other", "x");
    }
    assert_eq!(consumer.test_from_headers(&several), Some(test));
    assert_eq!(consumer.metrics().headers_malformed, 0);
    // A malformed member of ours is malformed test context: counted.
    let broken: Headers = [(HEADER_BAGGAGE, text.replace("t-1", "t-%zz"))].into_iter().collect();
    assert_eq!(consumer.test_from_headers(&broken), None);
    assert_eq!(consumer.metrics().headers_malformed, 1);
}

#[tokio::test]
async fn a_message_produced_in_a_test_keeps_the_baggage_members_of_others() {
    let transport = MemoryTransport::with_partitions(1);
    let app = builder(&transport).build();
    let now = chrono::Utc::now();
    let stale = TestContext::new("stale", "orders", now, now + chrono::Duration::hours(1));
    let test = TestContext::new("t-1", "orders", now, now + chrono::Duration::hours(1));
    let foreign = "userId=alice;p=1;q, tenant = acme";
    let mut headers: Headers = [("traceparent", "00-abc-def-01".to_owned())].into_iter().collect();
    // A baggage header already there, with someone else's members and another test's members in it.
    headers.push(HEADER_BAGGAGE, format!("{foreign},{}", otel_baggage(&stale)));
    livecheck::scope(Some(test.clone()), async { append_current_test(&mut headers) }).await;
    let message = Message { key: Some("k".into()), value: b"{}".to_vec(), headers };
    transport.publish("orders", message).await.unwrap();

    let published = &transport.messages("orders")[0].message.headers;
    let names: Vec<&str> = published.iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        ["traceparent", HEADER_BAGGAGE, HEADER_TEST_ID, HEADER_TEST_NAME, HEADER_TIMESTAMP, HEADER_EXPIRES],
        "one baggage header, where it was"
    );
    let baggage = std::str::from_utf8(published.get(HEADER_BAGGAGE).unwrap()).unwrap();
    assert!(baggage.starts_with("userId=alice;p=1;q,tenant = acme,"), "{baggage}");
    assert_eq!(baggage.matches("livecheck.test.id").count(), 1, "{baggage}");
    assert!(!baggage.contains("stale") && !baggage.contains("origin=otel"), "{baggage}");
    assert_eq!(TestContext::from_headers(&only(published, HEADER_BAGGAGE)).unwrap(), Some(test.clone()));
    assert_eq!(app.test_from_headers(published), Some(test));
}

#[tokio::test(start_paused = true)]
async fn a_signing_instance_passes_a_test_whose_context_travels_only_in_baggage_and_counts_unsigned_baggage() {
    let transport = MemoryTransport::new();
    let instance = builder(&transport).signing_secret(SECRET).context_carriers(Carriers::Baggage).build();
    let _instance_case = one_stage(&instance);
    let service = builder(&transport).signing_secret(SECRET).context_carriers(Carriers::Baggage).build();
    let case = one_stage(&service);
    let mut reader = ReportReader::new(&transport).await;
    let running = instance.start().await.unwrap();

    // A service without the secret: its signal's baggage is unsigned, which the instance sees on the bus.
    let outsider = builder(&transport).signing_secret("").context_carriers(Carriers::Baggage).build();
    let outsider_case = one_stage(&outsider);
    let now = chrono::Utc::now();
    let forged = TestContext::new("forged", "orders", now, now + chrono::Duration::hours(1));
    livecheck::scope(Some(forged), outsider_case.stage.notify()).await.unwrap();

    let test = case.trigger_with_id("t-1", &()).await.unwrap();
    livecheck::scope(Some(test), case.stage.notify()).await.unwrap();
    let report = reader.next(Duration::from_secs(5)).await;
    assert_eq!((report.state, report.test.unwrap().id), (State::Pass, "t-1".to_owned()));
    let bus = signals(&transport);
    let (message, _) = bus.iter().find(|(_, signal)| signal.key == "t-1").unwrap();
    let names: Vec<&str> = message.headers.iter().map(|(n, _)| n).collect();
    assert_eq!(names, [HEADER_BAGGAGE]);
    assert!(std::str::from_utf8(message.headers.get(HEADER_BAGGAGE).unwrap()).unwrap().contains(BAGGAGE_SIGNATURE));
    until(Duration::from_secs(1), || instance.metrics().signals_received == 2).await;
    let metrics = instance.metrics();
    assert_eq!((metrics.headers_unsigned, metrics.headers_bad_signature, metrics.headers_malformed), (1, 0, 0));
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn headers_only_writes_no_baggage_and_baggage_with_no_room_is_counted() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).context_carriers(Carriers::Headers).build();
    let case = one_stage(&app);
    let test = case.trigger_with_id("t-1", &()).await.unwrap();
    livecheck::scope(Some(test), case.stage.notify()).await.unwrap();
    for stream in ["livecheck", "livecheck-bus"] {
        let headers = &transport.messages(stream)[0].message.headers;
        assert_eq!((headers.len(), headers.get(HEADER_BAGGAGE)), (4, None), "{stream}");
    }

    // A test id too long for baggage: the headers go, the baggage does not, and it is counted.
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let long_id = "x".repeat(9000);
    one_stage(&app).trigger_with_id(&long_id, &()).await.unwrap();
    let headers = &transport.messages("livecheck")[0].message.headers;
    assert_eq!((headers.get(HEADER_TEST_ID), headers.get(HEADER_BAGGAGE)), (Some(long_id.as_bytes()), None));
    assert_eq!(app.metrics().baggage_over_limits, 1);
}
