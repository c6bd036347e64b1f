//! Spans as signals over a real HTTP connection (feature `web`): an OTLP/HTTP export (JSON, gzip) carrying a test's
//! context as span attributes (what OpenTelemetry's baggage span processors write) becomes the case's signal, its
//! value the span; non-test spans are counted and dropped; forged contexts with signing on, malformed, oversized
//! and mistyped bodies are refused and counted, never a signal, never a panic. The real Python and Node services
//! are in `otel_services.rs`.

mod support;

use std::{io::Write, time::Duration};

use livecheck::{
    spans::{Span, SpanSelector},
    transport::MemoryTransport,
    Case, CaseHandle, CaseResult, CaseSettings, LiveCheck, Running, Signal, State, TestContext, TestRun,
};
use serde_json::{json, Value};
use support::ReportReader;

/// The execution stage is a span of the `execution` service; its `order.side` must be the side ordered.
struct Execution {
    executed: Signal<Span>,
}

impl Case for Execution {
    type Args = String;
    async fn run(&self, test: &TestRun, side: String) -> CaseResult {
        let span = self.executed.wait(Duration::from_secs(5)).await?;
        test.log(format!("executed in {:.3}s", span.duration_seconds));
        assert_eq!(span.attribute_str("order.side"), Some(side.as_str()), "the side the execution stage saw");
        assert!(!span.status.is_error(), "the execution span's status: {:?}", span.status);
        Ok(())
    }
}

fn register(app: &LiveCheck) -> CaseHandle<Execution> {
    let settings = CaseSettings::new("orders.execute")
        .test_expires(Duration::from_secs(600))
        .span_signal("executed", SpanSelector::named("execute order").service("execution"));
    app.register(settings, |s| Execution { executed: s.declare("executed") }).unwrap()
}

async fn start(transport: &MemoryTransport, secret: Option<&str>) -> (LiveCheck, Running, String) {
    let mut builder = LiveCheck::builder()
        .transport(transport.clone())
        .web_address("127.0.0.1:0")
        .trace_url("http://traces.example/trace/{trace_id}");
    if let Some(secret) = secret {
        builder = builder.signing_secret(secret);
    }
    let app = builder.build();
    register(&app);
    let running = app.start().await.unwrap();
    let base = format!("http://{}", running.web_address().unwrap());
    (app, running, base)
}

fn attribute(key: &str, value: Value) -> Value {
    let value = match value {
        Value::String(s) => json!({ "stringValue": s }),
        Value::Bool(b) => json!({ "boolValue": b }),
        other => json!({ "intValue": other.to_string() }),
    };
    json!({ "key": key, "value": value })
}

/// An OTLP JSON export of one span of `service`, with `test`'s context (when given) and `attributes`.
fn export(service: &str, name: &str, test: Option<&TestContext>, attributes: &[(&str, Value)]) -> Value {
    let mut all: Vec<Value> = attributes.iter().map(|(k, v)| attribute(k, v.clone())).collect();
    if let Some(test) = test {
        let members =
            ["livecheck.test.id", "livecheck.test.name", "livecheck.test.timestamp", "livecheck.test.expires"];
        let pairs = test.header_pairs();
        for (member, (_, value)) in members.iter().zip(&pairs) {
            all.push(attribute(member, Value::String(value.clone())));
        }
        if let Some((_, signature)) = pairs.iter().find(|(name, _)| *name == livecheck::context::HEADER_SIGNATURE) {
            all.push(attribute("livecheck.test.signature", Value::String(signature.clone())));
        }
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    json!({"resourceSpans": [{
        "resource": {"attributes": [attribute("service.name", Value::String(service.to_owned()))]},
        "scopeSpans": [{"spans": [{
            "traceId": TRACE_ID, "spanId": "00f067aa0ba902b7", "name": name, "kind": 2,
            "startTimeUnixNano": (now - 3_000_000).to_string(), "endTimeUnixNano": now.to_string(),
            "attributes": all, "status": {}
        }]}]
    }]})
}

/// The trace every span of these tests is in.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

async fn post(base: &str, body: Vec<u8>, content_type: &str, gzip: bool) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(format!("{base}/v1/traces")).header("content-type", content_type);
    let body = if gzip {
        request = request.header("content-encoding", "gzip");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&body).unwrap();
        encoder.finish().unwrap()
    } else {
        body
    };
    request.body(body).send().await.unwrap()
}

