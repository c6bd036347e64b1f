//! The real `livecheck serve` binary: the tutorial's case file against the tutorial's worker (the `orders`
//! example binary) on the embedded log — PASS, FAIL on `--flip-side`, TIMEOUT on `--skip-signal` as the Rust case
//! gives; a Python service that uses only `POST /api/tests` and `POST /api/signals`; two instances in one group, one
//! killed with SIGKILL (0 lost, 0 duplicated, 0 wrong); SIGHUP reloads during load; `check-cases`.
//!
//! Every process is started with its ports chosen by the OS (port 0, or a port the OS handed out and released) and
//! is killed when its test ends.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use livecheck::{transport::Transport, wire::TestReport, State};
use serde_json::{json, Value};

const LIVECHECK: &str = env!("CARGO_BIN_EXE_livecheck");
/// Bounds every wait, so that none hangs: generous, not a speed check.
const PATIENCE: Duration = Duration::from_secs(90);
const TOKEN: &str = "serve-test-token";

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

/// The tutorial's `orders` binary, next to this one (built here if it is not).
fn orders_binary() -> PathBuf {
    let dir = Path::new(LIVECHECK).parent().unwrap();
    let binary = dir.join("orders");
    if !binary.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "orders", "--bin", "orders"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success(), "building the orders example");
    }
    binary
}

/// A temporary directory with a broker of its own, removed at the end.
struct Scene {
    dir: PathBuf,
    broker: String,
}

