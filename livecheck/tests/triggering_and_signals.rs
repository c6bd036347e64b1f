//! Triggering tests and waiting for signals (SPEC appendix 7–16; SPEC §5 items 1–4).

mod support;

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use livecheck::{
    current_test, transport::MemoryTransport, Case, CaseResult, CaseSettings, Error, LiveCheck, Signal, State, TestRun,
};
use serde::{Deserialize, Serialize};
use support::{builder, executions, reports, signals, until, ReportReader};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Args {
    side: String,
}

/// Waits for `first` (returning its value into `seen`), then for `second`.
struct TwoSteps {
    first: Signal<u32>,
    second: Signal<()>,
    timeout: Duration,
    seen: Arc<AtomicU64>,
    woken: Arc<AtomicU64>,
}

impl Case for TwoSteps {
    type Args = Args;
    async fn run(&self, _test: &TestRun, _args: Args) -> CaseResult {
        let value = self.first.wait(self.timeout).await?;
        self.seen.store(u64::from(value), Ordering::SeqCst);
        self.woken.fetch_add(1, Ordering::SeqCst);
        self.second.wait(self.timeout).await?;
        Ok(())
    }
}

fn two_steps(app: &LiveCheck, settings: CaseSettings, timeout: Duration) -> livecheck::CaseHandle<TwoSteps> {
    app.register(settings, |s| TwoSteps {
        first: s.declare("first"),
        second: s.declare("second"),
        timeout,
        seen: Arc::default(),
        woken: Arc::default(),
    })
    .unwrap()
}

fn sell() -> Args {
    Args { side: "sell".into() }
}

#[tokio::test(start_paused = true)]
async fn maybe_trigger_starts_a_test_only_when_the_draw_is_below_the_probability() {
    let transport = MemoryTransport::new();
    let draw = Arc::new(AtomicU64::new(0));
    let app = {
        let draw = draw.clone();
        builder(&transport).draw(move || f64::from_bits(draw.load(Ordering::SeqCst))).build()
    };
    let case = two_steps(&app, CaseSettings::new("c").probability(0.5), Duration::from_secs(1));
    let set = |x: f64| draw.store(x.to_bits(), Ordering::SeqCst);

    set(0.5);
    assert_eq!(case.maybe_trigger_with_id("at", &sell()).await.unwrap(), None, "a draw at the probability misses");
    set(0.7);
    assert_eq!(case.maybe_trigger_with_id("above", &sell()).await.unwrap(), None);
    assert!(executions(&transport).is_empty());

    set(0.49);
    let test = case.maybe_trigger_with_id("below", &sell()).await.unwrap().expect("a draw below triggers");
    let inside = livecheck::scope(Some(test.clone()), async { current_test() }).await;
    assert_eq!(inside, Some(test));
    assert_eq!(current_test(), None, "not current outside the block");
    let published = executions(&transport);
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].0, "below", "keyed by the test id");
    assert_eq!(published[0].1.id, "below");
}

#[tokio::test(start_paused = true)]
async fn probability_zero_never_triggers_and_one_always_does() {
    let transport = MemoryTransport::new();
    let low = builder(&transport).draw(|| 0.0).build();
    let never = two_steps(&low, CaseSettings::new("never").probability(0.0), Duration::from_secs(1));
    assert_eq!(never.maybe_trigger(&sell()).await.unwrap(), None);
    let high = builder(&transport).draw(|| 0.999_999).build();
    let always = two_steps(&high, CaseSettings::new("always").probability(1.0), Duration::from_secs(1));
    assert!(always.maybe_trigger(&sell()).await.unwrap().is_some());
    // With the real random draw too.
    let random = builder(&transport).build();
    let never = two_steps(&random, CaseSettings::new("never").probability(0.0), Duration::from_secs(1));
    let always = two_steps(&random, CaseSettings::new("always").probability(1.0), Duration::from_secs(1));
    for _ in 0..200 {
        assert!(never.maybe_trigger(&sell()).await.unwrap().is_none());
        assert!(always.maybe_trigger(&sell()).await.unwrap().is_some());
    }
    assert_eq!(executions(&transport).len(), 201);
}

