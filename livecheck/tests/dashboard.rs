//! The dashboard in a real browser (headless Chromium over the DevTools protocol): the failing case listed first as
//! the API orders it, an execution's timeline with its missing signal, a FAIL's message and location, live refresh,
//! a phone-sized screen without horizontal scrolling, and the "connection lost" banner when the instance goes away
//! and its disappearance when it is back. Screenshots go to target/test-artifacts/.
//!
//! The instance here is [`Instance`]: the page and contract-shaped JSON answers served by a small axum server.

mod support;

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Html,
    routing::get,
    Json, Router,
};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use support::browser::Browser;
use tokio::{sync::oneshot, task::JoinHandle};

const FAILING: &str = "test_order";
const PASSING: &str = "test_cancel";
const TIMED_OUT: &str = "3c1d6c0e-0000-4000-8000-000000000001";
const FAILED: &str = "3c1d6c0e-0000-4000-8000-000000000002";
/// The FAIL's assertion message, with markup that must be shown as text.
const ASSERTION: &str = r#"assertion `left == right` failed: side changed
  left: "sell"
 right: <b id="injected">buy</b>"#;
const LOCATION: &str = "examples/orders/src/test_order.rs:88:9";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_a_real_browser() {
    let instance = Instance::start(0).await;
    let mut browser = Browser::launch().await;
    browser.set_viewport(1200, 900, false).await;
    browser.navigate(&instance.url).await;

    // The cases in the API's order: the failing one first although its name sorts after the other's.
    let within = Duration::from_secs(15);
    browser.wait_for("two cases listed", "document.querySelectorAll('[data-case]').length === 2", within).await;
    let listed = browser.eval("[...document.querySelectorAll('[data-case]')].map(e => e.dataset.case)").await;
    assert_eq!(listed, json!([FAILING, PASSING]));
    let first =
        browser.eval(&format!("{} && document.querySelector('[data-case]').dataset.failing", case(FAILING))).await;
    assert_eq!(first, json!("true"));
    let cause =
        browser.eval(&format!("{}.querySelector('[data-cause=service_down]').textContent", case(FAILING))).await;
    let cause = cause.as_str().unwrap();
    assert!(
        cause.contains("http://127.0.0.1:6066/order/init/sell/") && cause.contains("connection refused"),
        "{cause}"
    );

    // The failing case is open, with its newest bad execution: every declared signal in order, the last missing.
    let timed_out = format!("{}.querySelector('[data-execution=\"{TIMED_OUT}\"]')", case(FAILING));
    let signals_of = |execution: &str| {
        format!(
            "[...{execution}.querySelectorAll('[data-signal]')].map(s => [s.dataset.signal, s.dataset.signalStatus])"
        )
    };
    let signals = browser.wait_for("the timed-out execution's timeline", &signals_of(&timed_out), within).await;
    let expected = [
        ["order_sent_to_db", "received"],
        ["order_sent_to_kafka", "received"],
        ["order_cache_in_redis", "received"],
        ["order_executed", "missing"],
    ];
    assert_eq!(signals, json!(expected));
    let missing = browser.eval(&format!("{timed_out}.querySelector('[data-signal=order_executed]').textContent")).await;
    assert!(missing.as_str().unwrap().contains("missing — waited 30 s"), "{missing}");

    // The FAIL, opened by a click: its assertion message (as text, not markup), location and step log.
    let failed = format!("{}.querySelector('[data-execution=\"{FAILED}\"]')", case(FAILING));
    assert_eq!(browser.eval(&format!("{failed}.dataset.open")).await, json!("false"));
    browser.click(&format!("[data-case={FAILING}] [data-execution=\"{FAILED}\"] .row")).await;
    let error = browser
        .wait_for("the FAIL's message", &format!("{failed}.querySelector('[data-role=error]')?.textContent"), within)
        .await;
    assert_eq!(error, json!(ASSERTION));
    assert_eq!(browser.eval("document.getElementById('injected')").await, Value::Null, "API text became markup");
    let location = browser.eval(&format!("{failed}.querySelector('[data-role=location]').textContent")).await;
    assert_eq!(location, json!(format!("at {LOCATION}")));
    let steps = browser.eval(&format!("{failed}.querySelectorAll('[data-role=steps] li').length")).await;
    assert_eq!(steps, json!(3));
    let signals = browser.eval(&signals_of(&failed)).await;
    assert_eq!(signals[3], json!(["order_executed", "not_reached"]));

    // The passing case is closed until clicked.
    assert_eq!(browser.eval(&format!("{}.dataset.expanded", case(PASSING))).await, json!("false"));
    browser.click(&format!("[data-case={PASSING}] .summary")).await;
    let opened = format!("{}.querySelectorAll('[data-execution]').length", case(PASSING));
    assert_eq!(browser.wait_for("the passing case's executions", &opened, within).await, json!(2));

    // Live refresh: a new execution shows without reloading.
    instance.record_pass(PASSING);
    let three = format!("{}.querySelectorAll('[data-execution]').length === 3", case(PASSING));
    browser.wait_for("the new execution", &three, within).await;
    let counts = browser.eval(&format!("{}.querySelector('.stats').textContent", case(PASSING))).await;
    assert!(counts.as_str().unwrap().contains("PASS 11"), "{counts}");

    let artifacts = artifacts();
    let png = browser.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(artifacts.join("dashboard.png"), png).unwrap();
    println!("screenshot: {}", artifacts.join("dashboard.png").display());

    // A phone: no horizontal scrolling at 390 px.
    browser.set_viewport(390, 844, true).await;
    let widths = browser.eval("[document.documentElement.scrollWidth, window.innerWidth]").await;
    let widest = widths.as_array().unwrap().iter().map(|w| w.as_u64().unwrap()).max().unwrap();
    assert!(widest <= 390, "the page is {widest} px wide on a 390 px screen (scrollWidth, innerWidth: {widths})");
    std::fs::write(artifacts.join("dashboard-phone.png"), browser.screenshot().await).unwrap();
    println!("screenshot: {}", artifacts.join("dashboard-phone.png").display());

    // The instance goes away: the banner; it comes back: the banner goes by itself.
    let banner = "!document.getElementById('connection-lost').hidden";
    assert_eq!(browser.eval(banner).await, json!(false));
    let port = instance.stop().await;
    browser.wait_for("the connection-lost banner", banner, within).await;
    let text = browser.eval("document.getElementById('connection-lost').textContent").await;
    assert!(text.as_str().unwrap().contains("Connection lost"), "{text}");
    let _back = Instance::start(port).await;
    browser.wait_for("the banner gone", &format!("!({banner})"), within).await;
}

