//! The tutorial under faults, end to end: `orders chaos` places orders (each a test execution) while LiveCheck
//! instances are killed, restarted, added and removed, and every execution must get exactly one PASS report.

use std::process::Command;

/// The same broker starter as the library's tests.
#[path = "../../../livecheck/tests/support/tansu.rs"]
#[allow(unreachable_pub)]
mod tansu;

const BIN: &str = env!("CARGO_BIN_EXE_orders");

#[test]
fn every_execution_gets_one_passing_report_while_instances_are_killed_and_restarted() {
    run_chaos(&[]);
}

/// Run with `cargo test -p orders --test faults -- --ignored`. Not in the default run yet: under rapid kills and
/// restarts, tansu 0.6's group coordinator was seen assigning every partition to a joining member while another
/// still held them all (no revocation in between, so two owners commit over each other), and about one short run in
/// three lost executions. Kafka's own coordinator makes a rebalance a barrier; a real Kafka cluster is not available
/// here to show the difference.
#[test]
#[ignore = "tansu 0.6's group coordinator gives partitions to two members at once under rapid kills (issue 7)"]
fn the_same_on_kafka() {
    let broker = tansu::Tansu::start();
    // One record per batch: tansu 0.6 cannot fetch from inside a record batch, as consumers that resume from a
    // committed offset do (Kafka can).
    run_chaos(&["--broker", &format!("{}?batch.num.messages=1", broker.url)]);
}

fn run_chaos(extra: &[&str]) {
    let output = Command::new(BIN)
        .args(["chaos", "--executions", "150", "--rate", "25", "--kills", "3", "--instances", "2"])
        .args(extra)
        // Reports that are coming arrive well within this; a run that loses some must not take minutes.
        .args(["--drain-timeout", "60"])
        .env_remove("LIVECHECK_BROKER")
        .env("NO_COLOR", "1")
        .output()
        .expect("orders chaos runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let summary = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str::<serde_json::Value>(line).ok().filter(serde_json::Value::is_object))
        .unwrap_or_else(|| panic!("no JSON summary line; stdout:\n{stdout}\nstderr:\n{stderr}"));
    for problem in ["lost", "duplicated", "wrong"] {
        assert_eq!(summary[problem], 0, "{problem} executions; stdout:\n{stdout}\nstderr:\n{stderr}");
    }
    assert_eq!(summary["issued"], 150, "executions issued; stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(output.status.success(), "orders chaos failed ({}); stdout:\n{stdout}\nstderr:\n{stderr}", output.status);
}
