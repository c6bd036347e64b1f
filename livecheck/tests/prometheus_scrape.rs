//! A real Prometheus (Debian `prometheus`, started here on a free loopback port) scrapes a running instance's
//! `/metrics` every second with the rules of `deploy/prometheus/livecheck.rules.yml`, and the case-failing alert
//! fires for the case that fails — not for the one that passes, and "no instance up" does not.
//!
//! The rules are loaded with their `for:` durations cut to 2 s (the expressions are the shipped ones), so the test
//! takes seconds, not minutes; `prometheus_rules.rs` checks the real durations with `promtool test rules`.

mod support;

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use livecheck::{transport::MemoryTransport, Case, CaseResult, CaseSettings, TestRun};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use support::{builder, until};

const RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/prometheus/livecheck.rules.yml");
/// How long Prometheus may live: it stops by itself after this even if the test process is killed before its
/// drop runs.
const PROMETHEUS_LIFETIME_SECONDS: u32 = 300;

/// A Prometheus process with its configuration and storage in a temporary directory; stopped and removed on drop.
struct Prometheus {
    child: Child,
    dir: PathBuf,
    url: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // SIGTERM to `timeout`, which passes it on to Prometheus and exits with it (SIGKILL would orphan it).
        let terminated = Command::new("kill").arg(self.child.id().to_string()).status();
        if !terminated.is_ok_and(|status| status.success()) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Debian's `prometheus` on the PATH, or `/usr/bin/prometheus`; a failed test saying how to install it otherwise.
fn binary() -> &'static str {
    for name in ["prometheus", "/usr/bin/prometheus"] {
        if Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success()) {
            return name;
        }
    }
    panic!("Prometheus is not installed: `sudo apt-get install -y prometheus` (scripts/test does it)");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The shipped rules with every `for:` cut to 2 s; the rest of each line, and every expression, as shipped.
fn fast_rules(shipped: &str) -> String {
    let fast: Vec<String> = shipped
        .lines()
        .map(|line| match line.trim_start().strip_prefix("for:") {
            Some(_) => format!("{}for: 2s", &line[..line.len() - line.trim_start().len()]),
            None => line.to_owned(),
        })
        .collect();
    fast.join("\n") + "\n"
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (`host:port`) as job `livecheck` every second, evaluating `rules` every
    /// second.
    fn start(target: &str, rules: &str) -> Self {
        let binary = binary();
        let dir = std::env::temp_dir().join(format!("livecheck-prometheus-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("livecheck.rules.yml"), rules).unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [{rules}]\nscrape_configs:\n  - \
             job_name: livecheck\n    static_configs: [{{targets: [\"{target}\"]}}]\n",
            rules = dir.join("livecheck.rules.yml").display()
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let port = free_port();
        let child = Command::new("timeout")
            .arg(PROMETHEUS_LIFETIME_SECONDS.to_string())
            .arg(binary)
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .expect("`timeout` (coreutils) starts Prometheus");
        Prometheus { child, dir, url: format!("http://127.0.0.1:{port}") }
    }

    /// `GET path`'s `data`; `None` while Prometheus does not answer.
    async fn get(&self, path: &str) -> Option<Value> {
        let response = reqwest::get(format!("{}{path}", self.url)).await.ok()?;
        let body: Value = response.json().await.ok()?;
        (body["status"] == "success").then(|| body["data"].clone())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// Polls `path` up to 60 s for `check` to hold on its data; fails with the last answer and Prometheus' log.
    async fn wait_for(&mut self, path: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = None;
        while Instant::now() < deadline {
            if let Some(data) = self.get(path).await {
                if check(&data) {
                    return data;
                }
                last = Some(data);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("Prometheus exited ({status}):\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("Prometheus' {path} never matched; last answer {last:?}\nits log:\n{}", self.log());
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

/// The alerts Prometheus has now (pending or firing) named `name`.
fn alerts_named<'a>(alerts: &'a Value, name: &str) -> Vec<&'a Value> {
    alerts["alerts"].as_array().into_iter().flatten().filter(|alert| alert["labels"]["alertname"] == name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_an_instance_and_the_case_failing_alert_fires() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).web_address("127.0.0.1:0").build();
    let settings = |name: &str| {
        CaseSettings::new(name).max_consecutive_failures(1).state_transition_delay(Duration::from_millis(1))
    };
    let orders = app.register(settings("orders.test_order"), |_| Verdicts).unwrap();
    let refunds = app.register(settings("payments.test_refund"), |_| Verdicts).unwrap();
    let running = app.start().await.unwrap();
    let target = running.web_address().expect("the web server is on").to_string();
    for (case, pass) in [(&orders, false), (&refunds, true)] {
        let before = app.metrics().tests_finished;
        case.trigger(&Args { pass }).await.unwrap();
        until(Duration::from_secs(10), || app.metrics().tests_finished > before).await;
    }
    let metrics = reqwest::get(format!("http://{target}/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("livecheck_case_failing{case=\"orders.test_order\"} 1"), "{metrics}");

    let shipped = std::fs::read_to_string(RULES).unwrap();
    let rules = fast_rules(&shipped);
    assert!(shipped.contains("for: 1m") && !rules.contains("for: 1m") && rules.contains("for: 2s"), "{rules}");
    let mut prometheus = Prometheus::start(&target, &rules);

    // Prometheus scrapes the instance: its target is up.
    let targets = prometheus
        .wait_for("/api/v1/targets", |data| {
            data["activeTargets"].as_array().is_some_and(|targets| targets.iter().any(|t| t["health"] == "up"))
        })
        .await;
    assert_eq!(targets["activeTargets"][0]["labels"]["job"], "livecheck", "{targets}");

    // The failing case's alert fires (after its 2 s pending), labelled as the rules say.
    let alerts = prometheus
        .wait_for("/api/v1/alerts", |data| {
            alerts_named(data, "LiveCheckCaseFailing").iter().any(|alert| alert["state"] == "firing")
        })
        .await;
    let failing = alerts_named(&alerts, "LiveCheckCaseFailing");
    assert_eq!(failing.len(), 1, "only the failing case: {alerts}");
    assert_eq!(failing[0]["labels"]["case"], "orders.test_order");
    assert_eq!(failing[0]["labels"]["severity"], "error");
    assert_eq!(failing[0]["annotations"]["summary"], "LiveCheck case orders.test_order is failing");
    // The instance is up: the alert that fires without one (absent before the first scrape, 2 s at most) is not.
    let alerts =
        prometheus.wait_for("/api/v1/alerts", |data| alerts_named(data, "LiveCheckNoInstanceUp").is_empty()).await;
    assert!(alerts_named(&alerts, "LiveCheckServiceDown").is_empty(), "{alerts}");

    drop(prometheus);
    running.shutdown().await.unwrap();
}

#[test]
fn the_fast_rules_change_only_the_for_durations() {
    let shipped = std::fs::read_to_string(RULES).unwrap();
    let fast = fast_rules(&shipped);
    let (shipped, fast): (Vec<&str>, Vec<&str>) = (shipped.lines().collect(), fast.lines().collect());
    assert_eq!(shipped.len(), fast.len());
    for (shipped, fast) in shipped.iter().zip(&fast) {
        if shipped != fast {
            assert!(shipped.trim_start().starts_with("for: "), "{shipped}");
            assert_eq!(fast.trim(), "for: 2s");
            assert_eq!(shipped.find("for:"), fast.find("for:"), "same indentation");
        }
    }
}
