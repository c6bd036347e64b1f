//! `livecheck status` (the real binary) against an HTTP server serving the instance's JSON API contract.
//!
//! The server here is a stand-in for a LiveCheck instance with the `web` feature: it answers `GET /api/status`
//! with contract-shaped JSON.

use std::{process::Output, time::Duration};

use axum::{routing::get, Router};
use serde_json::{json, Value};
use tokio::process::Command;

/// Bounds every command, so that none hangs: generous, not a speed check.
const PATIENCE: Duration = Duration::from_secs(60);

fn case(name: &str, status: &str, failing: bool) -> Value {
    json!({
        "name": name, "status": status, "failing": failing,
        "service_down": null, "stall": null, "last_suite_failure": null,
        "counts": {"PASS": 10, "FAIL": 0, "ERROR": 0, "TIMEOUT": 0, "SKIP": 0},
        "consecutive_failures": 0, "total_failures": 0,
        "pass_rate": {"last": 10, "passed": 10, "rate": 1.0},
        "runtime_median_seconds": 0.04, "interval_median_seconds": 1.0, "lateness_median_seconds": 0.0,
        "in_flight": 0, "oldest_in_flight_seconds": null
    })
}

fn status(cases: Vec<Value>) -> Value {
    json!({
        "instance": {"started_at": "2026-01-02T03:00:00Z", "leader": true, "transport": "sqlite:///tmp/lc.sqlite3",
                     "metrics": {"tests_received": 12}},
        "cases": cases
    })
}

/// Serves `/failing/api/status` (one failing case, listed first), `/passing/api/status` and `/broken/api/status`
/// (not JSON); everything else is a 404. Returns the base URL.
async fn serve() -> String {
    let mut failing = case("orders.test_order", "FAIL", true);
    failing["service_down"] =
        json!({"since": "2026-01-02T03:04:05Z", "url": "http://localhost:6066", "last_error": "connection refused"});
    failing["counts"]["FAIL"] = json!(3);
    failing["pass_rate"] = json!({"last": 13, "passed": 10, "rate": 0.769});
    failing["in_flight"] = json!(2);
    failing["oldest_in_flight_seconds"] = json!(12.5);
    let failing = status(vec![failing, case("payments.test_refund", "PASS", false)]);
    let passing = status(vec![case("payments.test_refund", "PASS", false), case("ping", "INIT", false)]);
    let router = Router::new()
        .route("/failing/api/status", get(move || async move { axum::Json(failing) }))
        .route("/passing/api/status", get(move || async move { axum::Json(passing) }))
        .route("/broken/api/status", get(|| async { "<html>a proxy's error page</html>" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

async fn livecheck(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_livecheck"));
    command.args(args).env_remove("LIVECHECK_URL").env("NO_COLOR", "1").kill_on_drop(true);
    tokio::time::timeout(PATIENCE, command.output()).await.expect("the command ended").unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_case_is_listed_first_with_its_cause_and_the_exit_code_is_1() {
    let base = serve().await;
    let out = livecheck(&["status", "--url", &format!("{base}/failing/")]).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "stdout: {stdout}\nstderr: {}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0],
        "2 cases, 1 failing; instance leader, started 2026-01-02 03:00:00Z, on sqlite:///tmp/lc.sqlite3"
    );
    assert!(lines[1].starts_with("CASE") && lines[1].ends_with("CAUSE"), "{}", lines[1]);
    let failing: Vec<&str> = lines[2].split("  ").filter(|cell| !cell.is_empty()).map(str::trim).collect();
    assert_eq!(
        failing,
        [
            "orders.test_order",
            "FAIL",
            "77% (10/13)",
            "10/3/0/0/0",
            "40ms",
            "2 (oldest 12.50s)",
            "service down since 2026-01-02 03:04:05Z (http://localhost:6066: connection refused)"
        ]
    );
    assert!(lines[3].starts_with("payments.test_refund") && lines[3].contains("PASS"), "{}", lines[3]);
    assert_eq!(lines.len(), 4);
    assert!(!stdout.contains('\x1b'), "no colours when stdout is not a terminal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_passing_is_exit_0_and_json_prints_the_answer_as_is() {
    let base = serve().await;
    let out = livecheck(&["status", "--url", &format!("{}/passing", base.trim_start_matches("http://"))]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("2 cases, 0 failing"));

    let json = livecheck(&["status", "--json", "--url", &format!("{base}/failing")]).await;
    assert_eq!(json.status.code(), Some(1), "the exit code tells with --json too");
    let answer: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(answer["cases"][0]["name"], "orders.test_order");
    assert_eq!(
        answer["instance"]["metrics"]["tests_received"], 12,
        "the whole answer, fields the table leaves out too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_instance_or_one_that_is_not_livecheck_is_exit_2_naming_the_url_and_cause() {
    // A port nobody listens on: bound, then let go.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let out = livecheck(&["status", "--url", &url]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("cannot reach the LiveCheck instance at {url}")), "{stderr}");
    assert!(stderr.to_lowercase().contains("connection refused"), "the cause: {stderr}");
    assert!(out.stdout.is_empty());

    let base = serve().await;
    let missing = livecheck(&["status", "--url", &format!("{base}/elsewhere")]).await;
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("answered HTTP 404"), "{}", text(&missing.stderr));
    let broken = livecheck(&["status", "--url", &format!("{base}/broken")]).await;
    assert_eq!(broken.status.code(), Some(2));
    assert!(text(&broken.stderr).contains("did not answer a LiveCheck status"), "{}", text(&broken.stderr));
}
