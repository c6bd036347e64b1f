//! Day-one rough edges: a reader that goes away, colour codes in a pipe, options on the process that does not
//! use them, and whether `post-order`'s order was sampled into a test.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

const BIN: &str = env!("CARGO_BIN_EXE_orders");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A directory removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("orders-{name}-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn broker(&self) -> String {
        format!("sqlite://{}/livecheck.sqlite3", self.0.display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed on drop.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `orders demo … 2>&1 | head -1`: the process must end by itself, quietly, with status 0.
fn demo_piped_to_head(log_format: &str) {
    let dir = TempDir::new("head");
    let (port, web_port) = (free_port().to_string(), free_port().to_string());
    let command = format!(
        "'{BIN}' demo --seconds 60 --port {port} --web-port {web_port} --broker '{}' --log-format {log_format} 2>&1 \
         | head -1 >/dev/null; echo ${{PIPESTATUS[0]}}",
        dir.broker()
    );
    let started = Instant::now();
    let output = Command::new("bash").args(["-c", &command]).env_remove("LIVECHECK_BROKER").output().unwrap();
    let status = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert_eq!(status, "0", "`orders demo --log-format {log_format} 2>&1 | head -1` exits quietly with 0");
    assert!(started.elapsed() < Duration::from_secs(30), "it stops soon after its reader went away");
}

#[test]
fn a_closed_stderr_ends_the_demo_quietly_in_text() {
    demo_piped_to_head("text");
}

#[test]
fn a_closed_stderr_ends_the_demo_quietly_in_json() {
    demo_piped_to_head("json");
}

#[test]
fn logs_to_a_pipe_carry_no_colour_codes() {
    let dir = TempDir::new("ansi");
    let output = Command::new(BIN)
        .args(["demo", "--seconds", "3", "--port", &free_port().to_string(), "--web-port", &free_port().to_string()])
        .args(["--broker", &dir.broker()])
        .env_remove("LIVECHECK_BROKER")
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("PASS") || stderr.contains("INFO"), "{stderr}");
    assert!(!stderr.contains('\x1b'), "no escape codes in a pipe: {stderr:?}");
}

fn help(command: &str) -> String {
    let output = Command::new(BIN).args([command, "--help"]).output().unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn each_process_takes_only_the_options_it_uses() {
    let livecheck = help("livecheck");
    assert!(livecheck.contains("[env: LIVECHECK_ALERT_WEBHOOKS"), "the help names the variables: {livecheck}");
    assert!(livecheck.contains("[env: LIVECHECK_ALERT_WEBHOOK_SECRET"), "{livecheck}");
    assert!(!livecheck.contains("--probability"), "the worker draws: {livecheck}");
    assert!(livecheck.contains("--url-error-retries") && livecheck.contains("--stage-timeout"), "{livecheck}");
    let worker = help("worker");
    assert!(!worker.contains("--url-error-retries"), "the instance makes the fake requests: {worker}");
    assert!(!worker.contains("--stage-timeout"), "the instance waits for the stages: {worker}");
    assert!(worker.contains("--probability"), "{worker}");
    let chaos = help("chaos");
    assert!(chaos.contains("--broker"), "{chaos}");
    assert!(!chaos.contains("livecheck-data"), "chaos does not use the tutorial's log: {chaos}");
    assert!(!chaos.contains("[env: LIVECHECK_BROKER"), "{chaos}");
    for (command, option) in [("livecheck", "--probability"), ("worker", "--url-error-retries")] {
        let output = Command::new(BIN).args([command, option, "1"]).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "`orders {command} {option}` is refused");
    }
}

/// Runs `post-order` until it has seen an order sampled and one not (probability 0.5); their stdout.
#[test]
fn post_order_says_whether_the_order_is_tested_and_its_test_id() {
    let dir = TempDir::new("post-order");
    let port = free_port().to_string();
    let worker = Command::new(BIN)
        .args(["worker", "--port", &port, "--broker", &dir.broker(), "-l", "warn"])
        .env_remove("LIVECHECK_BROKER")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _worker = Child(worker);
    let base_url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut sampled, mut not_sampled) = (None, None);
    while (sampled.is_none() || not_sampled.is_none()) && Instant::now() < deadline {
        let output =
            Command::new(BIN).args(["post-order", "--side", "sell", "--base-url", &base_url]).output().unwrap();
        if !output.status.success() {
            std::thread::sleep(Duration::from_millis(200)); // the worker is still starting
            continue;
        }
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let mut lines = stdout.lines();
        let order: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        let said = lines.next().unwrap_or_default().to_owned();
        if said.starts_with("sampled into test ") {
            let id = order["id"].as_str().unwrap();
            assert!(said.contains(id), "the test id is the order id: {said}");
            assert!(said.contains("orders.test_order"), "{said}");
            sampled = Some(said);
        } else {
            assert!(said.starts_with("not sampled into a test"), "{stdout}");
            not_sampled = Some(said);
        }
    }
    assert!(sampled.is_some() && not_sampled.is_some(), "both seen: {sampled:?} {not_sampled:?}");
}
