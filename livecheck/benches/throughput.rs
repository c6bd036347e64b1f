//! In-process throughput: a case waiting on 4 signals, 100 tests in flight (the default concurrency), services
//! and the LiveCheck instance in one process on a 2-worker runtime. Target: ≥ 50 000 completed tests/s.

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
    /// One permit per finished test: the driver keeps 100 tests in flight.
    finished: Arc<Semaphore>,
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
        self.finished.add_permits(1);
        Ok(())
    }
}

const IN_FLIGHT: usize = 100;

async fn run(tests: u64, send_reports: bool) -> f64 {
    let transport = MemoryTransport::new().with_retention(100_000);
    let app = LiveCheck::builder().transport(transport).send_reports(send_reports).build();
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
    let case = app
        .register(CaseSettings::new("four_stages"), |s| FourStages {
            db: s.declare("order_sent_to_db"),
            kafka: s.declare("order_sent_to_kafka"),
            cache: s.declare("order_cache_in_redis"),
            executed: s.declare("order_executed"),
            finished: in_flight.clone(),
        })
        .unwrap();
    let running = app.start().await.unwrap();
    let start = Instant::now();
    for n in 0..tests {
        in_flight.acquire().await.unwrap().forget();
        let case = case.clone();
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
    }
    while app.metrics().tests_finished < tests {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = start.elapsed();
    assert_eq!(case.health().count(State::Pass), tests, "every test passed");
    running.shutdown().await;
    tests as f64 / elapsed.as_secs_f64()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` / `cargo test --benches` probing
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        run(20_000, true).await; // warm-up
        for send_reports in [true, false] {
            let mut rates: Vec<f64> = Vec::new();
            for _ in 0..3 {
                rates.push(run(200_000, send_reports).await);
            }
            rates.sort_by(f64::total_cmp);
            println!(
                "throughput, 4 signals, {IN_FLIGHT} in flight, reports {}: median {:.0} tests/s (runs: {:.0}, {:.0}, {:.0}); target >= 50000",
                if send_reports { "on " } else { "off" },
                rates[1],
                rates[0],
                rates[1],
                rates[2]
            );
        }
    });
}
