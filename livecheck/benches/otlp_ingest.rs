//! OTLP ingestion (issue 17): spans posted to the instance's `POST /v1/traces` over real HTTP, the instance and the
//! client on **one core** (a current-thread runtime), protobuf bodies of 1 000 spans.
//!
//! 1. Non-test spans (no `livecheck.test.*` attribute): dropped spans/s (target ≥ 200 000) and CPU per span.
//! 2. Test spans that a case's selector picks: spans made into signals on the bus per second (target ≥ 20 000)
//!    and CPU per span.
//! 3. On the embedded log, a two-stage test's time from issue to verdict when its second stage's signal is a span
//!    posted to the receiver, against the same stage sent as a signal (target: within 2 ms), median of 200 tests.
//!
//! CPU per span includes the client's side of HTTP (building nothing: bodies are encoded once).
//!
//! Run: `cargo bench -p livecheck --features web --bench otlp_ingest`

use std::time::{Duration, Instant};

use livecheck::{
    spans::{Span, SpanSelector},
    transport::{MemoryTransport, SqliteTransport, Transport},
    Case, CaseHandle, CaseResult, CaseSettings, LiveCheck, Signal, State, TestContext, TestRun,
};

#[path = "support/cpu.rs"]
mod cpu;
use cpu::cpu_time;

