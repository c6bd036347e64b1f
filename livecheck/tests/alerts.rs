//! Alerts: webhooks POSTed to a real receiver on loopback (payload, signature, retries) for every cause of a suite
//! failure — consecutive failures, N of the last M, pass rate below a minimum, stall, service down — and recovery.
//! The instance runs on paused time; the alert sender has a thread and runtime of its own, so the HTTP to the
//! receiver happens in real time and is waited for in real time.

mod support;

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use axum::{body::Bytes, extract::State as Extract, http::HeaderMap, http::StatusCode, routing::post, Router};
use hmac::{Hmac, Mac};
use livecheck::{
    alert::{Alert, AlertEvent, HEADER_WEBHOOK_SIGNATURE},
    health::SuiteFailureKind,
    transport::MemoryTransport,
    wire::TestReport,
    Case, CaseHandle, CaseResult, CaseSettings, Error, LiveCheck, State, TestRun,
};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use support::{builder, reports, until};

/// One POST the receiver got.
#[derive(Clone, Debug)]
struct Post {
    signature: Option<String>,
    body: Vec<u8>,
}

#[derive(Default)]
struct Hook {
    posts: Mutex<Vec<Post>>,
    /// Statuses to answer with, in order; 200 once they are used up.
    answers: Mutex<VecDeque<u16>>,
}

/// A webhook receiver: an axum server on a free loopback port, on a thread and runtime of its own (real time),
/// stopped when dropped.
struct Receiver {
    url: String,
    hook: Arc<Hook>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    fn start(answers: &[u16]) -> Self {
        let hook = Arc::new(Hook { posts: Mutex::default(), answers: Mutex::new(answers.iter().copied().collect()) });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let router = Router::new().route("/hook", post(receive)).with_state(hook.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                tokio::select! {
                    served = axum::serve(listener, router) => served.unwrap(),
                    _ = stopped => {}
                }
            });
        });
        Receiver { url, hook, stop: Some(stop), thread: Some(thread) }
    }

    fn posts(&self) -> Vec<Post> {
        self.hook.posts.lock().unwrap().clone()
    }

    /// The alerts received, decoded (each retry of the same alert once per POST).
    fn alerts(&self) -> Vec<Alert> {
        self.posts().iter().map(|p| serde_json::from_slice(&p.body).unwrap()).collect()
    }

    /// Waits, in real time, until `n` POSTs came.
    async fn wait_for_posts(&self, n: usize) {
        let hook = self.hook.clone();
        wait_real(move || hook.posts.lock().unwrap().len() >= n).await;
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.stop.take().map(|stop| stop.send(()));
        let _ = self.thread.take().map(std::thread::JoinHandle::join);
    }
}

async fn receive(Extract(hook): Extract<Arc<Hook>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let signature = headers.get(HEADER_WEBHOOK_SIGNATURE).map(|v| v.to_str().unwrap().to_owned());
    hook.posts.lock().unwrap().push(Post { signature, body: body.to_vec() });
    let answer = hook.answers.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(answer).unwrap()
}

/// The README's signature check, as a receiver would write it: whether `header` (the
/// `LiveCheck-Webhook-Signature` value) signs `body` with `secret`.
fn signed(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex) = header.strip_prefix("sha256=") else { return false };
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| hex.get(i..i + 2).and_then(|byte| u8::from_str_radix(byte, 16).ok()))
        .collect();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    bytes.is_some_and(|bytes| mac.verify_slice(&bytes).is_ok()) // constant-time comparison
}

/// Waits in real time (up to 30 s) until `cond` holds. Paused time does not move meanwhile (a blocking task is
/// running), so the instance's timers stay where they are while the alert sender does its HTTP.
async fn wait_real(cond: impl Fn() -> bool + Send + 'static) {
    let held = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    })
    .await
    .unwrap();
    assert!(held, "condition not reached within 30 s of real time");
}

#[derive(Serialize, Deserialize)]
struct Args {
    pass: bool,
}

/// A case whose tests pass or fail as told, and whose fake requests find the service up or down as told.
#[derive(Default)]
struct Verdicts {
    service_down: AtomicBool,
}

impl Case for Verdicts {
    type Args = Args;

    async fn run(&self, _test: &TestRun, args: Args) -> CaseResult {
        livecheck::ensure!(args.pass, "told to fail");
        Ok(())
    }

    async fn make_fake_request(&self) -> CaseResult {
        if self.service_down.load(Ordering::SeqCst) {
            let down = Error::service_down(Some("http://orders.test/order/init/sell/"), "connection refused");
            return Err(down.into());
        }
        Ok(())
    }
}

