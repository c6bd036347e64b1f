//! Heap memory per in-flight test waiting on a signal, counted by a counting global allocator.
//! Target: ≤ 2 KiB per test in the LiveCheck instance.

use std::{alloc::System, time::Duration};

use livecheck::{transport::MemoryTransport, Case, CaseResult, CaseSettings, LiveCheck, Signal, TestRun};
use serde::{Deserialize, Serialize};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn live_allocs() -> i64 {
    let stats = GLOBAL.stats();
    stats.allocations as i64 - stats.deallocations as i64
}

/// Bytes allocated and not yet freed.
fn live_bytes() -> i64 {
    let stats = GLOBAL.stats();
    stats.bytes_allocated as i64 - stats.bytes_deallocated as i64 + stats.bytes_reallocated as i64
}

#[derive(Serialize, Deserialize)]
struct OrderArgs {
    side: String,
}

struct TestOrder {
    order_sent_to_db: Signal<()>,
    order_executed: Signal<()>,
}

impl Case for TestOrder {
    type Args = OrderArgs;
    async fn run(&self, test: &TestRun, args: OrderArgs) -> CaseResult {
        self.order_sent_to_db.wait(Duration::from_secs(3600)).await?;
        test.log(format!("side {}", args.side));
        self.order_executed.wait(Duration::from_secs(3600)).await?;
        Ok(())
    }
}

async fn until(mut cond: impl FnMut() -> bool) {
    while !cond() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

const TESTS: u64 = 10_000;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let transport = MemoryTransport::new();
        let app = LiveCheck::builder().transport(transport.clone()).max_concurrent_tests(2 * TESTS as usize).build();
        let case = app
            .register(CaseSettings::new("examples.livecheck.test_order"), |s| TestOrder {
                order_sent_to_db: s.declare("order_sent_to_db"),
                order_executed: s.declare("order_executed"),
            })
            .unwrap();
        let running = app.start().await.unwrap();
        // Warm up: lazily allocated structures (maps, timer wheel levels) exist before measuring.
        for _ in 0..1000 {
            let test = case.trigger(None, &OrderArgs { side: "sell".into() }).await.unwrap();
            livecheck::scope(Some(test), async {
                case.order_sent_to_db.send(&()).await.unwrap();
                case.order_executed.send(&()).await.unwrap();
            })
            .await;
        }
        until(|| app.metrics().tests_finished == 1000).await;
        tokio::time::sleep(Duration::from_millis(50)).await;

        let before = live_bytes();
        let pending_before: usize = transport.messages("livecheck").len();
        for _ in 0..TESTS {
            case.trigger(None, &OrderArgs { side: "sell".into() }).await.unwrap();
        }
        let published = live_bytes();
        let published_allocs = live_allocs();
        until(|| app.metrics().tests_executing == TESTS).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let waiting = live_bytes();
        println!("live heap allocations per in-flight test: {:.1}", (live_allocs() - published_allocs) as f64 / TESTS as f64);
        assert_eq!(transport.messages("livecheck").len() - pending_before, TESTS as usize);

        let per_test_instance = (waiting - published) as f64 / TESTS as f64;
        let per_test_log = (published - before) as f64 / TESTS as f64;
        println!(
            "memory per in-flight test waiting on a signal: {per_test_instance:.0} bytes in the LiveCheck instance \
             (target <= 2048); plus {per_test_log:.0} bytes for its message kept in the in-memory log"
        );
        running.shutdown().await;
    });
}
