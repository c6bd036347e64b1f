//! Options a user gets wrong are rejected at start with a message naming the option and what it takes.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_orders");

fn rejected(args: &[&str], expected: &str) {
    let output = Command::new(BIN).args(args).env_remove("LIVECHECK_BROKER").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "`orders {}` is rejected: {stderr}", args.join(" "));
    assert!(stderr.contains(expected), "`orders {}` says `{expected}`: {stderr}", args.join(" "));
}

#[test]
fn an_unknown_log_level_a_probability_outside_0_to_1_and_an_unknown_signal_are_rejected() {
    rejected(&["-l", "loud", "worker"], "`loud` is not a log level");
    rejected(&["-l", "warn,livecheck=lots", "livecheck"], "`livecheck=lots` is not a log level");
    rejected(&["worker", "--probability", "1.5"], "not a probability from 0 to 1");
    rejected(&["livecheck", "--probability=-0.1"], "not a probability from 0 to 1");
    rejected(&["worker", "--skip-signal", "order_sent_to_mars"], "possible values: order_sent_to_db");
}