fn verdicts(app: &LiveCheck, settings: CaseSettings) -> CaseHandle<Verdicts> {
    app.register(settings, |_| Verdicts::default()).unwrap()
}

/// Triggers one test and waits (paused time) until it finished.
async fn run_test(app: &LiveCheck, case: &CaseHandle<Verdicts>, pass: bool) {
    // Time passes between tests (on paused time it would not): a test is issued after the last one finished.
    tokio::time::sleep(Duration::from_millis(1)).await;
    let before = app.metrics().tests_finished;
    case.trigger(&Args { pass }).await.unwrap();
    until(Duration::from_secs(5), || app.metrics().tests_finished > before).await;
}

fn suite_reports(transport: &MemoryTransport) -> Vec<TestReport> {
    reports(transport).into_iter().filter(|r| r.test.is_none()).collect()
}

fn events(receiver: &Receiver) -> Vec<(AlertEvent, SuiteFailureKind)> {
    receiver.alerts().iter().map(|a| (a.event, a.kind)).collect()
}

#[tokio::test(start_paused = true)]
async fn a_suite_failure_is_posted_signed_and_retried_until_delivered() {
    let receiver = Receiver::start(&[500, 500]);
    let transport = MemoryTransport::new();
    let app = builder(&transport).alert_webhook(&receiver.url).alert_webhook_secret("s3cret").build();
    let case = verdicts(&app, CaseSettings::new("test_order").max_consecutive_failures(2));
    let running = app.start().await.unwrap();
    run_test(&app, &case, false).await;
    run_test(&app, &case, false).await;
    receiver.wait_for_posts(3).await;
    let deliveries = app.alert_deliveries();
    let app_ = app.clone();
    wait_real(move || app_.alert_deliveries().first().is_some_and(|d| d.delivered)).await;

    // The payload, exactly as documented.
    let posts = receiver.posts();
    assert_eq!(posts.len(), 3, "500, 500, then 200: three attempts");
    assert!(posts.iter().all(|p| p.body == posts[0].body), "each attempt carries the same alert");
    let json: serde_json::Value = serde_json::from_slice(&posts[0].body).unwrap();
    let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["event", "case", "state", "kind", "reason", "at", "instance", "dashboard", "example_test", "example_error"]
    );
    assert!(json["instance"].as_str().is_some_and(|name| !name.is_empty()), "the host's name by default");
    assert_eq!(json["dashboard"], serde_json::Value::Null, "no web server, no dashboard set");
    assert!(json["example_test"].is_string(), "{json}");
    assert!(json["example_error"].as_str().is_some_and(|e| e.contains("told to fail")), "{json}");
    assert_eq!(json["event"], "suite_failed");
    assert_eq!(json["case"], "test_order");
    assert_eq!(json["state"], "FAIL");
    assert_eq!(json["kind"], "consecutive_failures");
    assert_eq!(json["reason"], "failed after 2 consecutive failures");
    let at = chrono::DateTime::parse_from_rfc3339(json["at"].as_str().unwrap()).unwrap();
    let last = case.health().last_suite_failure.unwrap();
    assert_eq!(at, last.at, "the time the suite failure was decided");

    // The signature: HMAC-SHA256 of the body with the secret, in hex.
    let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
    mac.update(&posts[0].body);
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    for post in &posts {
        let header = post.signature.as_deref().expect("signed");
        assert_eq!(header, format!("sha256={expected}"));
        assert!(signed(b"s3cret", &post.body, header), "the README's check accepts it");
        assert!(!signed(b"other", &post.body, header), "and rejects another secret");
        assert!(!signed(b"s3cret", b"{}", header), "and another body");
    }

    // Every attempt in the record.
    assert_eq!(deliveries.len(), 1);
    let delivery = &app.alert_deliveries()[0];
    assert_eq!(
        (delivery.event, delivery.case.as_str(), delivery.url.as_str()),
        (AlertEvent::SuiteFailed, "test_order", receiver.url.as_str())
    );
    let statuses: Vec<Option<u16>> = delivery.attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [Some(500), Some(500), Some(200)]);
    let errors: Vec<Option<&str>> = delivery.attempts.iter().map(|a| a.error.as_deref()).collect();
    assert_eq!(errors, [Some("HTTP 500 Internal Server Error"), Some("HTTP 500 Internal Server Error"), None]);
    assert!(delivery.attempts.windows(2).all(|w| w[0].at <= w[1].at));
    let json = serde_json::to_value(delivery).unwrap();
    assert_eq!(json["attempts"][0]["status"], 500);
    assert_eq!(json["delivered"], true);
    let metrics = app.metrics();
    assert_eq!((metrics.alerts_delivered, metrics.alerts_failed, metrics.alerts_dropped), (1, 0, 0));
    running.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn n_of_the_last_m_failing_alerts_once_when_it_starts_then_recovers() {
    let receiver = Receiver::start(&[]);
    let transport = MemoryTransport::new();
    let app = builder(&transport).alert_webhook(&receiver.url).build();
    let case = verdicts(&app, CaseSettings::new("c").failure_rate(3, 5));
    let running = app.start().await.unwrap();
    for pass in [true, false, true, false] {
        run_test(&app, &case, pass).await;
    }
    assert!(suite_reports(&transport).is_empty(), "2 of the last 4 failed");
    run_test(&app, &case, false).await;
    receiver.wait_for_posts(1).await;
    let alert = &receiver.alerts()[0];
    assert_eq!(
        (alert.event, alert.kind, alert.state),
        (AlertEvent::SuiteFailed, SuiteFailureKind::FailureRate, State::Fail)
    );
    assert_eq!(alert.reason, "3 of the last 5 executions failed");
    let suite = suite_reports(&transport);
    assert_eq!(suite.len(), 1);
    assert_eq!(suite[0].error.as_deref(), Some("3 of the last 5 executions failed"));
    let health = case.health();
    assert!(health.failing);
    assert_eq!(health.last_suite_failure.unwrap().kind, SuiteFailureKind::FailureRate);
    assert_eq!(health.consecutive_failures, 2, "FAIL PASS FAIL FAIL: two in a row");

    // Still met on the next failure, within state_transition_delay: no second report, no second alert.
    run_test(&app, &case, false).await;
    assert_eq!(suite_reports(&transport).len(), 1);
    assert_eq!(app.metrics().suite_failures, 2);

    // After the delay, passing tests recover the case once fewer than 3 of the last 5 failed.
    tokio::time::sleep(Duration::from_secs(61)).await;
    run_test(&app, &case, true).await;
    run_test(&app, &case, true).await;
    assert!(case.health().failing, "still 3 of the last 5 failed");
    run_test(&app, &case, true).await;
    receiver.wait_for_posts(2).await;
    assert_eq!(
        events(&receiver),
        [
            (AlertEvent::SuiteFailed, SuiteFailureKind::FailureRate),
            (AlertEvent::Recovered, SuiteFailureKind::FailureRate)
        ]
    );
    assert_eq!(receiver.alerts()[1].state, State::Pass);
    let health = case.health();
    assert_eq!((health.status, health.failing), (State::Pass, false));
    running.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_pass_rate_below_the_minimum_alerts_once_enough_executions_finished_in_the_window() {
    let receiver = Receiver::start(&[]);
    let transport = MemoryTransport::new();
    let app = builder(&transport).alert_webhook(&receiver.url).build();
    let settings = CaseSettings::new("c").min_pass_rate(0.75, Duration::from_secs(600)).min_pass_rate_executions(8);
    let case = verdicts(&app, settings);
    let running = app.start().await.unwrap();
    run_test(&app, &case, false).await;
    assert!(suite_reports(&transport).is_empty(), "one failure of one is not judged");
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_secs(10)).await;
        run_test(&app, &case, true).await;
    }
    run_test(&app, &case, false).await;
    assert!(suite_reports(&transport).is_empty(), "7 executions, fewer than the minimum of 8");
    run_test(&app, &case, false).await;
    receiver.wait_for_posts(1).await;
    let alert = &receiver.alerts()[0];
    assert_eq!((alert.event, alert.kind), (AlertEvent::SuiteFailed, SuiteFailureKind::PassRate));
    assert_eq!(alert.reason, "pass rate 62.5 % (5 of 8 executions passed) over the last 10 min is below 75.0 %");
    assert_eq!(case.health().pass_rate.rate, Some(0.625));

    // Eleven minutes on, the failures have left the window: the next passing test recovers the case.
    tokio::time::sleep(Duration::from_secs(660)).await;
    run_test(&app, &case, true).await;
    receiver.wait_for_posts(2).await;
    assert_eq!(events(&receiver)[1], (AlertEvent::Recovered, SuiteFailureKind::PassRate));
    running.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_stall_is_posted_as_stalled_and_a_failure_soon_after_it_is_reported_too() {
    let receiver = Receiver::start(&[]);
    let transport = MemoryTransport::new();
    let app = builder(&transport).alert_webhook(&receiver.url).build();
    let settings = CaseSettings::new("c").warn_stalled_after(Duration::from_secs(5)).max_consecutive_failures(2);
    let case = verdicts(&app, settings);
    let running = app.start().await.unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    receiver.wait_for_posts(1).await;
    let stalled = &receiver.alerts()[0];
    assert_eq!(
        (stalled.event, stalled.kind, stalled.state),
        (AlertEvent::Stalled, SuiteFailureKind::Stall, State::Stall)
    );
    assert_eq!(
        stalled.reason,
        "no test received for 5.0 s: no service reported any traffic meanwhile (no requests reach them, or none calls \
         maybe_trigger)"
    );
    let stall = case.health().stall.expect("stalled");
    assert!(stall.quiet_seconds >= 6.0, "{stall:?}");

    // Within state_transition_delay (60 s) of the stall, another cause: reported, not buried under the stall.
    run_test(&app, &case, false).await;
    assert!(case.health().stall.is_none(), "a test arrived");
    run_test(&app, &case, false).await;
    receiver.wait_for_posts(2).await;
    assert_eq!(events(&receiver)[1], (AlertEvent::SuiteFailed, SuiteFailureKind::ConsecutiveFailures));
    let suite = suite_reports(&transport);
    assert_eq!(suite.iter().map(|r| r.state).collect::<Vec<_>>(), [State::Stall, State::Fail]);
    let health = case.health();
    assert_eq!(health.status, State::Fail);
    assert_eq!(health.last_suite_failure.unwrap().kind, SuiteFailureKind::ConsecutiveFailures);
    running.shutdown().await.unwrap();
}

