//! In-process throughput: a case waiting on 4 signals, ~100 tests in flight (the default `max_concurrent_tests`),
//! the services and the LiveCheck instance in one process on a 2-worker multi-thread runtime, in-memory transport.
//! Target: ≥ 50 000 completed tests/s on a 2-core machine.
//!
//! The driver keeps 100 tests in flight: it takes a permit, spawns a task that triggers a test and sends its 4
//! signals inside the test's scope; the case body gives the permit back once it saw all 4. Completed tests are
//! counted with `metrics().tests_finished`; every one must PASS.
//!
//! Run: `cargo bench -p livecheck --bench throughput`

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use livecheck::{transport::MemoryTransport, Case, CaseResult, CaseSettings, LiveCheck, Signal, State, TestRun};
use tokio::sync::Semaphore;

struct FourStages {
    db: Signal<()>,
    kafka: Signal<()>,
    cache: Signal<()>,
    executed: Signal<u64>,
    /// One permit per test body that saw its 4 signals: the driver keeps 100 tests in flight.
    in_flight: Arc<Semaphore>,
}

impl Case for FourStages {
    type Args = u64;
    async fn run(&self, _test: &TestRun, n: u64) -> CaseResult {
        let timeout = Duration::from_secs(30);
        self.db.wait(timeout).await?;
        self.kafka.wait(timeout).await?;
        self.cache.wait(timeout).await?;
        let executed = self.executed.wait(timeout).await?;
        assert_eq!(executed, n);
        self.in_flight.add_permits(1);
        Ok(())
    }
}

const IN_FLIGHT: usize = 100;
/// Messages kept per partition of each stream (8 partitions): memory stays bounded over millions of messages.
const RETENTION: usize = 4096;
const RUNS: usize = 5;

/// Runs tests for `duration`, then lets the ones in flight finish. Returns (completed tests, tests/s).
async fn run(duration: Duration, send_reports: bool) -> (u64, f64) {
    let transport = MemoryTransport::new().with_retention(RETENTION);
    let app = LiveCheck::builder().transport(transport).send_reports(send_reports).build();
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
    let case = app
        .register(CaseSettings::new("four_stages"), |s| FourStages {
            db: s.declare("order_sent_to_db"),
            kafka: s.declare("order_sent_to_kafka"),
            cache: s.declare("order_cache_in_redis"),
            executed: s.declare("order_executed"),
            in_flight: in_flight.clone(),
        })
        .unwrap();
    let running = app.start().await.unwrap();
    let start = Instant::now();
    let mut issued = 0u64;
    while start.elapsed() < duration {
        for _ in 0..64 {
            in_flight.acquire().await.unwrap().forget();
            let case = case.clone();
            let n = issued;
            tokio::spawn(async move {
                let test = case.trigger(None, &n).await.unwrap();
                livecheck::scope(Some(test), async {
                    case.db.send(&()).await.unwrap();
                    case.kafka.send(&()).await.unwrap();
                    case.cache.send(&()).await.unwrap();
                    case.executed.send(&n).await.unwrap();
                })
                .await;
            });
            issued += 1;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(35);
    while app.metrics().tests_finished < issued {
        assert!(Instant::now() < deadline, "tests did not finish: {:?}", app.metrics());
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    let elapsed = start.elapsed();
    let health = case.health();
    assert_eq!(health.count(State::Pass), issued, "every test passed: {health:?}");
    let metrics = app.metrics();
    assert_eq!(metrics.tests_finished, issued);
    if send_reports {
        assert_eq!(metrics.reports_published, issued);
    }
    running.shutdown().await;
    (issued, issued as f64 / elapsed.as_secs_f64())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` / `cargo test --benches` probing
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // The driver runs on a worker too (spawned, not in `block_on` on the main thread): two busy threads, two cores.
    let driver = runtime.spawn(async {
        run(Duration::from_millis(500), true).await; // warm-up
        for send_reports in [true, false] {
            let mut rates = Vec::new();
            let mut total = 0;
            for _ in 0..RUNS {
                let (tests, rate) = run(Duration::from_secs(2), send_reports).await;
                total += tests;
                rates.push(rate);
            }
            let runs = rates.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(", ");
            rates.sort_by(f64::total_cmp);
            println!(
                "throughput [4 signals/test, {IN_FLIGHT} in flight, 2 workers, reports {}, retention {RETENTION}/partition]: \
                 median {:.0} tests/s ({RUNS} runs of ~2 s: {runs}; {total} tests, all PASS) [target >= 50000 tests/s]",
                if send_reports { "on" } else { "off" },
                rates[RUNS / 2],
            );
        }
    });
    runtime.block_on(driver).unwrap();
}