#[tokio::test(start_paused = true)]
async fn trigger_publishes_the_execution_with_id_case_args_and_expiry() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let case =
        two_steps(&app, CaseSettings::new("test_order").test_expires(Duration::from_secs(600)), Duration::from_secs(1));
    let test = case.trigger_with_id("id1", &sell()).await.unwrap();
    let (key, execution) = executions(&transport).pop().unwrap();
    assert_eq!(key, "id1");
    assert_eq!(execution.id, "id1");
    assert_eq!(execution.case_name, "test_order");
    assert_eq!(execution.test_kwargs["side"], "sell");
    assert!(execution.test_args.is_empty());
    assert_eq!(execution.expires - execution.timestamp, chrono::Duration::seconds(600));
    assert_eq!(test.timestamp(), execution.timestamp);
    // Without an id, a fresh UUID.
    let fresh = case.trigger(&sell()).await.unwrap();
    assert!(uuid::Uuid::parse_str(fresh.id()).is_ok(), "{}", fresh.id());
    assert_ne!(fresh.id(), case.trigger(&sell()).await.unwrap().id());
}

#[tokio::test(start_paused = true)]
async fn trigger_by_name_publishes_what_the_case_handle_would_for_a_case_this_app_does_not_have() {
    let transport = MemoryTransport::new();
    // A tool that knows the case only by name (the `livecheck trigger` command), signing as the services do.
    let tool = builder(&transport).signing_secret("secret").build();
    let args = serde_json::json!({"side": "sell", "quantity": 3});
    let test = tool.trigger_by_name("test_order", Some("id1"), &args, Duration::from_secs(60)).await.unwrap();
    let published = transport.messages("livecheck").pop().unwrap();
    let execution: livecheck::wire::TestExecution = serde_json::from_slice(&published.message.value).unwrap();
    assert_eq!(published.message.key.as_deref(), Some("id1"));
    assert_eq!((execution.id.as_str(), execution.case_name.as_str()), ("id1", "test_order"));
    assert_eq!(serde_json::Value::Object(execution.test_kwargs.clone()), args);
    assert_eq!(execution.expires - execution.timestamp, chrono::Duration::seconds(60));
    assert_eq!((test.timestamp(), test.expires()), (execution.timestamp, execution.expires));
    // The signed headers a case handle writes: an instance with the same secret takes it for a test.
    let instance = builder(&transport).signing_secret("secret").build();
    assert_eq!(instance.test_from_headers(&published.message.headers), Some(test));
    assert!(published.message.headers.get(livecheck::context::HEADER_SIGNATURE).is_some());
    // An instance running the case executes it with those arguments.
    let case = two_steps(&instance, CaseSettings::new("test_order"), Duration::from_secs(1));
    let running = instance.start().await.unwrap();
    let mut reports = ReportReader::new(&transport).await;
    let report = reports.next(Duration::from_secs(5)).await;
    assert_eq!((report.case_name.as_str(), report.state), ("test_order", State::Timeout), "{report:?}");
    // Started by hand (as `livecheck trigger` does): reported, but kept out of the case's health.
    assert!(report.test.as_ref().is_some_and(|t| t.by_hand), "{report:?}");
    assert_eq!(case.health().count(State::Timeout), 0);
    running.shutdown().await.unwrap();
    // A case needs a name.
    let nameless = tool.trigger_by_name("", None, &(), Duration::from_secs(60)).await;
    assert!(matches!(nameless, Err(Error::Config(_))), "{nameless:?}");
}

#[tokio::test(start_paused = true)]
async fn send_outside_a_test_publishes_nothing_unless_forced_with_a_key() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let case = two_steps(&app, CaseSettings::new("c"), Duration::from_secs(1));
    case.first.send(&1).await.unwrap();
    case.second.notify().await.unwrap();
    assert!(signals(&transport).is_empty());
    case.first.send_with_key("forced-key", &7).await.unwrap();
    let sent = signals(&transport);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0.key.as_deref(), Some("forced-key"));
    assert_eq!(sent[0].1.key, "forced-key");
    assert_eq!(sent[0].1.value.get(), "7");
    assert!(sent[0].0.headers.is_empty(), "no test, no test headers");
}

