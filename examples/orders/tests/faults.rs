//! The tutorial under faults, end to end: `orders chaos` places orders (each a test execution) while LiveCheck
//! instances are killed, restarted, added and removed, and every execution must get exactly one PASS report.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

/// The same broker starter as the library's tests.
#[path = "../../../livecheck/tests/support/tansu.rs"]
#[allow(unreachable_pub)]
mod tansu;

const BIN: &str = env!("CARGO_BIN_EXE_orders");

#[test]
fn every_execution_gets_one_passing_report_while_instances_are_killed_and_restarted() {
    run_chaos(&["--kills", "3"], None);
}

/// On a real Kafka-protocol broker (tansu with its SQLite storage), killed and restarted once while the orders
/// come in, with an instance stopped with Ctrl-C and restarted, and one added mid-run and removed.
#[test]
fn on_kafka_through_a_broker_restart_and_members_joining_and_leaving() {
    let mut broker = tansu::Tansu::start();
    let url = broker.url.clone();
    run_chaos(&["--broker", &url, "--kills", "0"], Some(&mut broker));
}

/// The same with SIGKILLs of instances too. Under rapid kills tansu 0.6's group coordinator leaves partitions
/// without a consumer for good — every one of them once a dead group leader's session expired while the group
/// formed, or a dead member's share when it was evicted from a stable group — and Kafka's own coordinator does not.
/// Every instance watches for partitions with tests waiting and no owner and rejoins its group to have them
/// assigned (`livecheck/src/transport/kafka/owners.rs`); an execution lost anyway shows in the output with the
/// instances' logs, where each such partition is an ERROR.
#[test]
fn on_kafka_with_sigkills_too() {
    let mut broker = tansu::Tansu::start();
    let url = broker.url.clone();
    run_chaos(&["--broker", &url, "--kills", "3"], Some(&mut broker));
}

/// Runs `orders chaos`; with a broker, restarts it (SIGKILL) 8 s in, while orders are placed and instances killed.
fn run_chaos(extra: &[&str], broker: Option<&mut tansu::Tansu>) {
    let child = Command::new(BIN)
        .args(["chaos", "--executions", "150", "--rate", "25", "--instances", "2"])
        .args(extra)
        // Reports that are coming arrive well within this; a run that loses some must not take minutes.
        .args(["--drain-timeout", "60"])
        .env_remove("LIVECHECK_BROKER")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("orders chaos runs");
    if let Some(broker) = broker {
        std::thread::sleep(Duration::from_secs(8));
        broker.restart();
    }
    let output = child.wait_with_output().expect("orders chaos runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let summary = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str::<serde_json::Value>(line).ok().filter(serde_json::Value::is_object))
        .unwrap_or_else(|| panic!("no JSON summary line; stdout:\n{stdout}\nstderr:\n{stderr}"));
    // The run's summary (shown with --nocapture).
    println!("{summary}");
    for problem in ["lost", "duplicated", "wrong"] {
        assert_eq!(summary[problem], 0, "{problem} executions; stdout:\n{stdout}\nstderr:\n{stderr}");
    }
    assert_eq!(summary["issued"], 150, "executions issued; stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(output.status.success(), "orders chaos failed ({}); stdout:\n{stdout}\nstderr:\n{stderr}", output.status);
}
