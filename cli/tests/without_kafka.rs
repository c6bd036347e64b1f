//! The command built without Kafka (`cargo test -p livecheck-cli --no-default-features --features sqlite --test
//! without_kafka`; scripts/test runs it): a `kafka://` broker is refused at once, saying how to get one with it.
//! In a build with Kafka there is nothing to check here.
#![cfg(not(feature = "kafka"))]

use std::process::Command;

#[test]
fn a_kafka_broker_given_to_a_build_without_kafka_is_refused_saying_so() {
    for args in [&["tail", "--broker", "kafka://127.0.0.1:9"][..], &["trigger", "orders.test_order"]] {
        let output = Command::new(env!("CARGO_BIN_EXE_livecheck"))
            .args(args)
            .env("LIVECHECK_BROKER", "kafka://127.0.0.1:9")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("built without Kafka"), "{args:?}: {stderr}");
        assert!(stderr.contains("cargo install livecheck-cli --features kafka"), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    }
}
