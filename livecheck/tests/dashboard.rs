//! The dashboard in a real browser (headless Chromium over the DevTools protocol) on a real LiveCheck instance: its
//! web server on a free port, the memory transport, two cases driven by triggering tests and sending their signals.
//! Checked: the failing case listed first as the API orders it, why it fails (its service down), an execution's
//! timeline with its missing signal, a FAIL's message (as text) and location, live refresh, a phone-sized screen
//! without horizontal scrolling, and the "connection lost" banner when the instance shuts down and its disappearance
//! when an instance is back on the same port. Screenshots go to target/test-artifacts/; with
//! `LIVECHECK_UPDATE_SCREENSHOT=1` the desktop one also to docs/dashboard.png (the README's).

mod support;

use std::{path::PathBuf, time::Duration};

use livecheck::{
    history::ExecutionRecord, transport::MemoryTransport, Case, CaseHandle, CaseResult, CaseSettings, LiveCheck,
    Running, Signal, SignalSet, State, TestRun,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use support::browser::Browser;

const FAILING: &str = "orders.test_order";
const PASSING: &str = "orders.test_cancel";
/// How long `orders.test_order` waits for its last signal, `order_executed`: its TIMEOUT takes that long.
const EXECUTED_WITHIN: Duration = Duration::from_secs(2);
/// How long the cases wait for their other signals (they come at once here).
const SIGNAL_WITHIN: Duration = Duration::from_secs(30);
/// A side that is markup: the FAIL's message carries it, and the page must show it as text.
const INJECTED_SIDE: &str = r#"<b id="injected">buy</b>"#;
/// For anything the page or the instance has to get to: generous, not a speed check.
const WITHIN: Duration = Duration::from_secs(20);

#[derive(Serialize, Deserialize, Clone, Debug)]
struct Order {
    id: String,
    side: String,
}

#[derive(Serialize, Deserialize)]
struct OrderArgs {
    side: String,
}

#[derive(SignalSet)]
struct OrderSignals {
    order_sent_to_db: Signal<Order>,
    order_sent_to_kafka: Signal<()>,
    order_cache_in_redis: Signal<()>,
    order_executed: Signal<()>,
}

/// The tutorial's order flow: stored with the side it was placed with, then on Kafka, in Redis, executed. Its fake
/// requests go to an order service that is not running: the service is down.
struct TestOrder {
    signals: OrderSignals,
    order_service: String,
}

impl Case for TestOrder {
    type Args = OrderArgs;

    async fn run(&self, test: &TestRun, args: OrderArgs) -> CaseResult {
        let order = self.signals.order_sent_to_db.wait(SIGNAL_WITHIN).await?;
        test.log(format!("order {} stored with side {}", order.id, order.side));
        assert!(order.side == args.side, "the order's side changed: {} instead of {}", order.side, args.side);
        self.signals.order_sent_to_kafka.wait(SIGNAL_WITHIN).await?;
        self.signals.order_cache_in_redis.wait(SIGNAL_WITHIN).await?;
        self.signals.order_executed.wait(EXECUTED_WITHIN).await?;
        Ok(())
    }

    async fn make_fake_request(&self) -> CaseResult {
        let url = &self.order_service;
        match reqwest::Client::new().post(url).timeout(Duration::from_secs(5)).send().await {
            Ok(_) => Ok(()),
            Err(error) => Err(livecheck::Error::service_down(Some(url), innermost_cause(&error)).into()),
        }
    }
}

/// The root cause of an error, e.g. `Connection refused (os error 111)`.
fn innermost_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

#[derive(SignalSet)]
struct CancelSignals {
    cancel_requested: Signal<()>,
    order_cancelled: Signal<()>,
}

/// A cancellation: requested, then done.
struct TestCancel {
    signals: CancelSignals,
}

impl Case for TestCancel {
    type Args = ();

    async fn run(&self, _test: &TestRun, _: ()) -> CaseResult {
        self.signals.cancel_requested.wait(SIGNAL_WITHIN).await?;
        self.signals.order_cancelled.wait(SIGNAL_WITHIN).await?;
        Ok(())
    }
}

/// A LiveCheck instance with the two cases, serving its web server.
struct Instance {
    app: LiveCheck,
    orders: CaseHandle<TestOrder>,
    cancels: CaseHandle<TestCancel>,
    running: Running,
    url: String,
}

impl Instance {
    /// Starts on `transport`, its web server on 127.0.0.1:`port` (0: a free one); fake orders go to
    /// `order_service`.
    async fn start(transport: &MemoryTransport, port: u16, order_service: &str) -> Instance {
        let app = LiveCheck::builder().transport(transport.clone()).web_address(format!("127.0.0.1:{port}")).build();
        let order_service = order_service.to_owned();
        let orders = app
            .register(CaseSettings::new(FAILING).frequency(Duration::from_millis(200)), |signals| TestOrder {
                signals: OrderSignals::declare(signals),
                order_service,
            })
            .unwrap();
        let cancels = app
            .register(CaseSettings::new(PASSING), |signals| TestCancel { signals: CancelSignals::declare(signals) })
            .unwrap();
        let running = app.start().await.unwrap();
        let url = format!("http://{}/", running.web_address().expect("the web server is on"));
        Instance { app, orders, cancels, running, url }
    }

    /// An order placed `side`, its stages signalled as services would (a little apart, as in real life) up to
    /// `stages` of them, with the side `stored_side` in the database. Returns its execution once finished.
    async fn order(&self, side: &str, stored_side: &str, stages: usize) -> ExecutionRecord {
        let test = self.orders.trigger(&OrderArgs { side: side.to_owned() }).await.unwrap();
        let id = test.id().to_owned();
        let signals = &self.orders.signals;
        let order = Order { id: format!("order-{}", &id[..8]), side: stored_side.to_owned() };
        livecheck::scope(Some(test), async {
            pause(20).await;
            signals.order_sent_to_db.send(&order).await?;
            for signal in [&signals.order_sent_to_kafka, &signals.order_cache_in_redis, &signals.order_executed]
                .into_iter()
                .take(stages.saturating_sub(1))
            {
                pause(40).await;
                signal.notify().await?;
            }
            Ok::<(), livecheck::Error>(())
        })
        .await
        .unwrap();
        self.finished(&id).await
    }

    /// A cancellation, requested and done.
    async fn cancel(&self) -> ExecutionRecord {
        let test = self.cancels.trigger(&()).await.unwrap();
        let id = test.id().to_owned();
        let signals = &self.cancels.signals;
        livecheck::scope(Some(test), async {
            pause(15).await;
            signals.cancel_requested.notify().await?;
            pause(30).await;
            signals.order_cancelled.notify().await
        })
        .await
        .unwrap();
        self.finished(&id).await
    }

    /// The execution `id` once it has its verdict.
    async fn finished(&self, id: &str) -> ExecutionRecord {
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            if let Some(record) = self.app.execution(id).filter(|record| record.state.is_some()) {
                return record;
            }
            assert!(tokio::time::Instant::now() < deadline, "the execution {id} did not finish");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Shuts the instance down (its web server with it) and gives back the web server's port.
    async fn stop(self) -> u16 {
        let port = self.running.web_address().unwrap().port();
        self.running.shutdown().await.unwrap();
        port
    }
}

async fn pause(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_a_real_browser() {
    // The order service's address, with nothing listening there: bound, then let go.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let order_service = format!("http://127.0.0.1:{free}/order/init/sell/?fake=1");
    let transport = MemoryTransport::new();
    let instance = Instance::start(&transport, 0, &order_service).await;

    // orders.test_order: two PASSes, a FAIL (the stored side is not the one placed), then a TIMEOUT (never
    // executed). orders.test_cancel: two PASSes.
    let passed = [instance.order("sell", "sell", 4).await, instance.order("buy", "buy", 4).await];
    let failed = instance.order("sell", INJECTED_SIDE, 1).await;
    let timed_out = instance.order("buy", "buy", 3).await;
    let states = [&passed[0], &passed[1], &failed, &timed_out].map(|e| e.state);
    assert_eq!(states, [State::Pass, State::Pass, State::Fail, State::Timeout].map(Some));
    for _ in 0..2 {
        instance.cancel().await;
    }

    let mut browser = Browser::launch().await;
    browser.set_viewport(1200, 900, false).await;
    browser.navigate(&instance.url).await;

    // The cases in the API's order: the failing one first although its name sorts after the other's.
    browser.wait_for("two cases listed", "document.querySelectorAll('[data-case]').length === 2", WITHIN).await;
    let listed = browser.eval("[...document.querySelectorAll('[data-case]')].map(e => e.dataset.case)").await;
    assert_eq!(listed, json!([FAILING, PASSING]));
    let first_failing = browser.eval("document.querySelector('[data-case]').dataset.failing").await;
    assert_eq!(first_failing, json!("true"));
    // Why: its fake requests find the order service down.
    let cause = browser
        .wait_for(
            "the service-down cause",
            &format!("{}.querySelector('[data-cause=service_down]')?.textContent", case(FAILING)),
            WITHIN,
        )
        .await;
    let cause = cause.as_str().unwrap();
    // The URL without its query string (which may hold a token).
    let shown_service = order_service.split('?').next().unwrap();
    assert!(cause.contains(shown_service) && !cause.contains("fake=1"), "{cause}");
    assert!(cause.to_lowercase().contains("connection refused"), "{cause}");

    // In the failing case, what failed is listed first and the running execution last, although it is the newest.
    // A test of the failing case still running (nothing signalled: it waits 30 s for its first stage).
    let running = instance.orders.trigger(&OrderArgs { side: "sell".to_owned() }).await.unwrap();
    browser.wait_for("the running execution", &format!("{} !== null", execution(FAILING, running.id())), WITHIN).await;
    let states = browser
        .eval(&format!("[...{}.querySelectorAll('[data-execution]')].map(e => e.dataset.state)", case(FAILING)))
        .await;
    let states: Vec<&str> = states.as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(states.first(), Some(&"TIMEOUT"), "{states:?}");
    assert_eq!(states.last(), Some(&"RUNNING"), "{states:?}");

    // Its pipeline as a strip of stages, the one where it breaks marked: the timed-out test's `order_executed`
    // is the only stage missing — in 1 of the 3 executions that reached it (the FAIL never did).
    let strip = format!("{}.querySelector('[data-role=stages]')", case(FAILING));
    browser.wait_for("the stage strip", &format!("{strip} !== null"), WITHIN).await;
    let stages = browser
        .eval(&format!("[...{strip}.querySelectorAll('[data-stage]')].map(e => [e.dataset.stage, e.dataset.health, !!e.dataset.breaks])"))
        .await;
    let stages = stages.as_array().unwrap();
    assert_eq!(stages.len(), 4, "{stages:?}");
    assert_eq!(stages[3], json!(["order_executed", "flaky", true]), "{stages:?}");
    assert_eq!(stages[0], json!(["order_sent_to_db", "ok", false]), "{stages:?}");

    // Its chart: outcomes per minute, passed and failed bars, runtime lines, from the timeline API.
    let timeline: serde_json::Value =
        reqwest::get(format!("{}api/cases/{FAILING}/timeline", instance.url)).await.unwrap().json().await.unwrap();
    let buckets = timeline["buckets"].as_array().unwrap();
    let total = |key: &str| buckets.iter().map(|b| b[key].as_u64().unwrap()).sum::<u64>();
    assert_eq!((total("passed"), total("failed")), (2, 2), "{timeline}");
    let chart = format!("{}.querySelector('[data-role=chart]')", case(FAILING));
    browser.wait_for("the failing case's chart", &format!("{chart}?.dataset.buckets > 0"), WITHIN).await;
    let kinds = browser
        .eval(&format!("[...new Set([...{chart}.querySelectorAll('[data-kind]')].map(e => e.dataset.kind))].sort()"))
        .await;
    // Bars, runtime lines, and each stage's p50 and p99 from the issue (a stage that never arrived draws none).
    let mut expected =
        vec!["failed".to_owned(), "passed".into(), "runtime_p50_seconds".into(), "runtime_p99_seconds".into()];
    for stage in ["order_cache_in_redis", "order_executed", "order_sent_to_db", "order_sent_to_kafka"] {
        expected.extend([format!("stage:{stage}:p50"), format!("stage:{stage}:p99")]);
    }
    assert_eq!(kinds, json!(expected));

    // The failing case is open, with its newest bad execution open: every declared signal in order, the last
    // missing after its whole timeout.
    let timed_out_node = execution(FAILING, &timed_out.id);
    let signals = browser.wait_for("the timed-out execution's timeline", &signals_of(&timed_out_node), WITHIN).await;
    let expected = [
        ["order_sent_to_db", "received"],
        ["order_sent_to_kafka", "received"],
        ["order_cache_in_redis", "received"],
        ["order_executed", "missing"],
    ];
    assert_eq!(signals, json!(expected));
    let missing =
        browser.eval(&format!("{timed_out_node}.querySelector('[data-signal=order_executed]').textContent")).await;
    assert!(missing.as_str().unwrap().contains("missing — waited 2 s"), "{missing}");
    let error = browser.eval(&format!("{timed_out_node}.querySelector('[data-role=error]').textContent")).await;
    assert_eq!(error.as_str(), timed_out.error.as_deref());
    assert!(error.as_str().unwrap().contains("order_executed"), "{error}");

    // The FAIL, opened by a click: its assertion message (as text, not markup), location and step log.
    let failed_node = execution(FAILING, &failed.id);
    assert_eq!(browser.eval(&format!("{failed_node}.dataset.open")).await, json!("false"));
    browser.click(&format!("[data-case=\"{FAILING}\"] [data-execution=\"{}\"] .row", failed.id)).await;
    let error = browser
        .wait_for(
            "the FAIL's message",
            &format!("{failed_node}.querySelector('[data-role=error]')?.textContent"),
            WITHIN,
        )
        .await;
    let message = failed.error.as_deref().expect("a FAIL has its message");
    assert_eq!(error.as_str(), Some(message));
    assert!(message.contains(&format!("the order's side changed: {INJECTED_SIDE} instead of sell")), "{message}");
    assert_eq!(browser.eval("document.getElementById('injected')").await, Value::Null, "API text became markup");
    let location = failed.location.as_deref().expect("a FAIL has its location");
    let shown = browser.eval(&format!("{failed_node}.querySelector('[data-role=location]').textContent")).await;
    assert_eq!(shown, json!(format!("at {location}")));
    let line = location.rsplit_once(':').unwrap().0.rsplit_once(':').unwrap();
    assert_eq!(line.0, file!(), "{location}");
    let source_line = include_str!("dashboard.rs").lines().nth(line.1.parse::<usize>().unwrap() - 1).unwrap();
    assert!(source_line.contains("assert!(order.side == args.side"), "{location} is `{source_line}`");
    let steps = browser.eval(&format!("{failed_node}.querySelectorAll('[data-role=steps] li').length")).await;
    assert_eq!(steps, json!(failed.steps.len()));
    assert!(failed.steps.iter().any(|step| step.contains("stored with side")), "{:?}", failed.steps);
    let signals = browser.eval(&signals_of(&failed_node)).await;
    assert_eq!(signals[0], json!(["order_sent_to_db", "received"]));
    assert_eq!(signals[3], json!(["order_executed", "not_reached"]));

    // The passing case is closed until clicked.
    assert_eq!(browser.eval(&format!("{}.dataset.expanded", case(PASSING))).await, json!("false"));
    browser.click(&format!("[data-case=\"{PASSING}\"] .summary")).await;
    let opened = format!("{}.querySelectorAll('[data-execution]').length", case(PASSING));
    assert_eq!(browser.wait_for("the passing case's executions", &opened, WITHIN).await, json!(2));

    // Live refresh: a new execution shows without reloading.
    let third = instance.cancel().await;
    browser.wait_for("the new execution", &format!("{} !== null", execution(PASSING, &third.id)), WITHIN).await;
    assert_eq!(browser.eval(&opened).await, json!(3));
    let counts = browser.eval(&format!("{}.querySelector('.stats').textContent", case(PASSING))).await;
    assert!(counts.as_str().unwrap().contains("PASS 3"), "{counts}");

    let artifacts = artifacts();
    let png = browser.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(artifacts.join("dashboard.png"), &png).unwrap();
    println!("screenshot: {}", artifacts.join("dashboard.png").display());
    if std::env::var_os("LIVECHECK_UPDATE_SCREENSHOT").is_some_and(|v| v == "1") {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("docs");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(docs.join("dashboard.png"), &png).unwrap();
        println!("screenshot: {}", docs.join("dashboard.png").display());
    }

    // A phone: no horizontal scrolling at 390 px.
    browser.set_viewport(390, 844, true).await;
    let widths = browser.eval("[document.documentElement.scrollWidth, window.innerWidth]").await;
    let widest = widths.as_array().unwrap().iter().map(|w| w.as_u64().unwrap()).max().unwrap();
    assert!(widest <= 390, "the page is {widest} px wide on a 390 px screen (scrollWidth, innerWidth: {widths})");
    std::fs::write(artifacts.join("dashboard-phone.png"), browser.screenshot().await).unwrap();
    println!("screenshot: {}", artifacts.join("dashboard-phone.png").display());

    // The instance shuts down: the banner; an instance is back on the same port: the banner goes by itself.
    let banner = "!document.getElementById('connection-lost').hidden";
    assert_eq!(browser.eval(banner).await, json!(false));
    let port = instance.stop().await;
    browser.wait_for("the connection-lost banner", banner, WITHIN).await;
    let text = browser.eval("document.getElementById('connection-lost').textContent").await;
    assert!(text.as_str().unwrap().contains("Connection lost"), "{text}");
    let back = Instance::start(&transport, port, &order_service).await;
    browser.wait_for("the banner gone", &format!("!({banner})"), WITHIN).await;
    back.stop().await;
}

/// The JavaScript expression of a case's element.
fn case(name: &str) -> String {
    format!("document.querySelector('[data-case=\"{name}\"]')")
}

/// The JavaScript expression of an execution's element, in its case.
fn execution(case_name: &str, id: &str) -> String {
    format!("{}.querySelector('[data-execution=\"{id}\"]')", case(case_name))
}

/// The JavaScript expression of an execution's signals in its timeline: `[name, status]` pairs.
fn signals_of(execution: &str) -> String {
    format!("[...{execution}.querySelectorAll('[data-signal]')].map(s => [s.dataset.signal, s.dataset.signalStatus])")
}

/// target/test-artifacts, made if missing.
fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
