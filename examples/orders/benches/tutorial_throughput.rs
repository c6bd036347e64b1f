//! Tests/s the tutorial sustains end to end with probability 1.0: real `worker` and `livecheck` processes on the
//! embedded log, 32 clients placing orders for 10 s; counts the PASS reports.

use std::{
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use livecheck::{
    transport::{SqliteTransport, Transport},
    State, TestReport,
};

const BIN: &str = env!("CARGO_BIN_EXE_orders");
const CLIENTS: usize = 32;
const LOAD: Duration = Duration::from_secs(10);

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("livecheck-tutorial-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let broker = format!("sqlite://{}/livecheck.sqlite3", dir.display());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base_url = format!("http://127.0.0.1:{port}");
    let spawn = |args: &[&str]| {
        Process(
            Command::new(BIN)
                .args(args)
                .args(["--broker", &broker, "-l", "error"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let _worker = spawn(&["worker", "--port", &port.to_string(), "--probability", "1"]);
    let status_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let _livecheck = spawn(&["livecheck", "--base-url", &base_url, "--port", &status_port]);

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let url = format!("{base_url}/order/init/sell/");
        let started = Instant::now();
        while http.get(&url).send().await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "the worker did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let db = broker.trim_start_matches("sqlite://").to_owned();
        let mut reports = SqliteTransport::open(&db).unwrap().subscribe("livecheck-report", "bench").await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;

        let posted = Arc::new(AtomicU64::new(0));
        let load_start = Instant::now();
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (http, url, posted) = (http.clone(), url.clone(), posted.clone());
                tokio::spawn(async move {
                    while load_start.elapsed() < LOAD {
                        if http.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
                            posted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        let (mut passed, mut failed, mut last_pass) = (0u64, 0u64, load_start);
        let drain_until = load_start + LOAD + Duration::from_secs(5);
        while Instant::now() < drain_until {
            let left = drain_until.saturating_duration_since(Instant::now());
            let Ok(received) = tokio::time::timeout(left, reports.recv()).await else { break };
            let report: TestReport = serde_json::from_slice(&received.unwrap().message.value).unwrap();
            match (report.test.is_some(), report.state) {
                (true, State::Pass) => {
                    passed += 1;
                    last_pass = Instant::now();
                }
                (true, _) => failed += 1,
                _ => {}
            }
        }
        for client in clients {
            let _ = client.await;
        }
        let posted = posted.load(Ordering::Relaxed);
        let seconds = last_pass.duration_since(load_start).as_secs_f64().max(LOAD.as_secs_f64());
        println!(
            "tutorial end to end, probability 1.0, {CLIENTS} clients for {LOAD:?}: {posted} orders placed \
             ({:.0}/s), {passed} tests passed ({:.0} tests/s), {failed} did not pass",
            posted as f64 / LOAD.as_secs_f64(),
            passed as f64 / seconds,
        );
    });
    let _ = std::fs::remove_dir_all(&dir);
}
