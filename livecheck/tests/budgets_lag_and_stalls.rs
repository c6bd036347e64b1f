//! Where it breaks (issue 18): latency budgets and DEGRADED executions, late and duplicate signals per stage, the
//! instance's own lag making TIMEOUTs "unknown", and stalls that say which stall they are — each seen from outside,
//! through the JSON API, `/metrics` and the report stream.

mod support;

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use livecheck::{
    transport::MemoryTransport, wire::TestReport, Case, CaseResult, CaseSettings, LiveCheck, Running, Signal, State,
    TestRun,
};
use serde_json::Value;
use support::{
    faulty::{Fault, Faulty},
    read_all,
};
use tokio::time::Instant;

/// A refund: requested, then approved within `approval_ms` (its hard timeout).
struct Refund {
    requested: Signal<()>,
    approved: Signal<()>,
}

impl Case for Refund {
    type Args = u64;
    async fn run(&self, _test: &TestRun, approval_ms: u64) -> CaseResult {
        self.requested.wait(Duration::from_secs(10)).await?;
        self.approved.wait(Duration::from_millis(approval_ms)).await?;
        Ok(())
    }
}

fn refund(app: &LiveCheck, settings: CaseSettings) -> livecheck::CaseHandle<Refund> {
    app.register(settings, |s| Refund { requested: s.declare("requested"), approved: s.declare("approved") }).unwrap()
}

fn base_url(running: &Running) -> String {
    format!("http://{}", running.web_address().expect("the web server is on"))
}

async fn get(url: &str) -> Value {
    let text = reqwest::get(url).await.unwrap_or_else(|e| panic!("GET {url}: {e}")).text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {url}: not JSON ({e}): {text}"))
}

