//! `--log-format json`: every log line is a JSON object, and a test's outcome carries its case, test id, state
//! and runtime as fields that a log pipeline can filter on.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_orders");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn json_logs_carry_case_test_state_and_runtime_as_fields() {
    let dir = std::env::temp_dir().join(format!("orders-json-logs-{}-{}", std::process::id(), free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    let broker = format!("sqlite://{}/livecheck.sqlite3", dir.display());
    let output = Command::new(BIN)
        .args(["demo", "--seconds", "5", "--port", &free_port().to_string(), "--broker", &broker])
        .args(["--log-format", "json"])
        .env_remove("LIVECHECK_BROKER")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}")))
        .collect();
    let finished: Vec<&serde_json::Value> = lines.iter().filter(|line| line["fields"]["state"].is_string()).collect();
    assert!(!finished.is_empty(), "no test outcome logged in 5 s:\n{stderr}");
    for line in finished {
        let fields = &line["fields"];
        assert_eq!(fields["case"], "orders.test_order", "{line}");
        assert!(fields["test"].as_str().is_some_and(|id| !id.is_empty()), "{line}");
        assert!(fields["runtime"].is_number() || fields["state"] == "SKIP", "{line}");
        assert!(fields["message"].as_str().is_some_and(|m| m.contains("orders.test_order[")), "{line}");
    }
}
