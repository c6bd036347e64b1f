//! The real `livecheck` binary against a Kafka broker that cannot be reached: `--timeout` bounds `trigger` and
//! `tail` whatever the broker does, and they end with exit 2 and one line naming the broker.

use std::{
    net::TcpListener,
    process::{Output, Stdio},
    time::Duration,
};

use tokio::process::Command;

/// Bounds every run of the command, so that a hanging one fails the test instead of hanging it: far above the
/// `--timeout` given, not a speed check.
const PATIENCE: Duration = Duration::from_secs(60);

/// A loopback port nothing listens on: bound, then let go.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Runs `livecheck ARGS…` to its end with a clean environment; killed (and the test failed) past `PATIENCE`.
async fn run(args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_livecheck"))
        .args(args)
        .env_remove("LIVECHECK_BROKER")
        .env_remove("LIVECHECK_SIGNING_SECRET")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(PATIENCE, child.wait_with_output()).await;
    output.unwrap_or_else(|_| panic!("`livecheck {}` still ran after {PATIENCE:?}", args.join(" "))).unwrap()
}

/// Exit 2, and the last line of stderr says that `broker` did not answer within `timeout`.
fn assert_gave_up(output: &Output, broker: &str, timeout: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr:\n{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert_eq!(last, format!("livecheck: error: the broker {broker} did not answer within {timeout}"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(output.stdout.is_empty(), "nothing on stdout: {}", String::from_utf8_lossy(&output.stdout));
}

#[tokio::test]
async fn trigger_and_tail_give_up_after_the_timeout_when_nothing_listens() {
    let broker = format!("kafka://127.0.0.1:{}", closed_port());
    let trigger = run(&["trigger", "orders.test_order", "--broker", &broker, "--timeout", "3s"]).await;
    assert_gave_up(&trigger, &broker, "3.00s");
    let tail = run(&["tail", "--broker", &broker, "--timeout", "3s"]).await;
    assert_gave_up(&tail, &broker, "3.00s");
}

/// A listener that accepts connections and never answers (a half-open peer, a firewall that drops replies): every
/// request of the Kafka client waits for its own timeout, which is longer than the command's.
#[tokio::test]
async fn trigger_and_tail_give_up_after_the_timeout_when_the_broker_never_answers() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let broker = format!("kafka://{}", listener.local_addr().unwrap());
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((connection, _)) = listener.accept().await {
            held.push(connection);
        }
    });
    let trigger = run(&["trigger", "orders.test_order", "--broker", &broker, "--timeout", "3s"]).await;
    assert_gave_up(&trigger, &broker, "3.00s");
    let tail = run(&["tail", "--broker", &broker, "--timeout", "3s"]).await;
    assert_gave_up(&tail, &broker, "3.00s");
    silent.abort();
}