/// Polls `url` until its JSON satisfies `done`; fails after `within` with the last answer.
async fn until_json(url: &str, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let value = get(url).await;
        if done(&value) {
            return value;
        }
        assert!(Instant::now() < deadline, "GET {url} did not get there; last answer: {value:#}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of the sample `series` (name and labels, as written) in OpenMetrics text.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
        .parse()
        .unwrap()
}

/// Runs one refund: requested at once, approved after `approve_after` (never when `None`).
async fn run_refund(case: &livecheck::CaseHandle<Refund>, id: &str, approval_ms: u64, approve_after: Option<u64>) {
    let test = case.trigger_with_id(id, &approval_ms).await.unwrap();
    livecheck::scope(Some(test), async {
        case.requested.notify().await.unwrap();
        if let Some(after) = approve_after {
            tokio::time::sleep(Duration::from_millis(after)).await;
            case.approved.notify().await.unwrap();
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_over_its_budget_is_degraded_counted_apart_alerted_by_its_policy_and_a_pass_to_faust_readers() {
    let transport = MemoryTransport::new();
    let app = LiveCheck::builder().transport(transport.clone()).web_address("127.0.0.1:0").build();
    let settings = CaseSettings::new("refund")
        .signal_budget("approved", Duration::from_millis(150))
        .max_degraded_rate(0.5, Duration::from_secs(600))
        .min_pass_rate_executions(3)
        .max_consecutive_failures(100);
    let case = refund(&app, settings);
    let running = app.start().await.unwrap();
    let base = base_url(&running);

    run_refund(&case, "fast", 5_000, Some(0)).await;
    until_json(&format!("{base}/api/executions/fast"), Duration::from_secs(10), |e| e["state"] == "PASS").await;
    for id in ["slow-1", "slow-2"] {
        run_refund(&case, id, 5_000, Some(400)).await;
    }
    let slow =
        until_json(&format!("{base}/api/executions/slow-2"), Duration::from_secs(10), |e| e["state"].is_string()).await;
    assert_eq!(slow["state"], "DEGRADED", "every contract held, a stage was over its budget: {slow:#}");

    // The case: DEGRADED by its policy (2 of 3 degraded > 50 %), not failing; the reason names the stage.
    let status =
        until_json(&format!("{base}/api/cases/refund"), Duration::from_secs(10), |c| c["status"] == "DEGRADED").await;
    assert_eq!(status["failing"], false, "degraded is not failing: {status:#}");
    assert_eq!((status["counts"]["PASS"].as_u64(), status["counts"]["DEGRADED"].as_u64()), (Some(1), Some(2)));
    assert_eq!(status["pass_rate"]["passed"], 3, "kept out of the failure ratio: {status:#}");
    let failure = &status["last_suite_failure"];
    assert_eq!((&failure["kind"], &failure["state"]), (&"degraded_rate".into(), &"DEGRADED".into()), "{status:#}");
    let reason = failure["reason"].as_str().unwrap();
    assert!(reason.contains("66.7 % degraded (2 of 3 executions)"), "{reason}");
    assert!(reason.contains("`approved` over budget in 2 of the last 3 executions"), "{reason}");
    let approved = &status["stages"][1];
    assert_eq!((approved["budget_seconds"].as_f64(), approved["over_budget"].as_u64()), (Some(0.15), Some(2)));

    // On the report stream: "PASS" with the stages over budget (a Faust reader sees a PASS), read back as DEGRADED.
    let raw: Vec<Value> = read_all(&transport, "livecheck-report")
        .await
        .iter()
        .map(|r| serde_json::from_slice(&r.message.value).unwrap())
        .collect();
    let slow_report = raw.iter().find(|r| r["test"]["id"] == "slow-1").expect("the report of slow-1");
    assert_eq!(slow_report["state"], "PASS", "{slow_report:#}");
    assert_eq!(slow_report["over_budget"][0]["signal"], "approved");
    assert!(slow_report["over_budget"][0]["latency"].as_f64().unwrap() >= 0.4);
    let decoded: TestReport = serde_json::from_value(slow_report.clone()).unwrap();
    assert_eq!(decoded.state, State::Degraded);
    let fast_report = raw.iter().find(|r| r["test"]["id"] == "fast").unwrap();
    assert!(fast_report.get("over_budget").is_none(), "no extra field on a plain PASS: {fast_report:#}");
    let suite = raw.iter().find(|r| r["test"].is_null()).expect("a suite report for the degraded policy");
    assert_eq!(suite["state"], "PASS", "a degraded suite is a PASS to Faust readers too: {suite:#}");

    let text = reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap();
    assert_eq!(sample(&text, r#"livecheck_executions_total{case="refund",state="DEGRADED"}"#), 2.0);
    assert_eq!(sample(&text, r#"livecheck_stage_over_budget_total{case="refund",signal="approved"}"#), 2.0);
    assert_eq!(sample(&text, r#"livecheck_case_status{case="refund",state="DEGRADED"}"#), 1.0);
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_sent_twice_is_a_duplicate_and_one_after_the_verdict_is_late_in_its_stage() {
    let app = LiveCheck::builder().transport(MemoryTransport::new()).web_address("127.0.0.1:0").build();
    let case = refund(&app, CaseSettings::new("refund"));
    let running = app.start().await.unwrap();
    let base = base_url(&running);

    // `requested` twice while the test waits for `approved`; then `approved` long after its 200 ms timeout.
    let test = case.trigger_with_id("twice", &200).await.unwrap();
    let later = test.clone();
    livecheck::scope(Some(test), async {
        case.requested.notify().await.unwrap();
        case.requested.notify().await.unwrap();
    })
    .await;
    until_json(&format!("{base}/api/executions/twice"), Duration::from_secs(10), |e| e["state"] == "TIMEOUT").await;
    livecheck::scope(Some(later), case.approved.notify()).await.unwrap();

    let case_json =
        until_json(&format!("{base}/api/cases/refund"), Duration::from_secs(10), |c| c["stages"][1]["late"] == 1).await;
    let stages = &case_json["stages"];
    assert_eq!(
        (&stages[0]["signal"], &stages[0]["duplicates"], &stages[0]["late"]),
        (&"requested".into(), &1.into(), &0.into())
    );
    assert_eq!((&stages[1]["duplicates"], &stages[1]["missing"]), (&0.into(), &1.into()), "{case_json:#}");
    let text = reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap();
    assert_eq!(sample(&text, r#"livecheck_stage_duplicates_total{case="refund",signal="requested"}"#), 1.0);
    assert_eq!(sample(&text, r#"livecheck_stage_late_total{case="refund",signal="approved"}"#), 1.0);
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_instance_lags_behind_its_bus_a_timeout_is_unknown_and_kept_out_of_the_cases_health() {
    let behind = Arc::new(AtomicBool::new(true));
    let flag = behind.clone();
    // The broker says 50 000 signals are on the bus that the instance has not read: it is lagging.
    let transport = Faulty::new(MemoryTransport::new()).on_end_offsets(move |stream| {
        (stream == "livecheck-bus" && flag.load(Ordering::SeqCst)).then_some(Fault::Ahead(50_000))
    });
    let app = LiveCheck::builder().transport(transport).web_address("127.0.0.1:0").build();
    let case = refund(&app, CaseSettings::new("refund").max_consecutive_failures(1));
    let running = app.start().await.unwrap();
    let base = base_url(&running);

    let status =
        until_json(&format!("{base}/api/status"), Duration::from_secs(10), |s| s["instance"]["lagging"].is_object())
            .await;
    // 50 000 more on each partition it owns (the memory transport's 8).
    assert_eq!(status["instance"]["lagging"]["signals_behind"], 400_000, "{status:#}");
    assert_eq!(status["instance"]["lagging"]["pending_tests_behind"], 0, "{status:#}");
    let text = reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap();
    assert_eq!((sample(&text, "livecheck_lagging"), sample(&text, "livecheck_signals_behind")), (1.0, 400_000.0));
    run_refund(&case, "while-lagging", 100, None).await;
    let case_json =
        until_json(&format!("{base}/api/cases/refund"), Duration::from_secs(10), |c| c["unknown_verdicts"] == 1).await;
    assert_eq!(case_json["counts"]["TIMEOUT"], 1, "{case_json:#}");
    assert_eq!((&case_json["consecutive_failures"], &case_json["failing"]), (&0.into(), &false.into()));
    assert_eq!((&case_json["instance_lagging"], &case_json["last_suite_failure"]), (&true.into(), &Value::Null));

    // Caught up: a TIMEOUT is the service's again, and fails the case (one in a row is its limit here).
    behind.store(false, Ordering::SeqCst);
    until_json(&format!("{base}/api/status"), Duration::from_secs(10), |s| s["instance"]["lagging"].is_null()).await;
    run_refund(&case, "caught-up", 100, None).await;
    let case_json =
        until_json(&format!("{base}/api/cases/refund"), Duration::from_secs(10), |c| c["failing"] == true).await;
    assert_eq!((&case_json["unknown_verdicts"], &case_json["counts"]["TIMEOUT"]), (&1.into(), &2.into()));
    assert_eq!(case_json["instance_lagging"], false);
    running.shutdown().await.unwrap();
}

/// Passes at once; traffic comes through `maybe_trigger` only.
struct Ping;

impl Case for Ping {
    type Args = ();
    async fn run(&self, _test: &TestRun, _: ()) -> CaseResult {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_says_whether_there_was_no_traffic_no_sample_or_tests_that_did_not_arrive() {
    let lost = Arc::new(AtomicBool::new(false));
    let flag = lost.clone();
    // Executions of `lost` never reach the pending-tests stream (published into nowhere: the broker refuses them).
    let transport = Faulty::new(MemoryTransport::new()).on_publish(move |stream| {
        (stream == "livecheck" && flag.load(Ordering::SeqCst))
            .then_some(Fault::Fail { retriable: false, context: "the pending-tests stream refuses it" })
    });
    let app = LiveCheck::builder().transport(transport).web_address("127.0.0.1:0").build();
    let stall = Duration::from_secs(7);
    let settings =
        |name: &str, probability: f64| CaseSettings::new(name).probability(probability).warn_stalled_after(stall);
    let _quiet = app.register(settings("quiet", 1.0), |_| Ping).unwrap();
    let unsampled = app.register(settings("unsampled", 0.0), |_| Ping).unwrap();
    let sampled = app.register(settings("sampled", 1.0), |_| Ping).unwrap();
    let running = app.start().await.unwrap();
    let base = base_url(&running);

    // (A process reports at once, then at most every 10 s: these three are reported as one, then two later.)
    for _ in 0..3 {
        assert!(unsampled.maybe_trigger(&()).await.unwrap().is_none());
    }
    lost.store(true, Ordering::SeqCst);
    let _ = sampled.maybe_trigger(&()).await;

    let cause = |case: &'static str| {
        let url = format!("{base}/api/cases/{case}");
        async move { until_json(&url, Duration::from_secs(20), |c| c["stall"].is_object()).await }
    };
    let quiet = cause("quiet").await;
    assert_eq!(quiet["stall"]["cause"], "no_traffic", "{quiet:#}");
    let unsampled = cause("unsampled").await;
    assert_eq!(unsampled["stall"]["cause"], "not_sampled", "{unsampled:#}");
    let reason = unsampled["last_suite_failure"]["reason"].as_str().unwrap();
    assert!(reason.contains("the services saw 1 request and sampled none (probability 0)"), "{reason}");
    let sampled = cause("sampled").await;
    assert_eq!(sampled["stall"]["cause"], "tests_not_arriving", "{sampled:#}");
    running.shutdown().await.unwrap();
}
