//! The instance's web server over real HTTP (feature `web`): the JSON API's status ordering, counts, execution
//! timelines with a missing signal and a FAIL's message and location, 404s, `/healthz`, `/metrics`, and a port
//! already in use.

mod support;

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use livecheck::{
    history::SignalStatus, transport::MemoryTransport, Case, CaseResult, CaseSettings, LiveCheck, LiveCheckBuilder,
    Running, Signal, State, TestRun,
};
use serde_json::Value;
use support::faulty::{Fault, Faulty};

/// Waits for `paid` (the amount, asserted to be the one the test was issued with), then `shipped`.
struct Checkout {
    paid: Signal<u32>,
    shipped: Signal<()>,
}

impl Case for Checkout {
    type Args = u32;
    async fn run(&self, test: &TestRun, expected: u32) -> CaseResult {
        let paid = self.paid.wait(Duration::from_secs(10)).await?;
        test.log(format!("paid {paid}"));
        assert_eq!(paid, expected, "the amount paid");
        self.shipped.wait(Duration::from_secs(10)).await?;
        Ok(())
    }
}

/// Waits for `requested`, then for `approved` as many milliseconds as the test was issued with.
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

/// Passes at once.
struct Audit;

impl Case for Audit {
    type Args = ();
    async fn run(&self, _test: &TestRun, _: ()) -> CaseResult {
        Ok(())
    }
}

/// The app with its four cases, serving on a free port: `checkout` and `refund` (each fails below), `audit`
/// (passes, and makes the instance run for leader: it has a `frequency`) and `idle` (never tested).
struct Shop {
    app: LiveCheck,
    checkout: livecheck::CaseHandle<Checkout>,
    refund: livecheck::CaseHandle<Refund>,
    audit: livecheck::CaseHandle<Audit>,
}

fn shop(builder: LiveCheckBuilder) -> Shop {
    let app = builder.web_address("127.0.0.1:0").build();
    let checkout = app
        .register(CaseSettings::new("checkout").max_consecutive_failures(1), |s| Checkout {
            paid: s.declare("paid"),
            shipped: s.declare("shipped"),
        })
        .unwrap();
    let refund = app
        .register(CaseSettings::new("refund"), |s| Refund {
            requested: s.declare("requested"),
            approved: s.declare("approved"),
        })
        .unwrap();
    let audit = app.register(CaseSettings::new("audit").frequency(Duration::from_secs(3600)), |_| Audit).unwrap();
    app.register(CaseSettings::new("idle"), |_| Audit).unwrap();
    Shop { app, checkout, refund, audit }
}

fn base_url(running: &Running) -> String {
    format!("http://{}", running.web_address().expect("the web server is on"))
}

async fn get(url: &str) -> (u16, Value) {
    let response = reqwest::get(url).await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {url}: not JSON ({e}): {text}")))
}

/// Polls `url` until its JSON satisfies `done`; fails after 10 s with the last answer.
async fn until_json(url: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, value) = get(url).await;
        if done(&value) {
            return value;
        }
        assert!(Instant::now() < deadline, "GET {url} did not get there; last answer: {value:#}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How many tests finished in `state`, from a case status's `counts` (an object by state).
fn count(case: &Value, state: &str) -> u64 {
    case["counts"][state].as_u64().unwrap_or_else(|| panic!("no count of {state} in {case:#}"))
}

/// The value of the sample `series` (name and labels, as written) in OpenMetrics text.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
        .parse()
        .unwrap()
}