async fn post_json(base: &str, export: &Value) -> reqwest::Response {
    post(base, serde_json::to_vec(export).unwrap(), "application/json", false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_span_of_the_test_is_its_signal_and_the_case_asserts_on_its_attributes() {
    let transport = MemoryTransport::new();
    let (app, running, base) = start(&transport, None).await;
    let mut reports = ReportReader::new(&transport).await;
    let handle = register(&LiveCheck::builder().transport(transport.clone()).build());

    // PASS: the span of the right service and name, with the side ordered.
    let test = handle.trigger(&"sell".to_owned()).await.unwrap();
    let noise = export("execution", "GET /health", None, &[]);
    assert_eq!(post_json(&base, &noise).await.status(), 200);
    let other_stage = export("orders", "execute order", Some(&test), &[("order.side", json!("sell"))]);
    assert_eq!(post_json(&base, &other_stage).await.status(), 200, "another service's span is not the signal");
    let span = export("execution", "execute order", Some(&test), &[("order.side", json!("sell"))]);
    let answer = post(&base, serde_json::to_vec(&span).unwrap(), "application/json", true).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.json::<Value>().await.unwrap(), json!({}));
    let report = reports.next(Duration::from_secs(10)).await;
    assert_eq!(report.state, State::Pass, "{report:?}");
    // The same export replayed after the verdict: its signal is late, dropped and counted, never a second report.
    let replayed = post(&base, serde_json::to_vec(&span).unwrap(), "application/json", true).await;
    assert_eq!(replayed.status(), 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.metrics().signals_late == 0 {
        assert!(std::time::Instant::now() < deadline, "the replayed span's signal was not counted late");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // FAIL, naming the span's attribute, when the stage changed the side.
    let test = handle.trigger(&"sell".to_owned()).await.unwrap();
    let span = export("execution", "execute order", Some(&test), &[("order.side", json!("buy"))]);
    assert_eq!(post_json(&base, &span).await.status(), 200);
    let report = reports.next(Duration::from_secs(10)).await;
    assert_eq!(report.state, State::Fail, "{report:?}");
    assert!(report.traceback.as_deref().unwrap_or_default().contains("the side the execution stage saw"), "{report:?}");

    let metrics = app.metrics();
    assert_eq!(metrics.spans_received, 5);
    assert_eq!(metrics.spans_without_test, 1);
    assert_eq!(metrics.spans_unmatched, 1);
    assert_eq!(metrics.span_signals, 3);
    assert_eq!(metrics.tests_finished, 2, "one report per test, the replay included");
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_signing_on_only_spans_with_a_signed_context_are_signals() {
    let transport = MemoryTransport::new();
    let (app, running, base) = start(&transport, Some("s3cret")).await;
    let mut reports = ReportReader::new(&transport).await;
    let service = LiveCheck::builder().transport(transport.clone()).signing_secret("s3cret").build();
    let handle = register(&service);
    let test = handle.trigger(&"sell".to_owned()).await.unwrap();
    assert!(
        test.header_pairs().iter().any(|(name, _)| *name == livecheck::context::HEADER_SIGNATURE),
        "the service signs its tests"
    );

    // Unsigned, and signed with another secret: refused (partial success), never a signal.
    let unsigned = TestContext::new(test.id(), test.case_name(), test.timestamp(), test.expires());
    let forged = register(&LiveCheck::builder().transport(MemoryTransport::new()).signing_secret("other").build())
        .trigger_with_id(test.id(), &"sell".to_owned())
        .await
        .unwrap();
    for context in [&unsigned, &forged] {
        let span = export("execution", "execute order", Some(context), &[("order.side", json!("buy"))]);
        let answer = post_json(&base, &span).await;
        assert_eq!(answer.status(), 200);
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["partialSuccess"]["rejectedSpans"], "1", "{body}");
    }
    assert_eq!(app.metrics().spans_refused, 2);
    assert_eq!(app.metrics().span_signals, 0);

    // A span of the test's trace without the signed context: a trace id is whatever a request said, so with
    // signing on it vouches for nothing.
    let traced = livecheck::context::in_trace(Some(TRACE_ID), handle.trigger(&"buy".to_owned())).await.unwrap();
    let trace_only = export("execution", "execute order", None, &[("order.side", json!("buy"))]);
    for _ in 0..10 {
        assert_eq!(post_json(&base, &trace_only).await.status(), 200);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.metrics().span_signals, 0, "the trace made no signal of {}", traced.id());

    let span = export("execution", "execute order", Some(&test), &[("order.side", json!("sell"))]);
    assert_eq!(post_json(&base, &span).await.status(), 200);
    assert_eq!(reports.next(Duration::from_secs(10)).await.state, State::Pass);
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_exports_are_refused_with_the_status_otlp_asks_for_and_counted() {
    let transport = MemoryTransport::new();
    let (app, running, base) = start(&transport, None).await;
    let cases: Vec<(Vec<u8>, &str, bool, u16)> = vec![
        (b"{not json".to_vec(), "application/json", false, 400),
        (b"\x0a\xff\xff\xff\xff\x0f".to_vec(), "application/x-protobuf", false, 400),
        (b"{}".to_vec(), "text/plain", false, 415),
        (b"{}".to_vec(), "application/json", true, 200),
        (vec![0u8; 64 * 1024 * 1024], "application/x-protobuf", true, 413),
    ];
    // A test id attribute that is not text (an int): refused, never a panic.
    let odd = json!({"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "x", "attributes": [
        {"key": "livecheck.test.id", "value": {"intValue": "7"}}]}]}]}]});
    let answer = post_json(&base, &odd).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.json::<Value>().await.unwrap()["partialSuccess"]["rejectedSpans"], "1");
    assert_eq!(app.metrics().spans_refused, 1);
    // 100 001 empty spans: a small body that would decode to a big one.
    let many = format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{}{{}}]}}]}}]}}"#, "{},".repeat(100_000));
    let answer = post(&base, many.into_bytes(), "application/json", true).await;
    assert_eq!(answer.status(), 413);
    assert_eq!(app.metrics().otlp_requests_refused, 1);
    let count = 1 + cases.iter().filter(|c| c.3 != 200).count() as u64;
    for (body, content_type, gzip, status) in cases {
        let answer = post(&base, body, content_type, gzip).await;
        assert_eq!(answer.status().as_u16(), status, "{content_type} gzip={gzip}");
    }
    assert_eq!(app.metrics().otlp_requests_refused, count);
    // A 10 MB body is refused once past the limit, before the rest is read (the client may still be writing it, so
    // the answer is read on a raw connection that stops writing at 5 MB).
    assert!(status_line_of_announced_body(&base, 10 * 1024 * 1024).await.contains(" 413 "));
    assert_eq!(reqwest::get(format!("{base}/healthz")).await.unwrap().status(), 200, "still serving");
    running.shutdown().await.unwrap();
}