/// The JavaScript expression of a case's element.
fn case(name: &str) -> String {
    format!("document.querySelector('[data-case={name}]')")
}

/// target/test-artifacts, made if missing.
fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A LiveCheck instance's web server as the dashboard sees it: the page at `/` and the JSON API of the contract, its
/// answers made from a fixed picture of two cases (one failing, with a timed-out and a failed execution; one passing).
struct Instance {
    url: String,
    addr: SocketAddr,
    cases: Arc<Mutex<Cases>>,
    stop: oneshot::Sender<()>,
    server: JoinHandle<()>,
}

/// Each case's status and executions (newest first), in the order `/api/status` lists them.
struct Cases(Vec<(Value, Vec<Value>)>);

impl Instance {
    /// Serves on 127.0.0.1:`port` (0: a free one).
    async fn start(port: u16) -> Instance {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cases = Arc::new(Mutex::new(Cases::fixture(Utc::now())));
        let router = Router::new()
            .route("/", get(|| async { Html(include_str!("../src/web/dashboard.html")) }))
            .route("/api/status", get(status))
            .route("/api/cases/{name}", get(case_detail))
            .with_state(cases.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let stopped = async move {
                let _ = stopped.await;
            };
            axum::serve(listener, router).with_graceful_shutdown(stopped).await.unwrap();
        });
        Instance { url: format!("http://{addr}/"), addr, cases, stop, server }
    }

    /// One more PASS of `name`, finished now.
    fn record_pass(&self, name: &str) {
        let mut cases = self.cases.lock().unwrap();
        let (status, executions) = cases.0.iter_mut().find(|(status, _)| status["name"] == name).unwrap();
        let now = Utc::now();
        executions.insert(0, passed(name, now - chrono::Duration::milliseconds(40), 100 + executions.len() as u32));
        let counts = &status["counts"];
        let case = case_status(
            name,
            "PASS",
            false,
            ["PASS", "FAIL", "ERROR", "TIMEOUT", "SKIP"]
                .map(|state| counts[state].as_u64().unwrap() as u32 + u32::from(state == "PASS")),
        );
        for field in ["counts", "pass_rate"] {
            status[field] = case[field].clone();
        }
    }

    /// Stops serving (closing the browser's open connections) and gives back the port.
    async fn stop(self) -> u16 {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(10), self.server).await.expect("the server stops").unwrap();
        self.addr.port()
    }
}