fn signal<'a>(execution: &'a Value, name: &str) -> &'a Value {
    execution["signals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no signal {name} in {execution:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_lists_failing_cases_first_with_each_execution_and_its_signals() {
    let transport = MemoryTransport::new();
    let shop = shop(LiveCheck::builder().transport(transport.clone()));
    let running = shop.app.start().await.unwrap();
    let base = base_url(&running);

    // checkout: one PASS, then one FAIL (paid 4, issued for 3: it fails before waiting for `shipped`, not sent).
    for (id, paid) in [("pay-ok", 3), ("pay-wrong", 4)] {
        let test = shop.checkout.trigger_with_id(id, &3).await.unwrap();
        livecheck::scope(Some(test), async {
            shop.checkout.paid.send(&paid).await.unwrap();
            if paid == 3 {
                shop.checkout.shipped.notify().await.unwrap();
            }
        })
        .await;
        until_json(&format!("{base}/api/executions/{id}"), |e| !e["state"].is_null()).await;
    }
    // refund: one that times out on `approved` after 200 ms, one still waiting for it.
    for (id, approval_ms) in [("refund-late", 200), ("refund-open", 600_000)] {
        let test = shop.refund.trigger_with_id(id, &approval_ms).await.unwrap();
        livecheck::scope(Some(test), shop.refund.requested.notify()).await.unwrap();
    }
    shop.audit.trigger_with_id("audit-1", &()).await.unwrap();
    // A signal of a name the case does not declare: dropped and counted.
    let unknown = r#"{"signal_name": "refunded", "case_name": "checkout", "key": "pay-ok", "value": null}"#;
    support::publish_raw(&transport, "livecheck-bus", "pay-ok", unknown.as_bytes()).await;

    let status = until_json(&format!("{base}/api/status"), |status| {
        let cases = status["cases"].as_array().unwrap();
        let case = |name: &str| cases.iter().find(|c| c["name"] == name).unwrap().clone();
        count(&case("refund"), "TIMEOUT") == 1
            && case("refund")["in_flight"] == 1
            && count(&case("audit"), "PASS") == 1
            && status["instance"]["metrics"]["signals_unknown_name"] == 1
    })
    .await;

    // Failing cases first (FAIL, TIMEOUT), then the others, each group by name.
    let cases = status["cases"].as_array().unwrap();
    let names: Vec<&str> = cases.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["checkout", "refund", "audit", "idle"], "{status:#}");
    let statuses: Vec<&str> = cases.iter().map(|c| c["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["FAIL", "TIMEOUT", "PASS", "INIT"]);
    let checkout = &cases[0];
    assert_eq!((count(checkout, "PASS"), count(checkout, "FAIL"), count(checkout, "TIMEOUT")), (1, 1, 0));
    assert_eq!(checkout["in_flight"], 0);
    assert!(checkout["oldest_in_flight_seconds"].is_null());
    assert!(cases[1]["oldest_in_flight_seconds"].as_f64().unwrap() >= 0.0);
    let instance = &status["instance"];
    assert_eq!(instance["transport"], "memory://");
    assert_eq!(instance["leader"], true, "the only instance of a group with a frequency leads it");
    assert!(instance["started_at"].as_str().unwrap().parse::<chrono::DateTime<chrono::Utc>>().is_ok());
    assert_eq!(instance["metrics"]["tests_finished"], 4);

    // A FAIL carries the assertion's message and location, and its step log; `shipped` was not reached.
    let (code, fail) = get(&format!("{base}/api/executions/pay-wrong")).await;
    assert_eq!(code, 200);
    assert_eq!(
        (fail["id"].as_str(), fail["case"].as_str(), fail["state"].as_str()),
        (Some("pay-wrong"), Some("checkout"), Some("FAIL"))
    );
    assert!(fail["error"].as_str().unwrap().contains("the amount paid"), "{fail:#}");
    let location = fail["location"].as_str().unwrap();
    let (file, line) = location.rsplit_once(':').unwrap().0.rsplit_once(':').unwrap();
    assert_eq!(file, file!(), "{location}");
    let source_line = include_str!("web_api.rs").lines().nth(line.parse::<usize>().unwrap() - 1).unwrap();
    assert!(source_line.contains("assert_eq!(paid, expected"), "{location} is `{source_line}`");
    assert!(fail["steps"].as_array().unwrap().iter().any(|s| s.as_str().unwrap().ends_with(" paid 4")), "{fail:#}");
    assert!(fail["runtime_seconds"].as_f64().unwrap() >= 0.0);
    assert!(fail["finished_at"].is_string() && fail["started_at"].is_string() && fail["issued_at"].is_string());
    assert_eq!(signal(&fail, "paid")["status"], "received");
    let shipped = signal(&fail, "shipped");
    assert_eq!(shipped["status"], "not_reached");
    assert!(shipped["arrived_at"].is_null() && shipped["waited_seconds"].is_null());
    let (_, pass) = get(&format!("{base}/api/executions/pay-ok")).await;
    assert_eq!(pass["state"], "PASS");
    assert!(pass["error"].is_null() && pass["location"].is_null());

    // One case with its executions, newest first: the one still running, then the TIMEOUT.
    let (code, refund) = get(&format!("{base}/api/cases/refund")).await;
    assert_eq!(code, 200);
    assert_eq!((refund["name"].as_str(), refund["status"].as_str()), (Some("refund"), Some("TIMEOUT")));
    let executions = refund["executions"].as_array().unwrap();
    let ids: Vec<&str> = executions.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["refund-open", "refund-late"], "{refund:#}");
    let open = &executions[0];
    assert!(open["state"].is_null() && open["finished_at"].is_null() && open["runtime_seconds"].is_null());
    assert_eq!(signal(open, "requested")["status"], "received");
    let waiting = signal(open, "approved");
    assert_eq!(waiting["status"], "waiting", "{open:#}");
    assert!(waiting["arrived_at"].is_null() && waiting["waited_seconds"].as_f64().unwrap() >= 0.0);

    let late = &executions[1];
    assert_eq!(late["state"], "TIMEOUT");
    assert!(late["error"].as_str().unwrap().contains("approved"), "{late:#}");
    let names: Vec<&str> = late["signals"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["requested", "approved"], "every declared signal, in declaration order");
    let requested = signal(late, "requested");
    assert_eq!(requested["status"], "received");
    let arrived: chrono::DateTime<chrono::Utc> = requested["arrived_at"].as_str().unwrap().parse().unwrap();
    let issued: chrono::DateTime<chrono::Utc> = late["issued_at"].as_str().unwrap().parse().unwrap();
    assert!(arrived >= issued, "{late:#}");
    assert!(requested["after_issue_seconds"].as_f64().unwrap() >= 0.0);
    assert!(requested["waited_seconds"].as_f64().unwrap() >= 0.0);
    let missing = signal(late, "approved");
    assert_eq!(missing["status"], "missing");
    assert!(missing["arrived_at"].is_null() && missing["after_issue_seconds"].is_null());
    assert_eq!(missing["waited_seconds"].as_f64(), Some(0.2), "it waited its whole timeout");
    // The same executions on their own, and one of them by id.
    let (_, listed) = get(&format!("{base}/api/cases/refund/executions")).await;
    let listed: Vec<&str> = listed.as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(listed, ["refund-open", "refund-late"]);
    let (_, by_id) = get(&format!("{base}/api/executions/refund-open")).await;
    assert!(by_id["state"].is_null());
    let record = shop.app.execution("refund-late").unwrap();
    assert_eq!(record.signals[1].status, SignalStatus::Missing);
    assert_eq!(record.state, Some(State::Timeout));

    // Unknown cases, executions and routes: 404 with a JSON error.
    for path in ["/api/cases/nope", "/api/cases/nope/executions", "/api/executions/nope", "/api/nothing"] {
        let (code, body) = get(&format!("{base}{path}")).await;
        assert_eq!(code, 404, "{path}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{path}: {body}");
    }

    // No webhooks here: no alerts, an empty list.
    assert_eq!(get(&format!("{base}/api/alerts")).await, (200, serde_json::json!([])));

    let (code, health) = get(&format!("{base}/healthz")).await;
    assert_eq!(code, 200);
    assert_eq!(
        health,
        serde_json::json!({"ok": true, "transport_reachable": true, "consumers_alive": true, "leader": true, "unowned_partitions": []})
    );

    let response = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    let text = response.text().await.unwrap();
    for (series, value) in [
        (r#"livecheck_executions_total{case="checkout",state="PASS"}"#, 1.0),
        (r#"livecheck_executions_total{case="checkout",state="FAIL"}"#, 1.0),
        (r#"livecheck_executions_total{case="refund",state="TIMEOUT"}"#, 1.0),
        (r#"livecheck_executions_total{case="audit",state="PASS"}"#, 1.0),
        (r#"livecheck_test_runtime_seconds_count{case="checkout"}"#, 2.0),
        (r#"livecheck_signal_latency_seconds_count{case="checkout",signal="paid"}"#, 2.0),
        (r#"livecheck_signal_latency_seconds_count{case="refund",signal="requested"}"#, 1.0),
        (r#"livecheck_case_status{case="checkout",state="FAIL"}"#, 1.0),
        (r#"livecheck_case_status{case="checkout",state="PASS"}"#, 0.0),
        (r#"livecheck_case_status{case="idle",state="INIT"}"#, 1.0),
        (r#"livecheck_case_failing{case="refund"}"#, 1.0),
        (r#"livecheck_case_failing{case="audit"}"#, 0.0),
        (r#"livecheck_tests_in_flight{case="refund"}"#, 1.0),
        (r#"livecheck_tests_in_flight{case="checkout"}"#, 0.0),
        (r#"livecheck_inputs_dropped_total{cause="signals_unknown_name"}"#, 1.0),
        (r#"livecheck_suite_failures_total{case="checkout",kind="consecutive_failures"}"#, 1.0),
        (r#"livecheck_inputs_dropped_total{cause="tests_malformed"}"#, 0.0),
        ("livecheck_tests_finished_total", 4.0),
        ("livecheck_tests_executing", 1.0),
        ("livecheck_leader", 1.0),
    ] {
        assert_eq!(sample(&text, series), value, "{series}");
    }
    assert!(sample(&text, r#"livecheck_oldest_in_flight_seconds{case="refund"}"#) > 0.0);
    assert!(
        sample(&text, r#"livecheck_signal_latency_seconds_bucket{le="+Inf",case="refund",signal="requested"}"#) == 1.0
    );
    assert!(text.contains("# TYPE livecheck_test_runtime_seconds histogram"), "{text}");
    assert!(text.trim_end().ends_with("# EOF"));
    let families: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
    let unique: std::collections::HashSet<&&str> = families.iter().collect();
    assert_eq!(unique.len(), families.len(), "each family once: {families:#?}");

    let page = reqwest::get(format!("{base}/")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(page.text().await.unwrap().to_lowercase().contains("dashboard"));

    // The server stops with the instance.
    running.shutdown().await.unwrap();
    assert!(reqwest::get(format!("{base}/healthz")).await.is_err(), "nothing listens after shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_503_when_the_transport_does_not_answer() {
    let down = Arc::new(AtomicBool::new(false));
    let app = LiveCheck::builder()
        .transport(Faulty::new(MemoryTransport::new()).on_end_offsets({
            let down = down.clone();
            move |_| {
                down.load(Ordering::SeqCst).then_some(Fault::Fail { retriable: true, context: "the broker is away" })
            }
        }))
        .web_address("127.0.0.1:0")
        .build();
    app.register(CaseSettings::new("audit"), |_| Audit).unwrap();
    let running = app.start().await.unwrap();
    let url = format!("{}/healthz", base_url(&running));

    let (code, health) = get(&url).await;
    assert_eq!(code, 200, "{health}");
    assert_eq!(health["leader"], false, "no case has a frequency: the instance does not run for leader");

    down.store(true, Ordering::SeqCst);
    // The transport's answer is reused for a second (probes do not pile up on a slow broker).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (code, health) = get(&url).await;
    assert_eq!(code, 503);
    assert_eq!(
        health,
        serde_json::json!({"ok": false, "transport_reachable": false, "consumers_alive": true, "leader": false, "unowned_partitions": []})
    );
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_in_use_fails_the_start_with_an_error_naming_the_server_and_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let app = LiveCheck::builder().web_address(address.clone()).build();
    app.register(CaseSettings::new("audit"), |_| Audit).unwrap();

    let error = app.start().await.err().expect("the start fails");
    assert_eq!(error.to_string(), format!("LiveCheck web server: cannot listen on {address}"));
    let source = std::error::Error::source(&error).and_then(|s| s.downcast_ref::<std::io::Error>());
    assert_eq!(source.map(std::io::Error::kind), Some(std::io::ErrorKind::AddrInUse), "the cause is kept: {error:?}");
    assert!(matches!(error, livecheck::Error::WebServer { .. }), "{error:?}");

    // Once the port is free, the same app starts and serves there.
    drop(taken);
    let running = app.start().await.unwrap();
    assert_eq!(running.web_address().unwrap().to_string(), address);
    let (code, _) = get(&format!("http://{address}/healthz")).await;
    assert_eq!(code, 200);
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_case_keeps_its_newest_executions_up_to_the_history_size() {
    let shop = shop(LiveCheck::builder().execution_history(2));
    let running = shop.app.start().await.unwrap();
    for id in ["a-1", "a-2", "a-3"] {
        shop.audit.trigger_with_id(id, &()).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while shop.app.execution(id).is_none_or(|e| e.state.is_none()) {
            assert!(Instant::now() < deadline, "{id} did not finish");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let ids: Vec<String> = shop.app.recent_executions("audit").unwrap().into_iter().map(|e| e.id).collect();
    assert_eq!(ids, ["a-3", "a-2"]);
    assert!(shop.app.execution("a-1").is_none(), "the oldest is forgotten");
    assert!(shop.app.recent_executions("nope").is_none());
    assert_eq!(shop.app.recent_executions("idle").unwrap(), []);
    running.shutdown().await.unwrap();
}

/// The embedded log deleted under a running instance: its group member and an agent of the app stop reading for
/// good, and `/healthz` turns 503, naming each consumer and why. (It used to stay 200, `consumers_alive: true`,
/// while the instance logged `stopped reading`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_503_naming_each_consumer_that_stopped_when_the_embedded_log_is_deleted() {
    let dir = std::env::temp_dir().join(format!("livecheck-healthz-{}", fastrand::u64(..)));
    let path = dir.join("livecheck.sqlite3");
    let transport = livecheck::transport::SqliteTransport::open(&path).unwrap().with_partitions(2);
    let app = LiveCheck::builder().transport(transport).web_address("127.0.0.1:0").build();
    app.register(CaseSettings::new("audit"), |_| Audit).unwrap();
    let running = app.start().await.unwrap();
    let orders = livecheck::stream::Topic::<u32>::new(&app, "orders");
    let agent = orders.agent("order-handlers", 1, |_| async { Ok(()) }).await.unwrap();
    let url = format!("{}/healthz", base_url(&running));
    let (code, health) = get(&url).await;
    assert_eq!(code, 200, "{health}");
    assert!(health.get("consumers_stopped").is_none(), "listed only when one stopped: {health}");

    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    until_json(&url, |health| health["consumers_stopped"].as_array().is_some_and(|stopped| stopped.len() == 2)).await;
    let (code, health) = get(&url).await;
    assert_eq!(code, 503, "{health}");
    assert_eq!((&health["ok"], &health["consumers_alive"]), (&Value::Bool(false), &Value::Bool(false)), "{health}");
    let stopped = |consumer: &str| {
        health["consumers_stopped"]
            .as_array()
            .and_then(|stopped| stopped.iter().find(|s| s["consumer"] == consumer))
            .unwrap_or_else(|| panic!("no {consumer} among the stopped consumers: {health:#}"))
    };
    let member = stopped("tests and signals");
    assert_eq!(
        (&member["group"], &member["streams"]),
        (&"livecheck".into(), &serde_json::json!(["livecheck", "livecheck-bus"]))
    );
    let agent_stopped = stopped("agent");
    assert_eq!(
        (&agent_stopped["group"], &agent_stopped["streams"]),
        (&"order-handlers".into(), &serde_json::json!(["orders"]))
    );
    for consumer in [member, agent_stopped] {
        let reason = consumer["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("was deleted while in use") && reason.contains(&*path.to_string_lossy()), "{reason}");
    }

    agent.shutdown().await;
    running.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_that_never_comes_is_missing_in_the_case_named_in_its_suite_failure_and_counted_in_metrics() {
    let app = LiveCheck::builder().transport(MemoryTransport::new()).web_address("127.0.0.1:0").build();
    let refund = app
        .register(CaseSettings::new("refund").max_consecutive_failures(3), |s| Refund {
            requested: s.declare("requested"),
            approved: s.declare("approved"),
        })
        .unwrap();
    let running = app.start().await.unwrap();
    let base = base_url(&running);

    // One refund approved, then three whose approval never comes (each waits 100 ms for it: TIMEOUT).
    let test = refund.trigger_with_id("approved-1", &10_000).await.unwrap();
    livecheck::scope(Some(test), async {
        refund.requested.notify().await.unwrap();
        refund.approved.notify().await.unwrap();
    })
    .await;
    until_json(&format!("{base}/api/executions/approved-1"), |e| e["state"] == "PASS").await;
    for id in ["stuck-1", "stuck-2", "stuck-3"] {
        let test = refund.trigger_with_id(id, &100).await.unwrap();
        livecheck::scope(Some(test), refund.requested.notify()).await.unwrap();
    }

    let case = until_json(&format!("{base}/api/cases/refund"), |case| case["last_suite_failure"].is_object()).await;
    let failure = &case["last_suite_failure"];
    assert_eq!(failure["kind"], "consecutive_failures", "{case:#}");
    assert_eq!(
        failure["reason"], "failed after 3 consecutive failures; `approved` missing in 3 of the last 3 failures",
        "the reason names the stage that breaks"
    );
    let stages = case["stages"].as_array().unwrap_or_else(|| panic!("no stages in {case:#}"));
    let counts: Vec<_> = stages
        .iter()
        .map(|s| (s["signal"].as_str().unwrap(), s["reached"].as_u64(), s["arrived"].as_u64(), s["missing"].as_u64()))
        .collect();
    assert_eq!(counts, [("requested", Some(4), Some(4), Some(0)), ("approved", Some(4), Some(1), Some(3))]);
    for percentile in ["p50", "p95", "p99"] {
        let requested = stages[0]["latency_from_issue_seconds"][percentile].as_f64().unwrap();
        assert!((0.0..5.0).contains(&requested), "{percentile} {requested}");
        let approved = stages[1]["latency_from_previous_seconds"][percentile].as_f64();
        assert!(approved.is_some_and(|secs| secs >= 0.0), "{:#}", stages[1]);
    }

    let text = reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap();
    assert_eq!(sample(&text, r#"livecheck_stage_missing_total{case="refund",signal="approved"}"#), 3.0);
    assert_eq!(sample(&text, r#"livecheck_stage_latency_seconds_count{case="refund",signal="requested"}"#), 4.0);
    assert_eq!(sample(&text, r#"livecheck_stage_latency_seconds_count{case="refund",signal="approved"}"#), 1.0);
    assert!(text.contains("# TYPE livecheck_stage_latency_seconds histogram"), "{text}");
    running.shutdown().await.unwrap();
}
