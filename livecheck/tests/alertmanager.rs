//! Alerts posted to a real Alertmanager (Debian `prometheus-alertmanager`, started here on a free loopback port):
//! it receives a suite failure labelled by case, kind and severity, groups it, and the recovery resolves it.

mod support;

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use livecheck::{transport::MemoryTransport, Case, CaseResult, CaseSettings, TestRun};
use serde::{Deserialize, Serialize};
use support::{builder, until};

/// An Alertmanager process, killed on drop, with its storage in a temporary directory.
struct Alertmanager {
    child: Child,
    dir: std::path::PathBuf,
    url: String,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn binary() -> &'static str {
    for name in ["prometheus-alertmanager", "alertmanager"] {
        if Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success()) {
            return name;
        }
    }
    panic!("Alertmanager is not installed: `sudo apt-get install -y prometheus-alertmanager` (scripts/test does it)");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Alertmanager {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("livecheck-alertmanager-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        // Groups by case; one receiver that goes nowhere (the API is what is checked).
        let config = "route:\n  receiver: none\n  group_by: [case]\n  group_wait: 1s\nreceivers:\n  - name: none\n";
        std::fs::write(dir.join("alertmanager.yml"), config).unwrap();
        let port = free_port();
        let child = Command::new(binary())
            .arg(format!("--config.file={}", dir.join("alertmanager.yml").display()))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Alertmanager { child, dir, url: format!("http://127.0.0.1:{port}") }
    }

    /// `GET path` as JSON, in real time; `None` while it does not answer.
    async fn get(&self, path: &str) -> Option<serde_json::Value> {
        let response = reqwest::get(format!("{}{path}", self.url)).await.ok()?;
        response.json().await.ok()
    }
}

/// Waits in real time (blocking the paused clock) up to 60 s for `check` to hold on Alertmanager's answer.
async fn wait_for(am: &Alertmanager, path: &str, check: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(answer) = am.get(path).await {
            if check(&answer) {
                return answer;
            }
            if std::time::Instant::now() > deadline {
                panic!("Alertmanager's {path} never matched: {answer}");
            }
        }
        assert!(std::time::Instant::now() < deadline, "Alertmanager did not answer on {}", am.url);
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[derive(Serialize, Deserialize)]
struct Args {
    pass: bool,
}

struct Verdicts;

impl Case for Verdicts {
    type Args = Args;
    async fn run(&self, _test: &TestRun, args: Args) -> CaseResult {
        livecheck::ensure!(args.pass, "told to fail");
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_receives_groups_and_resolves_livecheck_alerts() {
    let am = Alertmanager::start();
    wait_for(&am, "/api/v2/status", |status| status["config"].is_object()).await;
    let transport = MemoryTransport::new();
    let app = builder(&transport)
        .alert_webhook(format!("alertmanager+{}", am.url))
        .alert_instance("checker-1")
        .alert_dashboard_url("http://livecheck.example/")
        .build();
    let settings = |name: &str| {
        CaseSettings::new(name).max_consecutive_failures(1).state_transition_delay(Duration::from_millis(1))
    };
    let orders = app.register(settings("orders.test_order"), |_| Verdicts).unwrap();
    let refunds = app.register(settings("payments.test_refund"), |_| Verdicts).unwrap();
    let running = app.start().await.unwrap();
    for case in [&orders, &refunds] {
        let before = app.metrics().tests_finished;
        case.trigger(&Args { pass: false }).await.unwrap();
        until(Duration::from_secs(10), || app.metrics().tests_finished > before).await;
    }

    // Both fire, labelled by case, kind and severity, the dashboard in the annotations; grouped by case.
    let alerts =
        wait_for(&am, "/api/v2/alerts?active=true", |alerts| alerts.as_array().is_some_and(|a| a.len() == 2)).await;
    for alert in alerts.as_array().unwrap() {
        let labels = &alert["labels"];
        assert_eq!(labels["alertname"], "LiveCheckCaseFailing", "{alert}");
        assert_eq!(labels["kind"], "consecutive_failures");
        assert_eq!(labels["severity"], "error");
        assert_eq!(labels["instance"], "checker-1");
        assert_eq!(alert["annotations"]["dashboard"], "http://livecheck.example/");
        assert_eq!(alert["annotations"]["example_error"], "told to fail");
        assert_eq!(alert["status"]["state"], "active");
    }
    let groups = wait_for(&am, "/api/v2/alerts/groups", |groups| groups.as_array().is_some_and(|g| g.len() == 2)).await;
    let mut cases: Vec<&str> =
        groups.as_array().unwrap().iter().map(|g| g["labels"]["case"].as_str().unwrap()).collect();
    cases.sort_unstable();
    assert_eq!(cases, ["orders.test_order", "payments.test_refund"]);

    // A passing test recovers the orders case: its alert ends; the other stays.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let before = app.metrics().tests_finished;
    orders.trigger(&Args { pass: true }).await.unwrap();
    until(Duration::from_secs(10), || app.metrics().tests_finished > before).await;
    let active =
        wait_for(&am, "/api/v2/alerts?active=true", |alerts| alerts.as_array().is_some_and(|a| a.len() == 1)).await;
    assert_eq!(active[0]["labels"]["case"], "payments.test_refund");
    running.shutdown().await.unwrap();
    let delivered = app.alert_deliveries();
    assert!(delivered.iter().all(|d| d.delivered), "{delivered:?}");
}