#[tokio::test(start_paused = true)]
async fn send_inside_a_test_publishes_a_signal_keyed_by_the_test_id() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let case = two_steps(&app, CaseSettings::new("test_order"), Duration::from_secs(1));
    let test = case.trigger_with_id("t-1", &sell()).await.unwrap();
    livecheck::scope(Some(test.clone()), async { case.first.send(&42).await.unwrap() }).await;
    let sent = signals(&transport);
    assert_eq!(sent.len(), 1);
    let (message, event) = &sent[0];
    assert_eq!(message.key.as_deref(), Some("t-1"));
    assert_eq!(event.signal_name, "first");
    assert_eq!(event.case_name, "test_order");
    assert_eq!(event.key, "t-1");
    assert_eq!(event.value.get(), "42");
    assert_eq!(livecheck::TestContext::from_headers(&message.headers).unwrap(), Some(test));
}

#[tokio::test(start_paused = true)]
async fn a_test_of_another_case_does_not_send_this_cases_signals() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let orders = two_steps(&app, CaseSettings::new("orders"), Duration::from_secs(1));
    let payments = two_steps(&app, CaseSettings::new("payments"), Duration::from_secs(1));
    let test = orders.trigger_with_id("t-1", &sell()).await.unwrap();
    livecheck::scope(Some(test), async { payments.first.send(&1).await.unwrap() }).await;
    assert!(signals(&transport).is_empty());
}

#[tokio::test(start_paused = true)]
async fn wait_outside_an_executing_test_is_an_error() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let case = two_steps(&app, CaseSettings::new("c"), Duration::from_secs(1));
    let err = case.first.wait(Duration::from_secs(1)).await.unwrap_err();
    assert!(matches!(err, Error::NotInTest { ref signal } if signal == "first"), "{err}");
    // A current test (a service handling a request) is not an executing one.
    let test = case.trigger(&sell()).await.unwrap();
    let err = livecheck::scope(Some(test), case.first.wait(Duration::from_secs(1))).await.unwrap_err();
    assert!(matches!(err, Error::NotInTest { .. }), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_signal_sent_before_the_wait_counts_and_returns_at_once() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let case = two_steps(&app, CaseSettings::new("c"), Duration::from_secs(30));
    let mut reader = ReportReader::new(&transport).await;
    // Signals first, on the bus before the test is even consumed.
    let test = case.trigger_with_id("early", &sell()).await.unwrap();
    livecheck::scope(Some(test), async {
        case.first.send(&5).await.unwrap();
        case.second.notify().await.unwrap();
    })
    .await;
    let running = app.start().await.unwrap();
    let report = reader.next(Duration::from_secs(1)).await;
    assert_eq!(report.state, State::Pass, "{report:?}");
    assert_eq!(case.seen.load(Ordering::SeqCst), 5);
    assert!(report.signal_latency.get("first").unwrap() < 0.001, "{report:?}");
    assert!(report.runtime.unwrap() < 0.001);
    running.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_later_signal_wakes_only_the_waiter_of_its_test() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let case = two_steps(&app, CaseSettings::new("c"), Duration::from_secs(30));
    let running = app.start().await.unwrap();
    let a = case.trigger_with_id("a", &sell()).await.unwrap();
    let _b = case.trigger_with_id("b", &sell()).await.unwrap();
    until(Duration::from_secs(1), || app.metrics().tests_executing == 2).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    livecheck::scope(Some(a), case.first.send(&9)).await.unwrap();
    until(Duration::from_secs(1), || case.woken.load(Ordering::SeqCst) == 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(case.woken.load(Ordering::SeqCst), 1, "only test a's body went on");
    // Counted in the router: a broadcast wake-up would wake b's waiter too (and send it back to sleep).
    assert_eq!(app.metrics().signal_wakeups, 1, "only test a's waiter was woken");
    assert_eq!(case.seen.load(Ordering::SeqCst), 9);
    running.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn wait_times_out_at_exactly_the_timeout_not_before_however_many_other_signals_arrive() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let case = two_steps(&app, CaseSettings::new("c"), Duration::from_secs(30));
    let mut reader = ReportReader::new(&transport).await;
    let running = app.start().await.unwrap();
    let start = tokio::time::Instant::now();
    let test = case.trigger_with_id("t", &sell()).await.unwrap();
    // `second` keeps arriving for the same test while it waits for `first`: each wakes the waiter.
    for _ in 0..29 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        livecheck::scope(Some(test.clone()), case.second.notify()).await.unwrap();
        assert!(app.metrics().tests_finished == 0, "ended early at {:?}", start.elapsed());
    }
    let report = reader.next(Duration::from_secs(5)).await;
    let ended = start.elapsed();
    assert_eq!(report.state, State::Timeout);
    assert!(ended >= Duration::from_secs(30), "timed out after {ended:?}");
    assert!(ended < Duration::from_millis(30_100), "timed out after {ended:?}");
    assert!(report.error.unwrap().contains("`first`"));
    running.shutdown().await.unwrap();
}

