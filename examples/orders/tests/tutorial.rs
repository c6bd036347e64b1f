//! The tutorial end to end: the real `worker` and `livecheck` processes on the embedded transport, as a user runs
//! them; then a broken stage at a time, and finally a stopped worker. The Redis test needs `redis-server`
//! (`LIVECHECK_REDIS_SERVER`, else the one on PATH; `scripts/test` installs it).

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use livecheck::{
    transport::{Event, SqliteTransport, Subscription, Transport},
    wire::TestReport,
    State,
};

const BIN: &str = env!("CARGO_BIN_EXE_orders");

/// How long a process may take to answer on its HTTP port after it was started.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// A child process killed when the test ends, however it ends.
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

struct Tutorial {
    dir: std::path::PathBuf,
    broker: String,
    port: u16,
}

impl Tutorial {
    fn new() -> Self {
        // A broker of its own: the tests of this file run at the same time.
        let dir = std::env::temp_dir().join(format!("livecheck-tutorial-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        let broker = format!("sqlite://{}/livecheck.sqlite3", dir.display());
        Tutorial { dir, broker, port: free_port() }
    }

    fn spawn(&self, args: &[&str]) -> Process {
        let log = std::fs::File::create(self.dir.join(format!("{}.log", args[0]))).unwrap();
        let child = Command::new(BIN)
            .args(args)
            .args(["--broker", &self.broker, "-l", "warn"])
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Process(child)
    }

    fn log(&self, process: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{process}.log"))).unwrap_or_default()
    }

    fn worker(&self, breakage: &[&str]) -> Process {
        let port = self.port.to_string();
        let mut args = vec!["worker", "--port", &port];
        args.extend_from_slice(breakage);
        self.spawn(&args)
    }

    /// Waits until `url`, served by `process` (spawned as `name`), answers HTTP with any status; fails with the
    /// process's log if it exits first or does not answer within [`READY_WITHIN`].
    async fn wait_until_answering(&self, process: &mut Process, name: &str, url: &str) {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(1)).build().unwrap();
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if client.get(url).send().await.is_ok() {
                return;
            }
            if let Some(status) = process.0.try_wait().unwrap() {
                panic!("{name} exited ({status}) before {url} answered; its log:\n{}", self.log(name));
            }
            if Instant::now() >= deadline {
                panic!("{name} did not answer on {url} within {READY_WITHIN:?}; its log:\n{}", self.log(name));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Tutorial {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Reads reports until one matches, failing after `within`.
async fn expect_report(
    reports: &mut Box<dyn Subscription>,
    within: Duration,
    what: &str,
    matches: impl Fn(&TestReport) -> bool,
) -> TestReport {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let received = match tokio::time::timeout(left, reports.recv()).await {
            Ok(Ok(Event::Message(received))) => received,
            Ok(Ok(_assignment)) => continue,
            Ok(Err(error)) => panic!("reading reports failed: {error}"),
            Err(_) => panic!("no report {what} within {within:?}; saw {seen:?}"),
        };
        let report: TestReport = serde_json::from_slice(&received.message.value).unwrap();
        if matches(&report) {
            return report;
        }
        seen.push((report.state, report.error.clone()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tutorial_passes_then_notices_each_broken_stage_and_a_stopped_worker() {
    let tutorial = Tutorial::new();
    let base_url = format!("http://127.0.0.1:{}", tutorial.port);
    let mut worker = tutorial.worker(&[]);
    let status_port = free_port().to_string();
    let web = format!("http://127.0.0.1:{status_port}");
    let status_url = format!("{web}/api/status");
    let mut livecheck = tutorial.spawn(&[
        "livecheck",
        "--base-url",
        &base_url,
        "--port",
        &status_port,
        "--stage-timeout",
        "2",
        "--url-error-retries",
        "2",
    ]);

    let db = tutorial.broker.trim_start_matches("sqlite://");
    let mut reports = SqliteTransport::open(db).unwrap().subscribe(&["livecheck-report"], "e2e").await.unwrap();
    let is_test = |state: State| move |r: &TestReport| r.test.is_some() && r.state == state;

    // Orders placed by a client, and the instance's own fake orders, pass.
    let client = reqwest::Client::new();
    tutorial.wait_until_answering(&mut worker, "worker", &format!("{base_url}/")).await;
    tutorial.wait_until_answering(&mut livecheck, "livecheck", &status_url).await;
    for _ in 0..4 {
        let response = client.get(format!("{base_url}/order/init/sell/")).send().await.unwrap();
        assert!(response.status().is_success());
    }
    let response = client.get(format!("{base_url}/order/init/sideways/")).send().await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::BAD_REQUEST);
    let pass = expect_report(&mut reports, Duration::from_secs(30), "PASS", is_test(State::Pass)).await;
    assert_eq!(pass.case_name, "orders.test_order");
    assert_eq!(pass.signal_latency.0.len(), 4, "{pass:?}");
    // The instance's web server shows the case and the execution, with its four signals received.
    let status: serde_json::Value = client.get(&status_url).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["cases"][0]["name"], "orders.test_order", "{status}");
    assert!(status["instance"]["metrics"]["tests_finished"].as_u64().unwrap() >= 1, "{status}");
    let id = &pass.test.as_ref().unwrap().id;
    let execution: serde_json::Value =
        client.get(format!("{web}/api/executions/{id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(execution["state"], "PASS", "{execution}");
    let signals = execution["signals"].as_array().unwrap();
    assert!(signals.len() == 4 && signals.iter().all(|s| s["status"] == "received"), "{execution}");
    let metrics = client.get(format!("{web}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"livecheck_executions_total{case="orders.test_order",state="PASS"}"#), "{metrics}");

    // A worker that changes the side: FAIL, with the assertion's message.
    drop(worker);
    worker = tutorial.worker(&["--flip-side"]);
    tutorial.wait_until_answering(&mut worker, "worker", &format!("{base_url}/")).await;
    // (A test in flight when a worker stops may time out: look for the failures the breakage causes.)
    let says = |r: &TestReport, text: &str| r.error.as_deref().is_some_and(|e| e.contains(text));
    let fail = expect_report(&mut reports, Duration::from_secs(30), "FAIL on the side", |r| {
        is_test(State::Fail)(r) && says(r, "kept its side")
    })
    .await;
    assert!(fail.traceback.as_deref().unwrap().contains("test_order.rs"), "{fail:?}");

    // A worker that never executes: TIMEOUT on order_executed.
    drop(worker);
    worker = tutorial.worker(&["--skip-signal", "order_executed"]);
    tutorial.wait_until_answering(&mut worker, "worker", &format!("{base_url}/")).await;
    let timeout = expect_report(&mut reports, Duration::from_secs(30), "TIMEOUT on order_executed", |r| {
        is_test(State::Timeout)(r) && says(r, "order_executed")
    })
    .await;
    assert_eq!(timeout.signal_latency.0.len(), 3, "the three other stages arrived: {timeout:?}");

    // No worker: no tests (STALL after 5 s) and fake requests fail (service down after the retries). Two distinct
    // causes: each is reported (suite report, ERROR line) when it starts, whichever came first.
    drop(worker);
    let suite = expect_report(&mut reports, Duration::from_secs(30), "suite failure", |r| r.test.is_none()).await;
    assert!(matches!(suite.state, State::Stall | State::Fail), "{suite:?}");
    let other = if suite.state == State::Stall { "service down" } else { "no test received" };
    expect_report(&mut reports, Duration::from_secs(60), "the other suite failure", |r| {
        r.test.is_none() && says(r, other)
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = tutorial.log("livecheck");
        let error_line = |text: &str| log.lines().any(|l| l.contains("ERROR") && l.contains(text));
        if error_line("STALL: no test received") && error_line("orders.test_order: service down: http://") {
            break;
        }
        assert!(Instant::now() < deadline, "stall and service-down alerts expected in the log:\n{log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `redis-server` (`LIVECHECK_REDIS_SERVER`, else the one on PATH) on a free loopback port, stopped with the test;
/// fails the test, saying how to install it, when it cannot be started.
fn redis_server(dir: &std::path::Path) -> (Process, u16) {
    let binary = std::env::var_os("LIVECHECK_REDIS_SERVER").unwrap_or_else(|| "redis-server".into());
    let port = free_port();
    let spawned = Command::new(&binary)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match spawned {
        Ok(child) => (Process(child), port),
        Err(error) => panic!(
            "redis-server is needed ({} could not be started: {error}): run scripts/test, or \
             `apt-get install redis-server` (or set LIVECHECK_REDIS_SERVER to its path)",
            std::path::Path::new(&binary).display()
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tutorial_passes_with_its_cache_in_redis() {
    let tutorial = Tutorial::new();
    let (_redis, redis_port) = redis_server(&tutorial.dir);
    let cache = format!("redis://127.0.0.1:{redis_port}");
    let base_url = format!("http://127.0.0.1:{}", tutorial.port);
    let port = tutorial.port.to_string();
    // Give redis a moment to listen.
    let client = redis::Client::open(cache.as_str()).unwrap();
    let mut connection = None;
    for _ in 0..100 {
        if let Ok(c) = client.get_multiplexed_async_connection().await {
            connection = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut connection = connection.expect("redis-server accepts connections");
    let mut worker = tutorial.spawn(&["worker", "--port", &port, "--cache", &cache]);
    let status_port = free_port().to_string();
    let mut livecheck =
        tutorial.spawn(&["livecheck", "--base-url", &base_url, "--port", &status_port, "--cache", &cache]);
    tutorial.wait_until_answering(&mut worker, "worker", &format!("{base_url}/")).await;
    tutorial.wait_until_answering(&mut livecheck, "livecheck", &format!("http://127.0.0.1:{status_port}/")).await;

    let db = tutorial.broker.trim_start_matches("sqlite://");
    let mut reports = SqliteTransport::open(db).unwrap().subscribe(&["livecheck-report"], "e2e").await.unwrap();
    let pass =
        expect_report(&mut reports, Duration::from_secs(30), "PASS", |r| r.test.is_some() && r.state == State::Pass)
            .await;
    let order_id = pass.test.unwrap().id;
    let keys: Vec<String> = redis::AsyncCommands::keys(&mut connection, "orders:user:*").await.unwrap();
    let mut found = false;
    for key in keys {
        let member: bool = redis::AsyncCommands::sismember(&mut connection, &key, &order_id).await.unwrap();
        found |= member;
    }
    assert!(found, "order {order_id} is in a user's set in redis");
}

/// Two `livecheck` processes of one group on the tutorial's broker: each one's `/api/status` lists both instances
/// (the group view), one of them the leader, and a broken stage's failures are seen from either, naming who ran
/// them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_each_show_the_whole_group_and_who_ran_what() {
    let tutorial = Tutorial::new();
    let base_url = format!("http://127.0.0.1:{}", tutorial.port);
    let mut worker = tutorial.worker(&["--skip-signal", "order_executed"]);
    let ports = [free_port().to_string(), free_port().to_string()];
    let mut instances: Vec<Process> = ports
        .iter()
        .map(|port| {
            let args = ["livecheck", "--base-url", &base_url, "--port", port, "--stage-timeout", "1"];
            // Each its own log: the second `livecheck` would truncate the first's.
            let log = std::fs::File::create(tutorial.dir.join(format!("livecheck-{port}.log"))).unwrap();
            let child = Command::new(BIN)
                .args(args)
                .args(["--broker", &tutorial.broker, "-l", "warn"])
                .env("NO_COLOR", "1")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap();
            Process(child)
        })
        .collect();
    tutorial.wait_until_answering(&mut worker, "worker", &format!("{base_url}/")).await;
    for (process, port) in instances.iter_mut().zip(&ports) {
        tutorial.wait_until_answering(process, "livecheck", &format!("http://127.0.0.1:{port}/api/status")).await;
    }
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let _ = client.get(format!("{base_url}/order/init/sell/")).send().await;
        let mut views = Vec::new();
        for port in &ports {
            let status: serde_json::Value =
                client.get(format!("http://127.0.0.1:{port}/api/status")).send().await.unwrap().json().await.unwrap();
            views.push(status);
        }
        let complete = views.iter().all(|status| {
            let instances = status["instances"].as_array().cloned().unwrap_or_default();
            let leaders = instances.iter().filter(|i| i["leader"] == true).count();
            let timeouts = instances
                .iter()
                .flat_map(|i| i["recent_failures"].as_array().cloned().unwrap_or_default())
                .filter(|e| e["state"] == "TIMEOUT")
                .count();
            instances.len() == 2 && leaders == 1 && timeouts > 0
        });
        if complete {
            // Both list the same two instances.
            let ids = |status: &serde_json::Value| {
                let mut ids: Vec<String> = status["instances"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i["instance"].as_str().unwrap().to_owned())
                    .collect();
                ids.sort();
                ids
            };
            assert_eq!(ids(&views[0]), ids(&views[1]));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "each instance should list both, one leader, and the TIMEOUTs of whichever ran them; last views: {views:#?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