/// The status line the server answers to a POST announcing `length` bytes of body, of which 5 MB are sent.
async fn status_line_of_announced_body(base: &str, length: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may stop reading (and close) once it refused: a failed write is expected then.
    let _ = stream.write_all(&vec![b' '; 5 * 1024 * 1024]).await;
    let mut answer = vec![0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer)).await.unwrap().unwrap();
    String::from_utf8_lossy(&answer[..read]).lines().next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_execution_records_its_trace_and_a_span_of_that_trace_without_test_context_is_its_signal() {
    let transport = MemoryTransport::new();
    let (app, running, base) = start(&transport, None).await;
    let mut reports = ReportReader::new(&transport).await;
    let handle = register(&LiveCheck::builder().transport(transport.clone()).build());
    // Triggered inside the request's trace (what the HTTP layer does for a request with a `traceparent`).
    let test = livecheck::context::in_trace(Some(TRACE_ID), handle.trigger(&"sell".to_owned())).await.unwrap();

    // A span of the same trace from a service without the baggage span processor: no livecheck.test.* attributes.
    let span = export("execution", "execute order", None, &[("order.side", json!("sell"))]);
    // Sent until the instance runs the test (before, the trace is nobody's and the span is dropped).
    let report = loop {
        assert_eq!(post_json(&base, &span).await.status(), 200);
        if let Some(report) = reports.next_within(Duration::from_millis(200)).await {
            break report;
        }
    };
    assert_eq!(report.state, State::Pass, "{report:?}");
    assert_eq!(
        report.test.as_ref().and_then(|t| t.trace_id.as_deref()),
        Some(TRACE_ID),
        "the report carries the trace"
    );
    let record = app.execution(test.id()).expect("kept");
    assert_eq!(record.trace_id.as_deref(), Some(TRACE_ID));
    assert_eq!(record.trace_url.as_deref(), Some(format!("http://traces.example/trace/{TRACE_ID}").as_str()));
    let api: Value = reqwest::get(format!("{base}/api/executions/{}", test.id())).await.unwrap().json().await.unwrap();
    assert_eq!(api["trace_url"], format!("http://traces.example/trace/{TRACE_ID}"));
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_verdict_is_exported_as_a_span_in_the_trace_of_its_request() {
    use std::sync::{Arc, Mutex};
    // An OTLP endpoint that keeps what it is sent.
    /// Each request's content type and body.
    type Kept = Arc<Mutex<Vec<(String, Vec<u8>)>>>;
    let received: Kept = Arc::default();
    let kept = received.clone();
    let collector = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let kept = kept.clone();
            async move {
                let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
                kept.lock().unwrap().push((content_type.to_owned(), body.to_vec()));
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, collector).await });

    let transport = MemoryTransport::new();
    let app =
        LiveCheck::builder().transport(transport.clone()).web_address("127.0.0.1:0").otlp_endpoint(endpoint).build();
    register(&app);
    let running = app.start().await.unwrap();
    let base = format!("http://{}", running.web_address().unwrap());
    let mut reports = ReportReader::new(&transport).await;
    let handle = register(&LiveCheck::builder().transport(transport.clone()).build());
    let test = livecheck::context::in_trace(Some(TRACE_ID), handle.trigger(&"sell".to_owned())).await.unwrap();
    let span = export("execution", "execute order", Some(&test), &[("order.side", json!("sell"))]);
    assert_eq!(post_json(&base, &span).await.status(), 200);
    assert_eq!(reports.next(Duration::from_secs(10)).await.state, State::Pass);

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.metrics().verdict_spans_exported == 0 {
        assert!(std::time::Instant::now() < deadline, "no verdict span exported");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sent = received.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    let (content_type, body) = &sent[0];
    assert_eq!(content_type, "application/x-protobuf");
    let contains = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    let trace_bytes: Vec<u8> =
        (0..32).step_by(2).map(|i| u8::from_str_radix(&TRACE_ID[i..i + 2], 16).unwrap()).collect();
    assert!(contains(&trace_bytes), "the span is in the request's trace");
    assert!(contains(b"livecheck orders.execute"));
    assert!(contains(b"livecheck.state") && contains(b"PASS"));
    assert!(contains(test.id().as_bytes()));
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_span_received_by_any_instance_reaches_the_instance_running_its_test() {
    let transport = MemoryTransport::with_partitions(4);
    let (first, first_running, first_base) = start(&transport, None).await;
    let (second, second_running, second_base) = start(&transport, None).await;
    let mut reports = ReportReader::new(&transport).await;
    let handle = register(&LiveCheck::builder().transport(transport.clone()).build());
    // Until both instances hold partitions of the group.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut passed = 0;
    for i in 0..20 {
        let test = handle.trigger(&"sell".to_owned()).await.unwrap();
        let span = export("execution", "execute order", Some(&test), &[("order.side", json!("sell"))]);
        // Every other span goes to the other instance: half of them to one that does not run the test.
        let base = if i % 2 == 0 { &first_base } else { &second_base };
        assert_eq!(post_json(base, &span).await.status(), 200);
        let report = reports.next(Duration::from_secs(10)).await;
        assert_eq!(report.state, State::Pass, "{report:?}");
        passed += 1;
        assert!(std::time::Instant::now() < deadline);
    }
    assert_eq!(passed, 20);
    let (a, b) = (first.metrics(), second.metrics());
    assert_eq!(a.span_signals + b.span_signals, 20);
    assert!(
        a.tests_finished > 0 && b.tests_finished > 0,
        "both ran tests: {} and {}",
        a.tests_finished,
        b.tests_finished
    );
    first_running.shutdown().await.unwrap();
    second_running.shutdown().await.unwrap();
}