/// Protobuf encoding, by hand: just what an OTLP trace export needs.
mod pb {
    fn varint(out: &mut Vec<u8>, mut n: u64) {
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    pub(crate) fn bytes(out: &mut Vec<u8>, field: u32, value: &[u8]) {
        varint(out, u64::from(field << 3 | 2));
        varint(out, value.len() as u64);
        out.extend_from_slice(value);
    }

    pub(crate) fn fixed64(out: &mut Vec<u8>, field: u32, value: u64) {
        varint(out, u64::from(field << 3 | 1));
        out.extend_from_slice(&value.to_le_bytes());
    }

    /// A `KeyValue` with a string value.
    pub(crate) fn attribute(key: &str, value: &str) -> Vec<u8> {
        let mut any = Vec::new();
        bytes(&mut any, 1, value.as_bytes());
        let mut kv = Vec::new();
        bytes(&mut kv, 1, key.as_bytes());
        bytes(&mut kv, 2, &any);
        kv
    }

    pub(crate) fn span(trace: &[u8; 16], span: u64, name: &str, start: u64, attributes: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        bytes(&mut out, 1, trace);
        bytes(&mut out, 2, &span.to_be_bytes());
        bytes(&mut out, 5, name.as_bytes());
        fixed64(&mut out, 7, start);
        fixed64(&mut out, 8, start + 1_500_000);
        for attribute in attributes {
            bytes(&mut out, 9, attribute);
        }
        out
    }

    /// An `ExportTraceServiceRequest` of `spans` from `service`.
    pub(crate) fn export(service: &str, spans: &[Vec<u8>]) -> Vec<u8> {
        let mut scope = Vec::new();
        for span in spans {
            bytes(&mut scope, 2, span);
        }
        let mut resource = Vec::new();
        bytes(&mut resource, 1, &attribute("service.name", service));
        let mut resource_spans = Vec::new();
        bytes(&mut resource_spans, 1, &resource);
        bytes(&mut resource_spans, 2, &scope);
        let mut request = Vec::new();
        bytes(&mut request, 1, &resource_spans);
        request
    }
}

struct TwoStages {
    placed: Signal<()>,
    executed_signal: Signal<()>,
    executed_span: Signal<Span>,
}

impl Case for TwoStages {
    /// Whether the second stage is a span.
    type Args = bool;
    async fn run(&self, _test: &TestRun, as_span: bool) -> CaseResult {
        let timeout = Duration::from_secs(10);
        self.placed.wait(timeout).await?;
        if as_span {
            let span = self.executed_span.wait(timeout).await?;
            assert_eq!(span.attribute_str("order.side"), Some("sell"));
        } else {
            self.executed_signal.wait(timeout).await?;
        }
        Ok(())
    }
}

fn register(app: &LiveCheck) -> CaseHandle<TwoStages> {
    let settings = CaseSettings::new("orders.two_stages")
        .span_signal("executed_span", SpanSelector::named("execute order").service("execution"));
    app.register(settings, |s| TwoStages {
        placed: s.declare("placed"),
        executed_signal: s.declare("executed_signal"),
        executed_span: s.declare("executed_span"),
    })
    .unwrap()
}

const SPANS_PER_BODY: usize = 1000;

fn now_nanos() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// The test's context as span attributes (what a baggage span processor writes).
fn context_attributes(test: &TestContext) -> Vec<Vec<u8>> {
    let members = ["livecheck.test.id", "livecheck.test.name", "livecheck.test.timestamp", "livecheck.test.expires"];
    members.iter().zip(test.header_pairs()).map(|(member, (_, value))| pb::attribute(member, &value)).collect()
}

/// Posts `body` for about `seconds`; spans per second and CPU per span.
async fn ingest(client: &reqwest::Client, url: &str, body: &[u8], seconds: f64) -> (f64, Duration) {
    let (started, cpu) = (Instant::now(), cpu_time());
    let mut requests = 0u64;
    while started.elapsed().as_secs_f64() < seconds {
        let answer =
            client.post(url).header("content-type", "application/x-protobuf").body(body.to_vec()).send().await.unwrap();
        assert_eq!(answer.status(), 200);
        requests += 1;
    }
    let spans = requests * SPANS_PER_BODY as u64;
    let rate = spans as f64 / started.elapsed().as_secs_f64();
    let cpu = match (cpu, cpu_time()) {
        (Some(before), Some(after)) => (after - before) / spans.max(1) as u32,
        _ => Duration::ZERO,
    };
    (rate, cpu)
}

async fn throughput() {
    let transport = MemoryTransport::with_partitions(8);
    let app = LiveCheck::builder().transport(transport.clone()).send_reports(false).web_address("127.0.0.1:0").build();
    register(&app);
    let running = app.start().await.unwrap();
    let url = format!("http://{}/v1/traces", running.web_address().unwrap());
    let client = reqwest::Client::new();
    let trace = [7u8; 16];
    let start = now_nanos();

    let noise: Vec<Vec<u8>> = (0..SPANS_PER_BODY)
        .map(|i| {
            let attributes = [pb::attribute("http.route", "/orders/{id}"), pb::attribute("http.method", "POST")];
            pb::span(&trace, i as u64 + 1, "POST /orders", start, &attributes)
        })
        .collect();
    let body = pb::export("orders", &noise);
    ingest(&client, &url, &body, 0.5).await;
    let (rate, cpu) = ingest(&client, &url, &body, 3.0).await;
    println!(
        "non-test spans dropped: {rate:>9.0} spans/s, {:.2} µs CPU per span (target ≥ 200 000/s)",
        cpu.as_secs_f64() * 1e6
    );

    let service = register(&LiveCheck::builder().transport(MemoryTransport::new()).build());
    let mut test_spans = Vec::new();
    for i in 0..SPANS_PER_BODY {
        let test = service.trigger(&true).await.unwrap();
        let mut attributes = context_attributes(&test);
        attributes.push(pb::attribute("order.side", "sell"));
        test_spans.push(pb::span(&trace, i as u64 + 1, "execute order", start, &attributes));
    }
    let body = pb::export("execution", &test_spans);
    let before = app.metrics().span_signals;
    let (rate, cpu) = ingest(&client, &url, &body, 3.0).await;
    assert!(app.metrics().span_signals > before, "test spans became signals");
    println!(
        "test spans to signals:  {rate:>9.0} spans/s, {:.2} µs CPU per span (target ≥ 20 000/s)",
        cpu.as_secs_f64() * 1e6
    );
    running.shutdown().await.unwrap();
}

async fn runtime_of_a_span_stage() {
    let db = std::env::temp_dir().join(format!("livecheck-otlp-bench-{}.sqlite3", std::process::id()));
    let transport: std::sync::Arc<dyn Transport> = std::sync::Arc::new(SqliteTransport::open(&db).unwrap());
    let app = LiveCheck::builder().shared_transport(transport.clone()).web_address("127.0.0.1:0").build();
    register(&app);
    let running = app.start().await.unwrap();
    let url = format!("http://{}/v1/traces", running.web_address().unwrap());
    let client = reqwest::Client::new();
    let service = register(&LiveCheck::builder().shared_transport(transport.clone()).build());
    let mut medians = Vec::new();
    for as_span in [false, true] {
        let mut runtimes = Vec::new();
        for i in 0..220u64 {
            let test = service.trigger(&as_span).await.unwrap();
            let test_id = test.id().to_owned();
            livecheck::scope(Some(test.clone()), async {
                service.placed.send(&()).await.unwrap();
                if as_span {
                    let mut attributes = context_attributes(&test);
                    attributes.push(pb::attribute("order.side", "sell"));
                    let span = pb::span(&[9u8; 16], i + 1, "execute order", now_nanos(), &attributes);
                    let body = pb::export("execution", &[span]);
                    let answer =
                        client.post(&url).header("content-type", "application/x-protobuf").body(body).send().await;
                    assert_eq!(answer.unwrap().status(), 200);
                } else {
                    service.executed_signal.send(&()).await.unwrap();
                }
            })
            .await;
            let record = loop {
                match app.execution(&test_id) {
                    Some(record) if record.state.is_some() => break record,
                    _ => tokio::time::sleep(Duration::from_micros(200)).await,
                }
            };
            assert_eq!(record.state, Some(State::Pass), "{record:?}");
            if i >= 20 {
                // From the test's issue to its verdict: the span's way through the receiver and the bus included.
                let latency = record.finished_at.unwrap() - record.issued_at;
                runtimes.push(latency.num_microseconds().unwrap() as f64 / 1e6);
            }
        }
        runtimes.sort_by(f64::total_cmp);
        medians.push(runtimes[runtimes.len() / 2]);
    }
    println!(
        "embedded log, issue to verdict (median of 200): stage as a signal {:.2} ms, as a span {:.2} ms: +{:.2} ms (target ≤ 2 ms)",
        medians[0] * 1e3,
        medians[1] * 1e3,
        (medians[1] - medians[0]) * 1e3
    );
    running.shutdown().await.unwrap();
    for suffix in ["", "-wal", "-shm", ".created"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(throughput());
    runtime.block_on(runtime_of_a_span_stage());
}
