//! The tutorial's `test_order` as a case file (examples/orders/cases/test_order.yaml) against the same contracts
//! written in Rust (issue 19): each test's runtime (from its start to its verdict, as reported) on the embedded
//! log, the four signals sent as soon as the test is triggered. Prints the medians and the difference (target:
//! within 10 %).
//!
//! Run: `cargo bench -p livecheck --features web,declare,sqlite --bench declared_case`

use std::{sync::Arc, time::Duration};

use livecheck::{
    declare,
    transport::{SqliteTransport, Subscription, Transport},
    wire::TestReport,
    Case, CaseResult, CaseSettings, LiveCheck, Signal, SignalSet, State, TestRun,
};
use serde_json::{json, Value};

#[derive(SignalSet)]
struct OrderSignals {
    order_sent_to_db: Signal<Value>,
    order_sent_to_kafka: Signal<Value>,
    order_cache_in_redis: Signal<Value>,
    order_executed: Signal<Value>,
}

/// The case file's contracts, in Rust.
struct TestOrder {
    signals: OrderSignals,
}

impl Case for TestOrder {
    type Args = Value;
    async fn run(&self, test: &TestRun, args: Value) -> CaseResult {
        let timeout = Duration::from_secs(30);
        let s = &self.signals;
        let order = s.order_sent_to_db.wait(timeout).await?;
        assert_eq!(order["id"], test.id());
        assert_eq!(order["side"], args["side"]);
        let side = order["side"].as_str().unwrap_or_default();
        assert!(side == "buy" || side == "sell");
        assert!(order["quantity"].as_f64().is_some_and(|q| q >= 0.0));
        assert!(order.get("user_id").is_some());
        s.order_sent_to_kafka.wait(timeout).await?;
        s.order_cache_in_redis.wait(timeout).await?;
        let executed = s.order_executed.wait(timeout).await?;
        let _ = executed;
        Ok(())
    }
}

const TESTS: usize = 300;

/// Runs `TESTS` tests of the case registered by `register`, one after the other; their runtimes, sorted.
async fn runtimes(register: impl FnOnce(&LiveCheck)) -> Vec<f64> {
    let db = std::env::temp_dir().join(format!(
        "livecheck-declared-bench-{}-{}.sqlite3",
        std::process::id(),
        fastrand::u64(..)
    ));
    let transport: Arc<dyn Transport> = Arc::new(SqliteTransport::open(&db).unwrap());
    let app = LiveCheck::builder().shared_transport(transport.clone()).build();
    register(&app);
    let running = app.start().await.unwrap();
    let service = LiveCheck::builder().shared_transport(transport.clone()).build();
    let sender = service.sender::<Value, OrderSignals>(CaseSettings::new("orders.test_order")).unwrap();
    let mut reports: Box<dyn Subscription> = transport.subscribe(&["livecheck-report"], "bench").await.unwrap();
    let mut runtimes = Vec::new();
    for n in 0..TESTS {
        let id = format!("order-{n}");
        let test = sender.trigger_with_id(&id, &json!({"side": "sell"})).await.unwrap();
        livecheck::scope(Some(test), async {
            let order =
                json!({"id": id, "user_id": "u1", "side": "sell", "quantity": 1.0, "price": 2.0, "fake": false});
            sender.order_sent_to_db.send(&order).await.unwrap();
            sender.order_sent_to_kafka.send(&Value::Null).await.unwrap();
            sender.order_cache_in_redis.send(&Value::Null).await.unwrap();
            sender.order_executed.send(&json!("exec-1")).await.unwrap();
        })
        .await;
        loop {
            let event = reports.recv().await.unwrap();
            let livecheck::transport::Event::Message(received) = event else { continue };
            let report: TestReport = serde_json::from_slice(&received.message.value).unwrap();
            if report.test.as_ref().is_some_and(|t| t.id == id) {
                assert_eq!(report.state, State::Pass, "{report:?}");
                runtimes.push(report.runtime.unwrap());
                break;
            }
        }
    }
    running.shutdown().await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    runtimes.sort_by(f64::total_cmp);
    runtimes
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        // The shipped file, without its fake requests (there is no worker here).
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/orders/cases/test_order.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.split("\n# Every 500 ms").next().unwrap().replace("  frequency: 500ms\n", "");
        let definition = declare::parse(&text, declare::Format::Yaml, &path).unwrap();
        let file = declare::CaseFile { path, definition };
        let median = |r: &[f64]| r[r.len() / 2] * 1000.0;
        let p90 = |r: &[f64]| r[r.len() * 9 / 10] * 1000.0;
        // Alternate, twice each, so that a slow moment of the machine does not favour one.
        let (mut declared, mut rust) = (Vec::new(), Vec::new());
        for _ in 0..2 {
            declared.extend(runtimes(|app| {
                file.register(app).unwrap();
            })
            .await);
            rust.extend(runtimes(|app| {
                app.register(CaseSettings::new("orders.test_order"), |s| TestOrder { signals: OrderSignals::declare(s) }).unwrap();
            })
            .await);
        }
        declared.sort_by(f64::total_cmp);
        rust.sort_by(f64::total_cmp);
        let (d, r) = (median(&declared), median(&rust));
        println!(
            "test_order runtime, embedded log, {} tests each: case file median {d:.3} ms (p90 {:.3}), Rust median {r:.3} ms (p90 {:.3}): {:+.1} % (target within 10 %)",
            declared.len(),
            p90(&declared),
            p90(&rust),
            (d - r) / r * 100.0
        );
    });
}
