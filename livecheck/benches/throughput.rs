//! In-process throughput: a case waiting on 4 signals, ~100 tests in flight (the default `max_concurrent_tests`),
//! the services and the LiveCheck instance in one process on a 2-worker multi-thread runtime, in-memory transport.
//! Target: ≥ 50 000 completed tests/s on a 2-core machine.
//!
//! The driver keeps 100 tests in flight: it takes a permit, spawns a task that triggers a test and sends its 4
//! signals inside the test's scope; the case body gives the permit back once it saw all 4. Completed tests are
//! counted with `metrics().tests_finished`; every one must PASS. The driver itself runs on one of the two workers.
//! The memory transport keeps the newest `RETENTION` messages per partition, so memory stays bounded (its cost of
//! dropping old messages on publish is included). Printed per configuration (reports on / off): tests/s over 5 runs
//! of ~2 s, and the CPU time per test (user + system, both workers), which other load on the machine disturbs less;
//! each run also shows how many cores other processes kept busy meanwhile (`/proc/stat`), to spot disturbed runs.
//!
//! Run: `cargo bench -p livecheck --bench throughput` (`LIVECHECK_BENCH_CARRIERS=headers`: the test context without
//! W3C baggage).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use livecheck::{transport::MemoryTransport, Case, CaseResult, CaseSettings, LiveCheck, Signal, State, TestRun};
use tokio::sync::Semaphore;

#[path = "support/cpu.rs"]
mod cpu;
use cpu::cpu_time;

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

/// CPU time all processes of the machine used so far (busy time of every CPU), from `/proc/stat` (Linux).
fn machine_busy_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat.lines().next()?.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    let busy = fields.iter().sum::<u64>() - fields.get(3)? - fields.get(4)?; // all but idle and iowait
    Some(Duration::from_secs_f64(busy as f64 / 100.0))
}

struct Run {
    tests: u64,
    rate: f64,
    /// CPU microseconds per test over both workers: less sensitive than `rate` to other load on the machine.
    cpu_per_test: Option<f64>,
    /// Cores other processes kept busy during the run, on average: a sign of a disturbed figure.
    other_load: Option<f64>,
}

/// Runs tests for `duration`, then lets the ones in flight finish.
async fn run(duration: Duration, send_reports: bool) -> Run {
    let transport = MemoryTransport::new().with_retention(RETENTION);
    let mut builder = LiveCheck::builder().transport(transport).send_reports(send_reports);
    // `LIVECHECK_BENCH_CARRIERS=headers`: the test context in the LiveCheck headers only, without W3C baggage (to
    // see what writing both costs).
    if std::env::var("LIVECHECK_BENCH_CARRIERS").is_ok_and(|c| c == "headers") {
        builder = builder.context_carriers(livecheck::context::Carriers::Headers);
    }
    let app = builder.build();
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
    let cpu_start = cpu_time();
    let busy_start = machine_busy_time();
    let start = Instant::now();
    let mut issued = 0u64;
    while start.elapsed() < duration {
        for _ in 0..64 {
            in_flight.acquire().await.unwrap().forget();
            let case = case.clone();
            let n = issued;
            tokio::spawn(async move {
                let test = case.trigger(&n).await.unwrap();
                livecheck::scope(Some(test), async {
                    case.db.notify().await.unwrap();
                    case.kafka.notify().await.unwrap();
                    case.cache.notify().await.unwrap();
                    case.executed.send(&n).await.unwrap();
                })
                .await;
            });
            issued += 1;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(35);
    // A test counts as finished just before its report is published: wait for both.
    let done = |m: &livecheck::instance::MetricsSnapshot| {
        m.tests_finished == issued && (!send_reports || m.reports_published == issued)
    };
    while !done(&app.metrics()) {
        assert!(Instant::now() < deadline, "tests did not finish: {:?}", app.metrics());
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    let elapsed = start.elapsed();
    let own = cpu_start.zip(cpu_time()).map(|(a, b)| b - a);
    let cpu = own.map(|own| own.as_secs_f64() * 1e6 / issued as f64);
    let other_load = busy_start
        .zip(machine_busy_time())
        .zip(own)
        .map(|((a, b), own)| ((b - a).as_secs_f64() - own.as_secs_f64()).max(0.0) / elapsed.as_secs_f64());
    let health = case.health();
    assert_eq!(health.count(State::Pass), issued, "every test passed: {health:?}");
    let metrics = app.metrics();
    assert_eq!(metrics.tests_finished, issued);
    if send_reports {
        assert_eq!(metrics.reports_published, issued);
    }
    running.shutdown().await.unwrap();
    Run { tests: issued, rate: issued as f64 / elapsed.as_secs_f64(), cpu_per_test: cpu, other_load }
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
            let mut runs: Vec<Run> = Vec::new();
            for _ in 0..RUNS {
                runs.push(run(Duration::from_secs(2), send_reports).await);
            }
            let total: u64 = runs.iter().map(|r| r.tests).sum();
            let list = runs
                .iter()
                .map(|r| match (r.cpu_per_test, r.other_load) {
                    (Some(cpu), Some(other)) => {
                        format!("{:.0}/s at {cpu:.1} us CPU, other load {other:.2} cores", r.rate)
                    }
                    _ => format!("{:.0}/s", r.rate),
                })
                .collect::<Vec<_>>()
                .join(", ");
            let mut rates: Vec<f64> = runs.iter().map(|r| r.rate).collect();
            rates.sort_by(f64::total_cmp);
            let mut cpu: Vec<f64> = runs.iter().filter_map(|r| r.cpu_per_test).collect();
            cpu.sort_by(f64::total_cmp);
            let reports = if send_reports { "on" } else { "off" };
            println!(
                "throughput [4 signals/test, {IN_FLIGHT} in flight, 2 workers, reports {reports}, retention \
                 {RETENTION}/partition]: median {:.0} tests/s, best {:.0} ({RUNS} runs of ~2 s: [{list}]; {total} \
                 tests, all PASS) [target >= 50000 tests/s]",
                rates[RUNS / 2],
                rates[RUNS - 1],
            );
            if let (Some(median), Some(best)) = (cpu.get(cpu.len() / 2), cpu.first()) {
                println!(
                    "  CPU per test (both workers), reports {reports}: median {median:.1} us, best {best:.1} us \
                     (2 cores / CPU per test = {:.0} tests/s at full use of both cores)",
                    2e6 / median
                );
            }
        }
    });
    runtime.block_on(driver).unwrap();
}
