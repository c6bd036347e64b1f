//! Sustained signals/s through one LiveCheck instance on Kafka (a tansu broker started here).
//!
//! The instance is this process: a case waiting for 4 signals, on the Kafka transport. The services are another
//! process (this binary again, `KAFKA_SIGNALS_PRODUCER` set), so the instance's CPU time is its own: at a steady
//! rate of tests per second for a window, it triggers each test and sends its 4 signals. The rate goes up a step at
//! a time. For each step the bench prints the signals/s offered, how many tests the instance finished (all must
//! PASS) by the window's end and how long it took to finish the rest (its backlog), and the instance's CPU time per
//! signal. The sustained rate is the highest step the instance kept up with: every test finished within 2 s of the
//! window's end.
//!
//! Run: `cargo bench -p livecheck --features kafka --bench kafka_signals`

use std::{
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use livecheck::{
    transport::KafkaTransport, Case, CaseHandle, CaseResult, CaseSettings, LiveCheck, Signal, State, TestRun,
};

#[path = "support/cpu.rs"]
mod cpu;
use cpu::cpu_time;

#[path = "../tests/support/tansu.rs"]
#[allow(dead_code, unreachable_pub)]
mod tansu;

/// Tests per second offered at each step (4 signals each).
const STEPS: [u32; 5] = [100, 250, 500, 1000, 2000];
const WINDOW: Duration = Duration::from_secs(10);
/// A step is sustained when every test finished within this time after the window.
const KEPT_UP_WITHIN: Duration = Duration::from_secs(2);
const DRAIN: Duration = Duration::from_secs(60);
const PARTITIONS: u32 = 8;

struct FourStages {
    db: Signal<()>,
    kafka: Signal<()>,
    cache: Signal<()>,
    executed: Signal<u64>,
}

impl Case for FourStages {
    type Args = u64;
    async fn run(&self, _test: &TestRun, n: u64) -> CaseResult {
        let timeout = Duration::from_secs(60);
        self.db.wait(timeout).await?;
        self.kafka.wait(timeout).await?;
        self.cache.wait(timeout).await?;
        assert_eq!(self.executed.wait(timeout).await?, n);
        Ok(())
    }
}

fn register(app: &LiveCheck) -> CaseHandle<FourStages> {
    app.register(CaseSettings::new("four_stages"), |s| FourStages {
        db: s.declare("order_sent_to_db"),
        kafka: s.declare("order_sent_to_kafka"),
        cache: s.declare("order_cache_in_redis"),
        executed: s.declare("order_executed"),
    })
    .unwrap()
}

fn app(url: &str) -> LiveCheck {
    let transport = KafkaTransport::connect(url).unwrap().with_partitions(PARTITIONS);
    // Enough room for the tests in flight at the highest step while signals of later tests arrive.
    LiveCheck::builder().transport(transport).max_concurrent_tests(4000).early_signal_limit(100_000).build()
}

/// The services: `rate` tests/s for the window, each triggered and its 4 signals sent in its scope. Prints the
/// number of tests whose messages were all acknowledged by the broker.
async fn produce(url: &str, rate: u32, first: u64) {
    let app = app(url);
    let case = register(&app);
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let failed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let tick = Duration::from_millis(10);
    let mut ticks = tokio::time::interval(tick);
    let per_tick = f64::from(rate) * tick.as_secs_f64();
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut issued = 0u64;
    while start.elapsed() < WINDOW {
        ticks.tick().await;
        let due = (start.elapsed().as_secs_f64() / tick.as_secs_f64() * per_tick) as u64;
        while issued < due {
            let n = first + issued;
            let (case, sent, failed) = (case.clone(), sent.clone(), failed.clone());
            tasks.spawn(async move {
                let result = async {
                    let test = case.trigger(&n).await?;
                    livecheck::scope(Some(test), async {
                        case.db.notify().await?;
                        case.kafka.notify().await?;
                        case.cache.notify().await?;
                        case.executed.send(&n).await
                    })
                    .await
                }
                .await;
                let counter = if result.is_ok() { &sent } else { &failed };
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            });
            issued += 1;
        }
    }
    while tasks.join_next().await.is_some() {}
    println!(
        "{} {}",
        sent.load(std::sync::atomic::Ordering::Relaxed),
        failed.load(std::sync::atomic::Ordering::Relaxed)
    );
}

struct Step {
    rate: u32,
    sent: u64,
    finished_in_window: u64,
    drained_after: Option<Duration>,
    cpu_per_signal: Option<f64>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    // Warnings and errors of the instance and the services (RUST_LOG for more) go to stderr.
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    if let Ok(role) = std::env::var("KAFKA_SIGNALS_PRODUCER") {
        let mut parts = role.split(' ');
        let (url, rate, first) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        runtime.block_on(produce(url, rate.parse().unwrap(), first.parse().unwrap()));
        return;
    }
    if !args.iter().any(|a| a == "--bench") {
        println!("kafka_signals: skipped (`cargo bench -p livecheck --features kafka --bench kafka_signals` runs it)");
        return;
    }
    let broker = tansu::Tansu::start();
    let url = broker.url.clone();
    let steps = runtime.block_on(async {
        let app = app(&url);
        let case = register(&app);
        let running = app.start().await.unwrap();
        // Joined, assigned and reading before the first step.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let mut steps = Vec::new();
        let mut first = 0u64;
        for rate in STEPS {
            let finished_before = app.metrics().tests_finished;
            let cpu_before = cpu_time();
            let producer = Command::new(std::env::current_exe().unwrap())
                .env("KAFKA_SIGNALS_PRODUCER", format!("{url} {rate} {first}"))
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap();
            let output = tokio::task::spawn_blocking(move || producer.wait_with_output()).await.unwrap().unwrap();
            let finished_in_window = app.metrics().tests_finished - finished_before;
            let window_end = Instant::now();
            let counts = String::from_utf8_lossy(&output.stdout);
            let mut counts = counts.split_whitespace().map(|n| n.parse::<u64>().unwrap());
            let (sent, failed) = (counts.next().unwrap(), counts.next().unwrap());
            assert_eq!(failed, 0, "the services could not send every message at {rate} tests/s");
            while app.metrics().tests_finished - finished_before < sent && window_end.elapsed() < DRAIN {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let finished = app.metrics().tests_finished - finished_before;
            let drained_after = (finished >= sent).then(|| window_end.elapsed());
            let cpu_per_signal =
                cpu_before.zip(cpu_time()).map(|(a, b)| (b - a).as_secs_f64() * 1e6 / (4 * sent.max(1)) as f64);
            first += sent;
            let step = Step { rate, sent, finished_in_window, drained_after, cpu_per_signal };
            println!(
                "  {:>5} signals/s offered: {} tests sent, {} finished in the window, {}; instance CPU {} per signal",
                4 * rate,
                step.sent,
                step.finished_in_window,
                match step.drained_after {
                    Some(after) => format!("the rest within {:.1} s", after.as_secs_f64()),
                    None => format!("{} NOT finished {} s later", sent - finished, DRAIN.as_secs()),
                },
                step.cpu_per_signal.map_or("n/a".into(), |cpu| format!("{cpu:.1} us")),
            );
            let kept_up = step.drained_after.is_some_and(|after| after <= KEPT_UP_WITHIN);
            if !kept_up {
                let m = app.metrics();
                println!(
                    "    instance then: {} tests received, {} executing, {} signals received, {} held for tests not \
                     started, {} evicted, {} expired, {} late",
                    m.tests_received,
                    m.tests_executing,
                    m.signals_received,
                    m.signals_held,
                    m.signals_evicted,
                    m.signals_expired,
                    m.signals_late
                );
            }
            steps.push(step);
            if !kept_up {
                break;
            }
        }
        let health = case.health();
        assert_eq!(health.count(State::Fail) + health.count(State::Error), 0, "no test failed: {health:?}");
        running.shutdown().await.unwrap();
        steps
    });
    let sustained = steps.iter().rev().find(|s| s.drained_after.is_some_and(|a| a <= KEPT_UP_WITHIN));
    let cpu = steps.iter().rev().find_map(|s| s.cpu_per_signal);
    println!(
        "kafka_signals [one instance, {PARTITIONS} partitions, tansu on this machine, steps of {} s]: sustained {} \
         signals/s ({}); instance CPU {} per signal at the last step",
        WINDOW.as_secs(),
        sustained.map_or(0, |s| 4 * s.sent / WINDOW.as_secs()),
        sustained.map_or("no step kept up".into(), |s| format!("{} tests/s", s.rate)),
        cpu.map_or("n/a".into(), |cpu| format!("{cpu:.1} us")),
    );
}