async fn status(State(cases): State<Arc<Mutex<Cases>>>) -> Json<Value> {
    let cases = cases.lock().unwrap();
    let statuses: Vec<Value> = cases.0.iter().map(|(status, _)| status.clone()).collect();
    let instance = json!({
        "started_at": rfc3339(Utc::now() - chrono::Duration::minutes(42)),
        "leader": true,
        "transport": "sqlite:///srv/orders/livecheck-data",
        "metrics": {"tests_started": 1312, "signals_received": 5127, "signals_dropped": 0},
    });
    Json(json!({"instance": instance, "cases": statuses}))
}

async fn case_detail(State(cases): State<Arc<Mutex<Cases>>>, Path(name): Path<String>) -> (StatusCode, Json<Value>) {
    let cases = cases.lock().unwrap();
    match cases.0.iter().find(|(status, _)| status["name"] == name) {
        Some((status, executions)) => {
            let mut detail = status.clone();
            detail["executions"] = json!(executions);
            (StatusCode::OK, Json(detail))
        }
        None => (StatusCode::NOT_FOUND, Json(json!({"error": format!("no case named {name}")}))),
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

const SIGNALS: [&str; 4] = ["order_sent_to_db", "order_sent_to_kafka", "order_cache_in_redis", "order_executed"];

fn received(name: &str, issued: DateTime<Utc>, after: f64) -> Value {
    let arrived = issued + chrono::Duration::milliseconds((after * 1000.0) as i64);
    json!({"name": name, "status": "received", "arrived_at": rfc3339(arrived), "after_issue_seconds": after,
           "waited_seconds": 0.01})
}

fn passed(case: &str, issued: DateTime<Utc>, n: u32) -> Value {
    let signals: Vec<Value> =
        SIGNALS.iter().enumerate().map(|(i, s)| received(s, issued, 0.005 * (i + 1) as f64)).collect();
    json!({
        "id": format!("5e0f7c2a-0000-4000-8000-{n:012}"), "case": case, "state": "PASS",
        "issued_at": rfc3339(issued), "started_at": rfc3339(issued), "finished_at": rfc3339(issued + chrono::Duration::milliseconds(40)),
        "runtime_seconds": 0.04, "error": null, "location": null,
        "steps": SIGNALS.iter().map(|s| format!("waiting for {s}")).collect::<Vec<_>>(),
        "signals": signals,
    })
}

fn case_status(name: &str, state: &str, failing: bool, counts: [u32; 5]) -> Value {
    let [pass, fail, error, timeout, skip] = counts;
    let finished = pass + fail + error + timeout;
    json!({
        "name": name, "status": state, "failing": failing,
        "service_down": null, "stall": null, "last_suite_failure": null,
        "counts": {"PASS": pass, "FAIL": fail, "ERROR": error, "TIMEOUT": timeout, "SKIP": skip},
        "consecutive_failures": if failing { 3 } else { 0 }, "total_failures": fail + error + timeout,
        "pass_rate": {"last": finished, "passed": pass, "rate": f64::from(pass) / f64::from(finished.max(1))},
        "runtime_median_seconds": 0.042, "interval_median_seconds": 0.5, "lateness_median_seconds": 0.0,
        "in_flight": 0, "oldest_in_flight_seconds": null,
    })
}

impl Cases {
    /// Failing first, as the API orders them: `test_order` (a TIMEOUT, before it a FAIL, before that a PASS;
    /// its service down) and `test_cancel` (two PASSes).
    fn fixture(now: DateTime<Utc>) -> Cases {
        let mut failing = case_status(FAILING, "TIMEOUT", true, [17, 1, 0, 2, 0]);
        failing["service_down"] = json!({"since": rfc3339(now - chrono::Duration::seconds(75)),
            "url": "http://127.0.0.1:6066/order/init/sell/", "last_error": "connection refused"});
        failing["last_suite_failure"] = json!({"kind": "consecutive_failures", "state": "TIMEOUT",
            "reason": "3 consecutive failures", "at": rfc3339(now - chrono::Duration::seconds(20))});
        failing["in_flight"] = json!(1);
        failing["oldest_in_flight_seconds"] = json!(12.5);

        let issued = now - chrono::Duration::seconds(31);
        let mut timed_out: Vec<Value> =
            SIGNALS[..3].iter().zip([0.02, 0.05, 0.31]).map(|(s, t)| received(s, issued, t)).collect();
        timed_out
            .push(json!({"name": SIGNALS[3], "status": "missing", "arrived_at": null, "after_issue_seconds": null,
                              "waited_seconds": 30.0}));
        let timed_out = json!({
            "id": TIMED_OUT, "case": FAILING, "state": "TIMEOUT",
            "issued_at": rfc3339(issued), "started_at": rfc3339(issued), "finished_at": rfc3339(now - chrono::Duration::milliseconds(690)),
            "runtime_seconds": 30.31, "error": "signal order_executed: no signal within 30 s", "location": null,
            "steps": SIGNALS.iter().map(|s| format!("waiting for {s}")).collect::<Vec<_>>(),
            "signals": timed_out,
        });
        let issued = now - chrono::Duration::seconds(40);
        let failed = json!({
            "id": FAILED, "case": FAILING, "state": "FAIL",
            "issued_at": rfc3339(issued), "started_at": rfc3339(issued), "finished_at": rfc3339(issued + chrono::Duration::milliseconds(36)),
            "runtime_seconds": 0.036, "error": ASSERTION, "location": LOCATION,
            "steps": ["waiting for order_sent_to_db", "checking the order's side", "waiting for order_sent_to_kafka"],
            "signals": [received(SIGNALS[0], issued, 0.012),
                        {"name": SIGNALS[1], "status": "received", "arrived_at": rfc3339(issued + chrono::Duration::milliseconds(30)),
                         "after_issue_seconds": 0.03, "waited_seconds": 0.0},
                        {"name": SIGNALS[2], "status": "not_reached", "arrived_at": null, "after_issue_seconds": null, "waited_seconds": null},
                        {"name": SIGNALS[3], "status": "not_reached", "arrived_at": null, "after_issue_seconds": null, "waited_seconds": null}],
        });
        let failing_executions = vec![timed_out, failed, passed(FAILING, now - chrono::Duration::seconds(50), 1)];

        let passing = case_status(PASSING, "PASS", false, [10, 0, 0, 0, 1]);
        let passing_executions = vec![
            passed(PASSING, now - chrono::Duration::seconds(3), 3),
            passed(PASSING, now - chrono::Duration::seconds(8), 2),
        ];
        Cases(vec![(failing, failing_executions), (passing, passing_executions)])
    }
}