impl Scene {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("livecheck-serve-{name}-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(dir.join("cases")).unwrap();
        let broker = format!("sqlite://{}", dir.join("log.sqlite3").display());
        Scene { dir, broker }
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    /// The tutorial's case file, its fake requests sent to `worker_port`, each stage waited `timeout`.
    fn tutorial_case(&self, worker_port: u16, timeout: &str) {
        let shipped = include_str!("../../examples/orders/cases/test_order.yaml");
        let text = shipped
            .replace("http://localhost:6066", &format!("http://127.0.0.1:{worker_port}"))
            .replace("timeout: 30s", &format!("timeout: {timeout}"));
        assert_ne!(text, shipped);
        std::fs::write(self.dir.join("cases/test_order.yaml"), text).unwrap();
    }

    fn worker(&self, port: u16, breakage: &[&str]) -> Process {
        let log = std::fs::File::create(self.dir.join("worker.log")).unwrap();
        let child = Command::new(orders_binary())
            .args(["worker", "--port", &port.to_string(), "--probability", "1", "--broker", &self.broker, "-l", "warn"])
            .args(breakage)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Process(child)
    }

    /// `livecheck serve` on the cases directory; returns it with its web address once it listens.
    fn serve(&self, name: &str, extra: &[&str]) -> (Process, String) {
        self.serve_with_env(name, extra, &[])
    }

    fn serve_with_env(&self, name: &str, extra: &[&str], env: &[(&str, &str)]) -> (Process, String) {
        let log = std::fs::File::create(self.dir.join(format!("{name}.log"))).unwrap();
        let child = Command::new(LIVECHECK)
            .args(["serve", "--web-address", "127.0.0.1:0", "--watch-every", "0"])
            .arg("--cases")
            .arg(self.dir.join("cases"))
            .args(["--broker", &self.broker])
            .args(extra)
            .env("LIVECHECK_WEB_TOKEN", TOKEN)
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut process = Process(child);
        let address = self.wait_for_address(&mut process, name, 0);
        (process, address)
    }

    /// The address of the `count`-th start (from 0) `serve` logged.
    fn wait_for_address(&self, process: &mut Process, name: &str, count: usize) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let log = self.log(name);
            let starts: Vec<&str> = log.lines().filter_map(|l| l.split("web server on http://").nth(1)).collect();
            if let Some(address) = starts.get(count) {
                return address.trim_end_matches('/').to_owned();
            }
            if let Some(status) = process.0.try_wait().unwrap() {
                panic!("{name} exited ({status}); its log:\n{log}");
            }
            assert!(Instant::now() < deadline, "{name} did not start; its log:\n{log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn transport(&self) -> livecheck::transport::SqliteTransport {
        livecheck::transport::SqliteTransport::open(self.dir.join("log.sqlite3")).unwrap()
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Every message of `stream` now.
async fn read_all(transport: &dyn Transport, stream: &str) -> Vec<livecheck::transport::Received> {
    let mut all = Vec::new();
    let Ok(ends) = transport.end_offsets(stream).await else { return all };
    for (partition, end) in ends.into_iter().enumerate() {
        let mut next = 0;
        while next < end {
            let page = transport.read(stream, partition as u32, next, 1000).await.unwrap();
            let Some(last) = page.last() else { break };
            next = last.offset + 1;
            all.extend(page);
        }
    }
    all
}

/// The reports of tests (not suites) so far.
async fn test_reports(transport: &dyn Transport) -> Vec<TestReport> {
    read_all(transport, "livecheck-report")
        .await
        .iter()
        .filter_map(|r| serde_json::from_slice::<TestReport>(&r.message.value).ok())
        .filter(|r| r.test.is_some())
        .collect()
}

/// Waits for a test report that `matches`, failing after [`PATIENCE`] with what was seen.
async fn expect_report(transport: &dyn Transport, what: &str, matches: impl Fn(&TestReport) -> bool) -> TestReport {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let reports = test_reports(transport).await;
        if let Some(report) = reports.iter().find(|r| matches(r)) {
            return report.clone();
        }
        let seen: Vec<_> = reports.iter().rev().take(5).map(|r| (r.state, r.error.clone())).collect();
        assert!(Instant::now() < deadline, "no report {what}; last seen {seen:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_until_answering(url: &str) {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(1)).build().unwrap();
    let deadline = Instant::now() + PATIENCE;
    while client.get(url).send().await.is_err() {
        assert!(Instant::now() < deadline, "{url} does not answer");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn says(report: &TestReport, text: &str) -> bool {
    let all = format!("{} {}", report.error.as_deref().unwrap_or(""), report.traceback.as_deref().unwrap_or(""));
    all.contains(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tutorial_case_file_gives_the_rust_case_s_verdicts() {
    let scene = Scene::new("tutorial");
    let port = free_port();
    scene.tutorial_case(port, "3s");
    let base_url = format!("http://127.0.0.1:{port}");
    let mut worker = scene.worker(port, &[]);
    wait_until_answering(&format!("{base_url}/")).await;
    let (_serve, web) = scene.serve("serve", &[]);
    let transport = scene.transport();
    let client = reqwest::Client::new();
    let test_of = |state: State| move |r: &TestReport| r.state == state;

    // Orders placed by a client, and the instance's own fake orders: PASS, with the four stages.
    for _ in 0..3 {
        assert!(client.get(format!("{base_url}/order/init/sell/")).send().await.unwrap().status().is_success());
    }
    let pass = expect_report(&transport, "PASS", test_of(State::Pass)).await;
    assert_eq!(pass.case_name, "orders.test_order");
    assert_eq!(pass.signal_latency.0.len(), 4, "{pass:?}");
    let status: Value = client.get(format!("http://{web}/api/status")).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["cases"][0]["name"], "orders.test_order", "{status}");

    // A worker that flips the side: FAIL, naming the contract.
    drop(worker);
    worker = scene.worker(port, &["--flip-side"]);
    wait_until_answering(&format!("{base_url}/")).await;
    let fail = expect_report(&transport, "FAIL on the side", |r| r.state == State::Fail && says(r, "$.side")).await;
    assert!(says(&fail, "test_order.yaml, step 1 (order_sent_to_db)"), "{fail:?}");

    // A worker that never executes: TIMEOUT on order_executed, the three other stages arrived.
    drop(worker);
    let _worker = scene.worker(port, &["--skip-signal", "order_executed"]);
    wait_until_answering(&format!("{base_url}/")).await;
    let timeout = expect_report(&transport, "TIMEOUT on order_executed", |r| {
        r.state == State::Timeout && says(r, "order_executed")
    })
    .await;
    assert_eq!(timeout.signal_latency.0.len(), 3, "{timeout:?}");
}

const PAYMENT: &str = "name: payments.test_payment
settings: { probability: 1.0 }
timeout: 10s
steps:
  - signal: authorized
    assert:
      - { select: $.payment, equals_test_id: true }
      - { select: $.amount, equals_arg: amount }
  - signal: captured
";

/// Runs the Python service (with `env`): `count` payments, the first `wrong` with a wrong amount; the test ids it
/// printed.
fn python_service_with(web: &str, count: usize, wrong: usize, env: &[(&str, &str)]) -> Vec<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/api_service.py");
    let output = Command::new("python3")
        .arg(script)
        .args([&format!("http://{web}"), "payments.test_payment", &count.to_string(), "--wrong", &wrong.to_string()])
        .env("LIVECHECK_WEB_TOKEN", TOKEN)
        .envs(env.iter().copied())
        .output()
        .expect("python3 runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().lines().map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_service_tests_itself_with_only_the_http_api() {
    for signing in [false, true] {
        python_payments(signing).await;
    }
}

/// With signing on, the service sends its signals with the test's signed headers only, no token.
async fn python_payments(signing: bool) {
    let scene = Scene::new(if signing { "python-signed" } else { "python" });
    std::fs::write(scene.dir.join("cases/payment.yaml"), PAYMENT).unwrap();
    let secret: &[(&str, &str)] = if signing { &[("LIVECHECK_SIGNING_SECRET", "serve-test-secret")] } else { &[] };
    let (_serve, web) = scene.serve_with_env("serve", &[], secret);
    let without_token: &[(&str, &str)] = if signing { &[("SIGNALS_WITHOUT_TOKEN", "1")] } else { &[] };
    let ids = python_service_with(&web, 6, 2, without_token);
    assert_eq!(ids.len(), 6);
    let transport = scene.transport();
    let deadline = Instant::now() + PATIENCE;
    let verdicts = loop {
        let reports = test_reports(&transport).await;
        let verdicts: HashMap<String, State> =
            reports.iter().map(|r| (r.test.as_ref().unwrap().id.clone(), r.state)).collect();
        if ids.iter().all(|id| verdicts.contains_key(id)) {
            assert_eq!(reports.len(), ids.len(), "one report each");
            break verdicts;
        }
        assert!(Instant::now() < deadline, "reports missing: {verdicts:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for (n, id) in ids.iter().enumerate() {
        let expected = if n < 2 { State::Fail } else { State::Pass };
        assert_eq!(verdicts[id], expected, "payment {n}");
    }
}

/// Starts `count` payments through `web` (with the token) and sends their first stage; their ids.
async fn start_payments(client: &reqwest::Client, web: &str, prefix: &str, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for n in 0..count {
        let id = format!("{prefix}-{n}");
        let body = json!({"case": "payments.test_payment", "id": id, "args": {"amount": n}});
        let answer =
            client.post(format!("http://{web}/api/tests")).bearer_auth(TOKEN).json(&body).send().await.unwrap();
        assert_eq!(answer.status(), 201);
        // The case named: on Kafka the instance also runs the tutorial's case.
        let body = json!({"case": "payments.test_payment", "test_id": id, "signal": "authorized",
                          "value": {"amount": n, "payment": id}});
        let answer =
            client.post(format!("http://{web}/api/signals")).bearer_auth(TOKEN).json(&body).send().await.unwrap();
        assert_eq!(answer.status(), 202);
        ids.push(id);
    }
    ids
}

/// Sends the last stage of each payment through `web`, retrying while the instance restarts.
async fn finish_payments(client: &reqwest::Client, web: &str, ids: &[String]) {
    for id in ids {
        let body = json!({"case": "payments.test_payment", "test_id": id, "signal": "captured"});
        let deadline = Instant::now() + PATIENCE;
        loop {
            let sent = client.post(format!("http://{web}/api/signals")).bearer_auth(TOKEN).json(&body).send().await;
            if sent.is_ok_and(|answer| answer.status() == 202) {
                break;
            }
            assert!(Instant::now() < deadline, "{id}: the last stage could not be sent");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Waits until every id has a report; then asserts one each, all PASS.
async fn one_pass_each(transport: &dyn Transport, ids: &[String]) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let reports = test_reports(transport).await;
        let mut per_id: HashMap<&str, Vec<State>> = HashMap::new();
        for report in &reports {
            per_id.entry(report.test.as_ref().unwrap().id.as_str()).or_default().push(report.state);
        }
        let lost: Vec<_> = ids.iter().filter(|id| !per_id.contains_key(id.as_str())).collect();
        if lost.is_empty() {
            // A moment for a duplicate to show.
            tokio::time::sleep(Duration::from_secs(1)).await;
            let reports = test_reports(transport).await;
            let mut per_id: HashMap<&str, Vec<State>> = HashMap::new();
            for report in &reports {
                per_id.entry(report.test.as_ref().unwrap().id.as_str()).or_default().push(report.state);
            }
            let duplicated: Vec<_> = per_id.iter().filter(|(_, states)| states.len() > 1).collect();
            let wrong: Vec<_> = per_id.iter().filter(|(_, states)| states.iter().any(|s| *s != State::Pass)).collect();
            assert!(duplicated.is_empty(), "duplicated: {duplicated:?}");
            assert!(wrong.is_empty(), "wrong: {wrong:?}");
            assert_eq!(per_id.len(), ids.len());
            return;
        }
        assert!(Instant::now() < deadline, "lost: {lost:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_one_killed_lose_duplicate_and_misjudge_nothing() {
    let scene = Scene::new("kill");
    std::fs::write(scene.dir.join("cases/payment.yaml"), PAYMENT.replace("timeout: 10s", "timeout: 60s")).unwrap();
    let (mut first, web) = scene.serve("first", &[]);
    let (mut second, second_web) = scene.serve("second", &[]);
    // Both members of the group before the tests come.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let client = reqwest::Client::new();
    let ids = start_payments(&client, &web, "k", 40).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The instance about to be killed runs some of them (the group split the partitions).
    let status: Value =
        client.get(format!("http://{second_web}/api/status")).send().await.unwrap().json().await.unwrap();
    let executing = status["instance"]["metrics"]["tests_executing"].as_u64().unwrap();
    assert!(executing > 0 && executing < 40, "the second instance runs {executing} of the 40 tests");
    // SIGKILL: no goodbye to the group, nothing flushed.
    second.0.kill().unwrap();
    second.0.wait().unwrap();
    finish_payments(&client, &web, &ids).await;
    one_pass_each(&scene.transport(), &ids).await;
    assert!(first.0.try_wait().unwrap().is_none(), "the first instance still runs");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_during_load_without_losing_a_test() {
    let scene = Scene::new("reload");
    std::fs::write(scene.dir.join("cases/payment.yaml"), PAYMENT.replace("timeout: 10s", "timeout: 60s")).unwrap();
    let (mut serve, web) = scene.serve("serve", &[]);
    let client = reqwest::Client::new();
    let pid = serve.0.id().to_string();
    let mut all = Vec::new();
    for round in 0..3 {
        let ids = start_payments(&client, &web, &format!("r{round}"), 15).await;
        // A changed file (a new setting), then SIGHUP: the instance restarts with tests in flight.
        let text = PAYMENT.replace("timeout: 10s", &format!("timeout: {}s", 60 + round));
        std::fs::write(scene.dir.join("cases/payment.yaml"), text).unwrap();
        assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
        let again = scene.wait_for_address(&mut serve, "serve", round + 1);
        assert_eq!(again, web, "the same address after a reload");
        finish_payments(&client, &web, &ids).await;
        all.extend(ids);
    }
    one_pass_each(&scene.transport(), &all).await;
}

#[test]
fn check_cases_names_the_file_and_line_and_exits_1() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/orders/cases/test_order.yaml");
    let ok = Command::new(LIVECHECK).arg("check-cases").arg(&shipped).output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("case orders.test_order ok"));
    let scene = Scene::new("check");
    let bad = scene.dir.join("cases/bad.toml");
    std::fs::write(&bad, "name = \"x\"\n[[steps]]\nsignal = \"a\"\ntimeout = \"soon\"\n").unwrap();
    let out = Command::new(LIVECHECK).arg("check-cases").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.toml:4:") && stderr.contains("`soon` is not a duration"), "{stderr}");
    // `serve` refuses to start on it, saying the same.
    let out = Command::new(LIVECHECK).args(["serve", "--cases"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.toml:4:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_come_from_the_flags_then_the_environment_then_the_config_file() {
    let scene = Scene::new("settings");
    std::fs::write(scene.dir.join("cases/payment.yaml"), PAYMENT).unwrap();
    let config = scene.dir.join("serve.toml");
    let missing = scene.dir.join("missing");
    // The file names the broker and a cases path that does not exist; the environment names the right one.
    std::fs::write(&config, format!("cases = {:?}\nbroker = {:?}\nwatch_every = \"0\"\n", missing, scene.broker))
        .unwrap();
    let started = |env_cases: &Path, flag_cases: Option<&Path>| {
        let mut command = Command::new(LIVECHECK);
        command.args(["serve", "--web-address", "127.0.0.1:0", "--config"]).arg(&config);
        if let Some(flag) = flag_cases {
            command.arg("--cases").arg(flag);
        }
        let log = std::fs::File::create(scene.dir.join("settings.log")).unwrap();
        command.env("LIVECHECK_CASES", env_cases).env_remove("LIVECHECK_BROKER").stdout(Stdio::null()).stderr(log);
        Process(command.spawn().unwrap())
    };
    // The environment beats the file: it starts, on the file's broker.
    let mut serve = started(&scene.dir.join("cases"), None);
    let web = scene.wait_for_address(&mut serve, "settings", 0);
    assert!(scene.log("settings").contains(&scene.broker), "{}", scene.log("settings"));
    let answer = reqwest::Client::new()
        .post(format!("http://{web}/api/tests"))
        .json(&json!({"case": "payments.test_payment", "args": {"amount": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
    drop(serve);
    // The flag beats the environment: a wrong flag is an error, however right the environment is.
    let mut serve = started(&scene.dir.join("cases"), Some(&missing));
    let status = serve.0.wait().unwrap();
    assert_eq!(status.code(), Some(2));
    assert!(scene.log("settings").contains("missing"), "{}", scene.log("settings"));
}

#[cfg(feature = "kafka")]
#[path = "../../livecheck/tests/support/tansu.rs"]
#[allow(dead_code, unreachable_pub)]
mod tansu;

/// The same on Kafka (a tansu broker started here): the tutorial's case file against the worker, and tests started
/// and signalled through the API, each with one PASS.
#[cfg(feature = "kafka")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_kafka_the_case_file_and_the_api_give_one_pass_each() {
    let broker = tansu::Tansu::start();
    let mut scene = Scene::new("kafka");
    scene.broker = broker.url.clone();
    let port = free_port();
    scene.tutorial_case(port, "20s");
    std::fs::write(scene.dir.join("cases/payment.yaml"), PAYMENT.replace("timeout: 10s", "timeout: 60s")).unwrap();
    let base_url = format!("http://127.0.0.1:{port}");
    let _worker = scene.worker(port, &[]);
    wait_until_answering(&format!("{base_url}/")).await;
    let (_serve, web) = scene.serve("serve", &[]);
    let transport = livecheck::transport::from_url(&broker.url).unwrap();
    let client = reqwest::Client::new();
    for _ in 0..3 {
        assert!(client.get(format!("{base_url}/order/init/sell/")).send().await.unwrap().status().is_success());
    }
    let pass = expect_report(&*transport, "PASS of the tutorial", |r| {
        r.case_name == "orders.test_order" && r.state == State::Pass
    })
    .await;
    assert_eq!(pass.signal_latency.0.len(), 4, "{pass:?}");
    let ids = start_payments(&client, &web, "kafka", 10).await;
    finish_payments(&client, &web, &ids).await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let reports = test_reports(&*transport).await;
        let payments: Vec<_> = reports.iter().filter(|r| r.case_name == "payments.test_payment").collect();
        if payments.len() >= ids.len() {
            assert_eq!(payments.len(), ids.len(), "one report each");
            assert!(payments.iter().all(|r| r.state == State::Pass), "{payments:?}");
            break;
        }
        assert!(Instant::now() < deadline, "{} of {} payments reported", payments.len(), ids.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