/// Log lines written while it is the thread's default subscriber (the paused runtime runs every task on it).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test(start_paused = true)]
async fn service_down_after_a_stall_is_its_own_state_alert_and_error_line_until_recovered() {
    let logs = Logs::default();
    let _logging = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish(),
    );
    let receiver = Receiver::start(&[]);
    let transport = MemoryTransport::new();
    let app = builder(&transport).alert_webhook(&receiver.url).build();
    let settings = CaseSettings::new("c").warn_stalled_after(Duration::from_secs(30)).frequency(Duration::from_secs(1));
    let case = verdicts(&app, settings);
    let running = app.start().await.unwrap();

    // No tests: a stall first.
    tokio::time::sleep(Duration::from_millis(30_500)).await;
    receiver.wait_for_posts(1).await;
    assert_eq!(events(&receiver), [(AlertEvent::Stalled, SuiteFailureKind::Stall)]);

    // Then the service goes down: reported at once, though a stall was reported within state_transition_delay.
    case.service_down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;
    receiver.wait_for_posts(2).await;
    let down = &receiver.alerts()[1];
    assert_eq!(
        (down.event, down.kind, down.state),
        (AlertEvent::ServiceDown, SuiteFailureKind::ServiceDown, State::Fail)
    );
    assert_eq!(down.reason, "service down: http://orders.test/order/init/sell/: connection refused");
    let health = case.health();
    let service_down = health.service_down.expect("service down in the snapshot");
    assert_eq!(service_down.url.as_deref(), Some("http://orders.test/order/init/sell/"));
    assert_eq!(service_down.last_error, "connection refused");
    assert_eq!(service_down.since, down.at);
    assert_eq!((health.status, health.failing), (State::Fail, true), "no longer STALL");
    let json = serde_json::to_value(case.health()).unwrap();
    assert_eq!(json["service_down"]["url"], "http://orders.test/order/init/sell/");
    let error_line = logs.text().lines().find(|l| l.contains("c: service down:")).map(str::to_owned);
    let error_line = error_line.expect("a service-down line");
    assert!(error_line.contains("ERROR"), "{error_line}");
    assert!(!logs.text().contains("already reported"), "{}", logs.text());

    // Down for a while longer: the state is updated, nothing more is reported.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(suite_reports(&transport).len(), 2, "the stall and the service down");
    assert_eq!(case.health().service_down.unwrap().since, down.at, "down since the first failure");

    // The service comes back: the state clears; the case recovers with a passing test after the delay.
    case.service_down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let health = case.health();
    assert!(health.service_down.is_none());
    assert!(health.failing, "reachable again, but no test passed since the failure");
    assert!(logs.text().contains("c: service reachable again"));
    for _ in 0..8 {
        run_test(&app, &case, true).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    receiver.wait_for_posts(3).await;
    assert_eq!(events(&receiver)[2], (AlertEvent::Recovered, SuiteFailureKind::ServiceDown));
    assert_eq!((case.health().status, case.health().failing), (State::Pass, false));
    assert_eq!(receiver.posts().len(), 3, "stalled, service_down, recovered and nothing else");
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_invalid_webhook_url_fails_start_and_without_webhooks_nothing_is_recorded() {
    let app = LiveCheck::builder().alert_webhook("ftp://example.com/hook").build();
    let error = app.start().await.err().expect("start fails").to_string();
    assert!(error.contains("alert webhook #1") && error.contains("ftp"), "{error}");

    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let case = verdicts(&app, CaseSettings::new("c").max_consecutive_failures(1));
    let running = app.start().await.unwrap();
    run_test(&app, &case, false).await;
    assert_eq!(suite_reports(&transport).len(), 1);
    assert!(app.alert_deliveries().is_empty());
    running.shutdown().await.unwrap();
}

/// A case failing its suite after two failing tests, then recovering: the alerts each format receives.
async fn fail_then_recover(url: &str) -> (Receiver, Vec<serde_json::Value>) {
    let receiver = Receiver::start(&[]);
    let url = url.replace("{receiver}", receiver.url.trim_start_matches("http://"));
    let transport = MemoryTransport::new();
    let app = builder(&transport)
        .alert_webhook(url)
        .alert_instance("checker-1")
        .alert_dashboard_url("http://livecheck.example/")
        .build();
    let settings = CaseSettings::new("test_order").max_consecutive_failures(2).state_transition_delay(Duration::ZERO);
    let case = verdicts(&app, settings);
    let running = app.start().await.unwrap();
    run_test(&app, &case, false).await;
    run_test(&app, &case, false).await;
    receiver.wait_for_posts(1).await;
    run_test(&app, &case, true).await;
    receiver.wait_for_posts(2).await;
    running.shutdown().await.unwrap();
    let bodies = receiver.posts().iter().map(|p| serde_json::from_slice(&p.body).unwrap()).collect();
    (receiver, bodies)
}

#[tokio::test(start_paused = true)]
async fn slack_gets_a_message_with_text_and_blocks() {
    let (_receiver, bodies) = fail_then_recover("slack+http://{receiver}").await;
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    let failed = &bodies[0];
    let text = failed["text"].as_str().unwrap();
    assert!(text.contains("test_order") && text.contains("failing"), "{text}");
    assert_eq!(failed["blocks"][0]["type"], "section");
    assert_eq!(failed["blocks"][0]["text"]["type"], "mrkdwn");
    let context = failed["blocks"][1]["elements"][0]["text"].as_str().unwrap();
    assert!(context.contains("checker-1") && context.contains("<http://livecheck.example/|Dashboard>"), "{context}");
    assert!(context.contains("told to fail"), "the example failing test and its error: {context}");
    assert!(bodies[1]["text"].as_str().unwrap().contains("recovered"), "{}", bodies[1]);
}

#[tokio::test(start_paused = true)]
async fn pagerduty_gets_a_trigger_then_a_resolve_with_the_same_dedup_key() {
    let (_receiver, bodies) = fail_then_recover("pagerduty+http://{receiver}?routing_key=R0UT1NG").await;
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    let (trigger, resolve) = (&bodies[0], &bodies[1]);
    assert_eq!(trigger["routing_key"], "R0UT1NG");
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["dedup_key"], "livecheck/test_order/consecutive_failures");
    let payload = &trigger["payload"];
    assert!(payload["summary"].as_str().unwrap().contains("test_order"));
    assert_eq!(payload["source"], "checker-1");
    assert_eq!(payload["severity"], "error");
    assert!(chrono::DateTime::parse_from_rfc3339(payload["timestamp"].as_str().unwrap()).is_ok());
    assert_eq!(payload["component"], "test_order");
    assert_eq!(payload["custom_details"]["example_error"], "told to fail");
    assert_eq!(trigger["links"][0]["href"], "http://livecheck.example/");
    let keys: Vec<&str> = resolve.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["routing_key", "event_action", "dedup_key"]);
    assert_eq!((&resolve["event_action"], &resolve["dedup_key"]), (&"resolve".into(), &trigger["dedup_key"]));
}

#[tokio::test]
async fn a_pagerduty_url_without_its_routing_key_fails_the_start() {
    let app = LiveCheck::builder().alert_webhook("https://events.pagerduty.com/v2/enqueue").build();
    let error = app.start().await.err().expect("refused").to_string();
    assert!(error.contains("routing key"), "{error}");
}
