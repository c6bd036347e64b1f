//! The rollout gate on the tutorial, as real processes: two `worker`s of different versions on the same topics
//! (their agents share the partitions, so each handles stages of the other's orders) and the `livecheck`
//! instance, asked through its web API as Argo Rollouts, Flagger and CI would ask it. Every input is
//! deterministic: the flipped orders are exactly a fraction of v2's, the delay a fixed one.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_orders");
const CASE: &str = "orders.test_order";
/// Orders posted to each worker.
const ORDERS: usize = 60;

/// A child process killed when the test ends, however it ends.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Two workers (`v1` and a canary) and the instance, on a broker of their own.
struct Rollout {
    dir: std::path::PathBuf,
    _processes: Vec<Process>,
    baseline_url: String,
    canary_url: String,
    web: String,
    http: reqwest::Client,
}

impl Rollout {
    /// Starts worker `v1`, worker `canary` with `breakage`, and the instance; returns once all three answer.
    async fn start(canary: &str, breakage: &[&str]) -> Rollout {
        let dir = std::env::temp_dir().join(format!("livecheck-gate-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        let broker = format!("sqlite://{}/livecheck.sqlite3", dir.display());
        let spawn = |name: &str, args: &[&str]| {
            let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
            let child = Command::new(BIN)
                .args(args)
                .args(["--broker", &broker, "-l", "warn"])
                .env("NO_COLOR", "1")
                .env_remove("LIVECHECK_SERVICE_VERSION")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap();
            Process(child)
        };
        let (p1, p2, web) = (free_port().to_string(), free_port().to_string(), free_port().to_string());
        // (`--stage-timeout` is the instance's option: the workers do not take it.)
        let common = ["--probability", "1"];
        let mut v1_args = vec!["worker", "--port", &p1, "--service-version", "v1"];
        v1_args.extend(common);
        let mut canary_args = vec!["worker", "--port", &p2, "--service-version", canary];
        canary_args.extend(common);
        canary_args.extend(breakage);
        let baseline_url = format!("http://127.0.0.1:{p1}");
        let instance_args = ["livecheck", "--base-url", &baseline_url, "--port", &web, "--stage-timeout", "5"];
        let processes = vec![spawn("v1", &v1_args), spawn("canary", &canary_args), spawn("livecheck", &instance_args)];
        let rollout = Rollout {
            dir,
            _processes: processes,
            baseline_url,
            canary_url: format!("http://127.0.0.1:{p2}"),
            web: format!("http://127.0.0.1:{web}"),
            http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap(),
        };
        for url in [&rollout.baseline_url, &rollout.canary_url, &format!("{}/healthz", rollout.web)] {
            rollout.wait_until_answering(url).await;
        }
        rollout
    }

    fn logs(&self) -> String {
        ["v1", "canary", "livecheck"]
            .iter()
            .map(|name| {
                let log = std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default();
                format!(
                    "--- {name}:\n{}",
                    log.chars().rev().take(3000).collect::<String>().chars().rev().collect::<String>()
                )
            })
            .collect()
    }

    async fn wait_until_answering(&self, url: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.http.get(url).send().await.is_err() {
            assert!(Instant::now() < deadline, "{url} did not answer within 30 s:\n{}", self.logs());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Posts `count` orders to the worker at `base_url`, 6 at a time.
    async fn post_orders(&self, base_url: &str, count: usize) {
        for batch in (0..count).collect::<Vec<_>>().chunks(6) {
            let mut posts = tokio::task::JoinSet::new();
            for i in batch {
                let side = if i % 2 == 0 { "buy" } else { "sell" };
                posts.spawn(self.http.get(format!("{base_url}/order/init/{side}/")).send());
            }
            while let Some(response) = posts.join_next().await {
                let response = response.unwrap().unwrap();
                assert!(response.status().is_success(), "{}", response.status());
            }
        }
    }

    async fn gate(&self, canary: &str) -> Value {
        let url = format!("{}/api/gate?case={CASE}&canary={canary}&baseline=v1", self.web);
        let response = self.http.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        response.json().await.unwrap()
    }

    /// Asks the gate until each version has at least `executions`, failing after a minute.
    async fn verdict_once_both_ran(&self, canary: &str, executions: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let verdict = self.gate(canary).await;
            let ran = |side: &str| verdict[side].as_u64().unwrap_or(0);
            if ran("canary_executions") >= executions && ran("baseline_executions") >= executions {
                return verdict;
            }
            assert!(
                Instant::now() < deadline,
                "not {executions} executions each in a minute: {verdict}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for Rollout {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_flipping_a_fifth_of_its_orders_fails_naming_the_contract() {
    let rollout = Rollout::start("v2", &["--flip-side-fraction", "0.2"]).await;
    tokio::join!(rollout.post_orders(&rollout.baseline_url, ORDERS), rollout.post_orders(&rollout.canary_url, ORDERS));
    let verdict = rollout.verdict_once_both_ran("v2", ORDERS as u64).await;
    assert_eq!(verdict["outcome"], "failed", "{verdict}\n{}", rollout.logs());
    let finding = &verdict["findings"][0];
    assert_eq!(finding["metric"], "pass_rate", "{verdict}");
    assert_eq!(finding["state"], "FAIL", "{verdict}");
    assert_eq!(finding["stage"], "order_sent_to_db", "{verdict}");
    assert!(finding["contract"].as_str().unwrap().contains("the order kept its side"), "{verdict}");
    assert_eq!(finding["executions"], (ORDERS / 5) as u64, "{verdict}");

    // Flagger is told to halt; the per-version results and the metrics say the same.
    let flagger = serde_json::json!({
        "name": "orders", "namespace": "shop", "phase": "Progressing",
        "metadata": { "case": CASE, "canary": "v2", "baseline": "v1" }
    });
    let halted = rollout.http.post(format!("{}/api/gate/flagger", rollout.web)).json(&flagger).send().await.unwrap();
    assert_eq!(halted.status(), 412);
    let versions: Value = rollout
        .http
        .get(format!("{}/api/cases/{CASE}/versions", rollout.web))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let v2 = versions["versions"].as_array().unwrap().iter().find(|v| v["version"] == "v2").unwrap().clone();
    assert_eq!(v2["counts"]["fail"], (ORDERS / 5) as u64, "{versions}");
    assert!(v2["pass_rate_interval"][1].as_f64().unwrap() < 1.0, "{versions}");
    let metrics = rollout.http.get(format!("{}/metrics", rollout.web)).send().await.unwrap().text().await.unwrap();
    let line = format!(r#"livecheck_executions_total{{case="{CASE}",state="FAIL",version="v2"}} {}"#, ORDERS / 5);
    assert!(metrics.contains(&line), "{line} not in\n{metrics}");
    // An execution's record says which version handled each stage.
    let executions: Value = rollout
        .http
        .get(format!("{}/api/cases/{CASE}/executions", rollout.web))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let record = &executions.as_array().unwrap()[0];
    assert!(record["service_version"].is_string(), "{record}");
    assert!(record["signals"][0]["service_version"].is_string(), "{record}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_slowing_a_stage_fails_naming_the_stage() {
    let rollout = Rollout::start("v2", &["--delay-stage", "order_executed:400"]).await;
    tokio::join!(rollout.post_orders(&rollout.baseline_url, ORDERS), rollout.post_orders(&rollout.canary_url, ORDERS));
    let verdict = rollout.verdict_once_both_ran("v2", ORDERS as u64).await;
    assert_eq!(verdict["outcome"], "failed", "{verdict}\n{}", rollout.logs());
    let finding = &verdict["findings"][0];
    assert_eq!(finding["metric"], "stage_latency", "{verdict}");
    assert_eq!(finding["stage"], "order_executed", "{verdict}");
    assert!(finding["canary"].as_f64().unwrap() > 0.3, "{verdict}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_code_under_another_version_is_inconclusive_at_first_then_successful() {
    let rollout = Rollout::start("v1b", &[]).await;
    tokio::join!(rollout.post_orders(&rollout.baseline_url, 4), rollout.post_orders(&rollout.canary_url, 4));
    let early = rollout.verdict_once_both_ran("v1b", 4).await;
    assert_eq!(early["outcome"], "inconclusive", "{early}");
    assert!(early["reason"].as_str().unwrap().contains("not enough executions"), "{early}");
    tokio::join!(rollout.post_orders(&rollout.baseline_url, ORDERS), rollout.post_orders(&rollout.canary_url, ORDERS));
    let verdict = rollout.verdict_once_both_ran("v1b", ORDERS as u64).await;
    assert_eq!(verdict["outcome"], "successful", "{verdict}\n{}", rollout.logs());
}
