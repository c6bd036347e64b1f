//! Heap memory per in-flight test waiting on a signal, counted by a counting global allocator.
//! Target: ≤ 2 KiB per test in the LiveCheck instance.
//!
//! The counting allocator is `stats_alloc` (atomic counters around `std::alloc::System`): the workspace lint
//! `unsafe_code = "forbid"` reaches every target of the package through `[lints] workspace = true`, benches
//! included, and `forbid` cannot be relaxed by an inner `#![allow(unsafe_code)]` (E0453), so the
//! `unsafe impl GlobalAlloc` lives in that dev-dependency rather than here.
//!
//! Method (single-threaded runtime, so nothing else runs between the steps): after a warm-up, publish N = 10 000
//! executions with `trigger_by_name`, which publishes straight on the memory log and never yields (a case's
//! `trigger` waits for the publish as a task of its own, which let the instance run meanwhile: its state was then
//! counted as the log's, and the instance's share printed 0). The bench checks that no test started meanwhile, so
//! the growth is the messages stored in the memory log; then it lets the instance start them all and waits until
//! `metrics().tests_executing == N` (the growth is the instance's state per waiting test). The stored message
//! bytes are cross-checked against the payload, key and header bytes read back with `MemoryTransport::messages`,
//! and both figures must be plausible (the bench fails otherwise): the instance's share more than the few hundred
//! bytes a waiting test cannot do without, the log's share at least the messages' content.
//!
//! Run: `cargo bench -p livecheck --bench memory_per_test`

use std::{
    alloc::System,
    time::{Duration, Instant},
};

use livecheck::{
    instance::MetricsSnapshot, transport::MemoryTransport, Case, CaseResult, CaseSettings, LiveCheck, Signal, TestRun,
};
use serde::{Deserialize, Serialize};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated and not yet freed.
fn live_bytes() -> i64 {
    let stats = GLOBAL.stats();
    stats.bytes_allocated as i64 - stats.bytes_deallocated as i64 + stats.bytes_reallocated as i64
}

/// Allocations not yet freed.
fn live_allocations() -> i64 {
    let stats = GLOBAL.stats();
    stats.allocations as i64 - stats.deallocations as i64
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

async fn until(what: &str, app: &LiveCheck, mut cond: impl FnMut(&MetricsSnapshot) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = app.metrics();
        if cond(&metrics) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {metrics:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

const TESTS: u64 = 10_000;
const WARM_UP: u64 = 1_000;

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
        // Warm up: lazily allocated structures (maps, timer wheel levels, thread-locals) exist before measuring.
        for _ in 0..WARM_UP {
            let test = case.trigger(&OrderArgs { side: "sell".into() }).await.unwrap();
            livecheck::scope(Some(test), async {
                case.order_sent_to_db.notify().await.unwrap();
                case.order_executed.notify().await.unwrap();
            })
            .await;
        }
        until("the warm-up tests", &app, |m| m.tests_finished == WARM_UP).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let pending_before = transport.messages("livecheck").len();

        let (bytes_before, allocations_before) = (live_bytes(), live_allocations());
        let case_name = "examples.livecheck.test_order";
        for _ in 0..TESTS {
            let args = OrderArgs { side: "sell".into() };
            app.trigger_by_name(case_name, None, &args, Duration::from_secs(3 * 3600)).await.unwrap();
        }
        let (bytes_published, allocations_published) = (live_bytes(), live_allocations());
        let started_meanwhile = app.metrics().tests_received - WARM_UP;
        assert_eq!(started_meanwhile, 0, "the instance ran while the tests were published: the split is wrong");
        until("all tests executing", &app, |m| m.tests_executing == TESTS).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (bytes_waiting, allocations_waiting) = (live_bytes(), live_allocations());
        assert_eq!(app.metrics().tests_executing, TESTS);

        // The stored messages' own bytes: payload, key, header names and values.
        let messages = transport.messages("livecheck");
        assert_eq!(messages.len() - pending_before, TESTS as usize);
        let content: usize = messages
            .iter()
            .map(|r| {
                let m = &r.message;
                m.value.len()
                    + m.key.as_ref().map_or(0, String::len)
                    + m.headers.iter().map(|(n, v)| n.len() + v.len()).sum::<usize>()
            })
            .sum();
        let content_per_message = content as f64 / messages.len() as f64;
        drop(messages);

        let n = TESTS as f64;
        let instance = (bytes_waiting - bytes_published) as f64 / n;
        let log = (bytes_published - bytes_before) as f64 / n;
        println!("memory per in-flight test waiting on a signal (N = {TESTS} waiting, 2 signals, args {{side}}):");
        println!(
            "  excluding the memory transport's stored messages (LiveCheck instance): {instance:.0} bytes/test, {:.1} \
             live allocations/test [target <= 2048 bytes]",
            (allocations_waiting - allocations_published) as f64 / n
        );
        println!("  including the stored pending-test message: {:.0} bytes/test", instance + log);
        println!(
            "  the stored message alone: {log:.0} bytes/test measured ({:.1} allocations); its content (payload + key \
             + headers, from MemoryTransport::messages) is {content_per_message:.0} bytes",
            (allocations_published - allocations_before) as f64 / n
        );
        // Figures that cannot be right say so, rather than print a number that meets any target.
        assert!(instance >= 256.0, "implausible: {instance:.0} bytes per waiting test for the instance");
        assert!(
            log >= content_per_message,
            "implausible: {log:.0} bytes stored per {content_per_message:.0}-byte message"
        );
        running.shutdown().await.unwrap();
    });
}