/// A sender whose `first` carries a string where the case expects a number.
struct WrongType {
    first: Signal<String>,
}

impl Case for WrongType {
    type Args = ();
    async fn run(&self, _test: &TestRun, _args: ()) -> CaseResult {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_value_that_does_not_decode_is_an_error_naming_the_signal() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let case = two_steps(&app, CaseSettings::new("c"), Duration::from_secs(30));
    let mut reader = ReportReader::new(&transport).await;
    let running = app.start().await.unwrap();
    let test = case.trigger_with_id("t", &sell()).await.unwrap();
    // The same signal name, declared by a sender with another type.
    let sender_app = builder(&transport).build();
    let sender = sender_app.register(CaseSettings::new("c"), |s| WrongType { first: s.declare("first") }).unwrap();
    livecheck::scope(Some(test), sender.first.send(&"not a number".to_string())).await.unwrap();
    let report = reader.next(Duration::from_secs(1)).await;
    assert_eq!(report.state, State::Error);
    let error = report.error.unwrap();
    assert!(error.contains("`first`") && error.contains("invalid type"), "{error}");
    running.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn signals_for_unknown_cases_or_names_are_dropped_counted_and_the_next_is_processed() {
    let transport = MemoryTransport::with_partitions(1);
    let app = builder(&transport).build();
    let case = two_steps(&app, CaseSettings::new("c"), Duration::from_secs(30));
    let mut reader = ReportReader::new(&transport).await;
    let running = app.start().await.unwrap();
    let test = case.trigger_with_id("t", &sell()).await.unwrap();
    let bus = "livecheck-bus";
    support::publish_raw(&transport, bus, "t", br#"{"signal_name":"nope","case_name":"c","key":"t","value":1}"#).await;
    support::publish_raw(&transport, bus, "t", br#"{"signal_name":"first","case_name":"other","key":"t","value":1}"#)
        .await;
    support::publish_raw(&transport, bus, "t", b"not json").await;
    livecheck::scope(Some(test), async {
        case.first.send(&1).await.unwrap();
        case.second.notify().await.unwrap();
    })
    .await;
    assert_eq!(reader.next(Duration::from_secs(1)).await.state, State::Pass);
    let m = app.metrics();
    assert_eq!((m.signals_unknown_name, m.signals_unknown_case, m.signals_malformed), (1, 1, 1));
    assert_eq!(m.signals_received, 5);
    running.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_second_execution_reusing_a_test_id_does_not_see_the_first_ones_signals() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let case = two_steps(&app, CaseSettings::new("c"), Duration::from_secs(10));
    let mut reader = ReportReader::new(&transport).await;
    let running = app.start().await.unwrap();
    let first = case.trigger_with_id("reused", &sell()).await.unwrap();
    livecheck::scope(Some(first.clone()), async {
        case.first.send(&1).await.unwrap();
        case.second.notify().await.unwrap();
    })
    .await;
    assert_eq!(reader.next(Duration::from_secs(1)).await.state, State::Pass);
    tokio::time::sleep(Duration::from_secs(1)).await;
    // A straggler of the first execution arrives, then the id is reused.
    livecheck::scope(Some(first), case.first.send(&1)).await.unwrap();
    let _second = case.trigger_with_id("reused", &sell()).await.unwrap();
    let report = reader.next(Duration::from_secs(11)).await;
    assert_eq!(report.state, State::Timeout, "the stale signal must not satisfy the new execution");
    assert!(app.metrics().signals_late + app.metrics().signals_stale >= 1);
    running.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn signals_held_for_a_test_are_released_when_it_ends() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let case = two_steps(&app, CaseSettings::new("c"), Duration::from_secs(5));
    let running = app.start().await.unwrap();
    for i in 0..50 {
        let test = case.trigger_with_id(&format!("t{i}"), &sell()).await.unwrap();
        livecheck::scope(Some(test), case.first.send(&1)).await.unwrap();
    }
    until(Duration::from_secs(10), || app.metrics().tests_finished == 50).await;
    let m = app.metrics();
    assert_eq!((m.tests_executing, m.signals_held), (0, 0), "{m:?}");
    // A signal for a test that never comes is held only until the case's test_expires, then dropped.
    case.second.send_with_key("never-executed", &()).await.unwrap();
    until(Duration::from_secs(1), || app.metrics().signals_held == 1).await;
    tokio::time::sleep(Duration::from_secs(3 * 3600 + 20)).await;
    let m = app.metrics();
    assert_eq!((m.signals_held, m.signals_expired), (0, 1), "{m:?}");
    running.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn one_signal_among_ten_thousand_waiting_tests_wakes_exactly_one() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).max_concurrent_tests(20_000).build();
    let case = two_steps(&app, CaseSettings::new("c"), Duration::from_secs(3600));
    let running = app.start().await.unwrap();
    let mut tests = Vec::new();
    for i in 0..10_000 {
        tests.push(case.trigger_with_id(&format!("t{i}"), &sell()).await.unwrap());
    }
    until(Duration::from_secs(60), || app.metrics().tests_executing == 10_000).await;
    livecheck::scope(Some(tests[1234].clone()), case.first.send(&77)).await.unwrap();
    until(Duration::from_secs(1), || case.woken.load(Ordering::SeqCst) >= 1).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(case.woken.load(Ordering::SeqCst), 1);
    assert_eq!(app.metrics().signal_wakeups, 1, "one wake-up, not one per waiting test");
    assert_eq!(case.seen.load(Ordering::SeqCst), 77);
    assert_eq!(app.metrics().tests_executing, 10_000, "the others still wait");
    assert!(reports(&transport).is_empty());
    running.shutdown().await.unwrap();
}

/// A flood of big signals for tests that never start (forged headers, say) takes no more memory than
/// `early_signal_bytes`: the oldest are dropped and counted. A message over `max_message_bytes` is not even decoded.
#[tokio::test(start_paused = true)]
async fn signals_held_for_tests_not_started_are_bounded_in_bytes_and_huge_messages_are_dropped() {
    let transport = MemoryTransport::with_partitions(1);
    let app = builder(&transport).early_signal_bytes(1 << 20).max_message_bytes(2 << 20).build();
    let case = two_steps(&app, CaseSettings::new("c"), Duration::from_secs(30));
    let mut reader = ReportReader::new(&transport).await;
    let running = app.start().await.unwrap();
    let big = "x".repeat(100_000);
    for i in 0..100 {
        let value = format!(r#"{{"signal_name":"first","case_name":"c","key":"forged-{i}","value":"{big}"}}"#);
        support::publish_raw(&transport, "livecheck-bus", &format!("forged-{i}"), value.as_bytes()).await;
    }
    let huge = format!(r#"{{"signal_name":"first","case_name":"c","key":"h","value":"{}"}}"#, "y".repeat(3 << 20));
    support::publish_raw(&transport, "livecheck-bus", "h", huge.as_bytes()).await;
    until(Duration::from_secs(5), || app.metrics().signals_received == 101).await;
    let m = app.metrics();
    assert!(m.signals_held_bytes <= 1 << 20, "{} bytes held", m.signals_held_bytes);
    assert!(m.signals_held >= 5, "the newest are kept: {}", m.signals_held);
    assert_eq!(m.signals_evicted, 100 - m.signals_held, "every dropped one is counted");
    assert_eq!(m.messages_too_large, 1);
    // The instance goes on.
    let test = case.trigger_with_id("t", &sell()).await.unwrap();
    livecheck::scope(Some(test), async {
        case.first.send(&1).await.unwrap();
        case.second.notify().await.unwrap();
    })
    .await;
    assert_eq!(reader.next(Duration::from_secs(1)).await.state, State::Pass);
    running.shutdown().await.unwrap();
}
