//! The tutorial's 4-signal test on Kafka: real `worker` and `livecheck` processes on a local Kafka-compatible
//! broker (tansu, started here), orders at a steady 20/s for 20 s besides the instance's own fake orders; prints the
//! test runtime's p50/p99 from the reports (the Python original needs a median of ~2.3 s per test).

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use livecheck::{
    transport::{KafkaTransport, Transport},
    wire::TestReport,
    State,
};

#[path = "../../../livecheck/tests/support/tansu.rs"]
#[allow(dead_code, unreachable_pub)]
mod tansu;

const BIN: &str = env!("CARGO_BIN_EXE_orders");
const RATE: u32 = 20;
const LOAD: Duration = Duration::from_secs(20);

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    if !args.iter().any(|a| a == "--bench") {
        println!("kafka_latency: skipped (`cargo bench -p orders --bench kafka_latency` runs it)");
        return;
    }
    let broker = tansu::Tansu::start();
    let url = broker.url.clone();
    let port = free_port();
    let base_url = format!("http://127.0.0.1:{port}");
    let spawn = |args: &[&str]| {
        let child = Command::new(BIN)
            .args(args)
            .args(["--broker", &url, "-l", "error"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Process(child)
    };
    let _worker = spawn(&["worker", "--port", &port.to_string()]);
    let _livecheck = spawn(&["livecheck", "--base-url", &base_url, "--port", &free_port().to_string()]);

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let order = format!("{base_url}/order/init/sell/");
        let started = Instant::now();
        while http.get(format!("{base_url}/")).send().await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(60), "the worker did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The instance joins its group and is assigned its partitions.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let mut ticks = tokio::time::interval(Duration::from_secs(1) / RATE);
        let load_start = Instant::now();
        let mut placed = 0;
        while load_start.elapsed() < LOAD {
            ticks.tick().await;
            if http.get(&order).send().await.is_ok_and(|r| r.status().is_success()) {
                placed += 1;
            }
        }
        tokio::time::sleep(Duration::from_secs(5)).await;

        let kafka = KafkaTransport::connect(&url).unwrap();
        let mut runtimes = Vec::new();
        let mut not_passed = 0;
        for (partition, end) in kafka.end_offsets("livecheck-report").await.unwrap().into_iter().enumerate() {
            let mut next = 0;
            while next < end {
                let page = kafka.read("livecheck-report", partition as u32, next, 1000).await.unwrap();
                let Some(last) = page.last() else { break };
                next = last.offset + 1;
                for received in &page {
                    let Ok(report) = serde_json::from_slice::<TestReport>(&received.message.value) else { continue };
                    match (report.test.is_some(), report.state, report.runtime) {
                        (true, State::Pass, Some(runtime)) => runtimes.push(runtime),
                        (true, _, _) => not_passed += 1,
                        _ => {}
                    }
                }
            }
        }
        runtimes.sort_by(f64::total_cmp);
        assert!(!runtimes.is_empty(), "no test passed");
        println!(
            "tutorial on Kafka (tansu), {RATE} orders/s for {LOAD:?} ({placed} placed) plus the instance's fake orders: \
             {} tests passed, {not_passed} did not; runtime p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms \
             [target p50 <= 45 ms]",
            runtimes.len(),
            percentile(&runtimes, 0.5) * 1000.0,
            percentile(&runtimes, 0.99) * 1000.0,
            runtimes.last().copied().unwrap_or(0.0) * 1000.0,
        );
    });
}
