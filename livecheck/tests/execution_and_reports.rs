//! Executing tests and reporting them (SPEC appendix 17–21; SPEC §5 item 8; shutdown).

mod support;

use std::{
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc,
    },
    time::Duration,
};

use livecheck::{
    transport::MemoryTransport, wire::TestExecution, Case, CaseResult, CaseSettings, LiveCheck, Signal, State, TestRun,
};
use serde::{Deserialize, Serialize};
use support::{
    builder,
    faulty::{Fault, Faulty},
    publish_raw, reports, until, ReportReader,
};

#[derive(Serialize, Deserialize, Clone, Debug)]
struct Args {
    /// What the body does: "pass", "assert", "ensure", "error", "wait".
    behaviour: String,
}

fn args(behaviour: &str) -> Args {
    Args { behaviour: behaviour.into() }
}

struct Scripted {
    ready: Signal<u32>,
    started: Arc<AtomicU32>,
}

impl Case for Scripted {
    type Args = Args;
    async fn run(&self, test: &TestRun, args: Args) -> CaseResult {
        self.started.fetch_add(1, Ordering::SeqCst);
        test.log("starting");
        match args.behaviour.as_str() {
            "pass" => Ok(()),
            "assert" => {
                let value = self.ready.wait(Duration::from_secs(10)).await?;
                assert_eq!(value, 1, "ready carries one");
                Ok(())
            }
            "ensure" => {
                livecheck::ensure!(test.id() == "expected", "id was {}", test.id());
                Ok(())
            }
            "error" => Err(anyhow::anyhow!("database unreachable")),
            "wait" => {
                self.ready.wait(Duration::from_secs(10)).await?;
                Ok(())
            }
            other => panic!("unknown behaviour {other}"),
        }
    }
}

fn scripted(app: &LiveCheck, settings: CaseSettings) -> livecheck::CaseHandle<Scripted> {
    app.register(settings, |s| Scripted { ready: s.declare("ready"), started: Arc::default() }).unwrap()
}

#[tokio::test(start_paused = true)]
async fn an_inactive_case_skips_its_tests_with_a_report_giving_the_reason() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let case = scripted(&app, CaseSettings::new("c").active(false));
    let mut reader = ReportReader::new(&transport).await;
    let running = app.start().await.unwrap();
    case.trigger_with_id("t", &args("pass")).await.unwrap();
    let report = reader.next(Duration::from_secs(1)).await;
    assert_eq!(report.state, State::Skip);
    assert!(report.error.unwrap().contains("inactive"));
    assert_eq!(report.test.unwrap().id, "t");
    assert_eq!(case.started.load(Ordering::SeqCst), 0, "the body did not run");
    running.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_execution_expired_by_the_time_it_runs_is_skipped_with_a_report() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let case = scripted(&app, CaseSettings::new("c").test_expires(Duration::from_secs(60)));
    let mut reader = ReportReader::new(&transport).await;
    // Not expired when published; the instance only starts after it expired.
    case.trigger_with_id("late", &args("pass")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(61)).await;
    let running = app.start().await.unwrap();
    let report = reader.next(Duration::from_secs(1)).await;
    assert_eq!(report.state, State::Skip);
    assert!(report.error.as_deref().unwrap().contains("expired"), "{report:?}");
    assert_eq!(case.started.load(Ordering::SeqCst), 0);
    assert_eq!(case.health().count(State::Skip), 1);
    running.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn outcomes_pass_fail_error_timeout_and_the_instance_keeps_running() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let case = scripted(&app, CaseSettings::new("c"));
    let mut reader = ReportReader::new(&transport).await;
    let running = app.start().await.unwrap();
    let failing = case.trigger_with_id("assert", &args("assert")).await.unwrap();
    livecheck::scope(Some(failing), case.ready.send(&2)).await.unwrap();
    let mut by_id = std::collections::HashMap::new();
    by_id.insert("assert".to_owned(), reader.next(Duration::from_secs(1)).await);
    for behaviour in ["pass", "ensure", "error", "wait"] {
        case.trigger_with_id(behaviour, &args(behaviour)).await.unwrap();
        let report = reader.next(Duration::from_secs(11)).await;
        by_id.insert(report.test.as_ref().unwrap().id.clone(), report);
    }
    let state = |id: &str| by_id[id].state;
    assert_eq!(state("pass"), State::Pass);
    assert_eq!(state("assert"), State::Fail);
    assert_eq!(state("ensure"), State::Fail);
    assert_eq!(state("error"), State::Error);
    assert_eq!(state("wait"), State::Timeout);

    let assert = &by_id["assert"];
    let message = assert.error.as_deref().unwrap();
    assert!(message.contains("ready carries one") && message.contains("left: 2"), "{message}");
    let trace = assert.traceback.as_deref().unwrap();
    assert!(trace.contains("tests/execution_and_reports.rs:"), "location in the trace: {trace}");
    let ensure = &by_id["ensure"];
    assert!(ensure.error.as_deref().unwrap().contains("id was ensure"));
    assert!(ensure.traceback.as_deref().unwrap().contains("execution_and_reports.rs:"));
    assert!(by_id["error"].error.as_deref().unwrap().contains("database unreachable"));
    assert!(by_id["wait"].error.as_deref().unwrap().contains("`ready` did not arrive within 10s"));

    // Still running after all that.
    case.trigger_with_id("after", &args("pass")).await.unwrap();
    assert_eq!(reader.next(Duration::from_secs(1)).await.state, State::Pass);
    running.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_unknown_case_or_malformed_execution_is_dropped_counted_and_the_next_is_run() {
    let transport = MemoryTransport::with_partitions(1);
    let app = builder(&transport).build();
    let case = scripted(&app, CaseSettings::new("c"));
    let mut reader = ReportReader::new(&transport).await;
    let running = app.start().await.unwrap();
    let now = chrono::Utc::now();
    let unknown = TestExecution::new("u", "no_such_case", now, now + chrono::Duration::hours(1), &()).unwrap();
    publish_raw(&transport, "livecheck", "u", &serde_json::to_vec(&unknown).unwrap()).await;
    publish_raw(&transport, "livecheck", "m", b"{\"id\": 12").await;
    case.trigger_with_id("ok", &args("pass")).await.unwrap();
    let report = reader.next(Duration::from_secs(1)).await;
    assert_eq!(report.test.unwrap().id, "ok");
    let m = app.metrics();
    assert_eq!((m.tests_unknown_case, m.tests_malformed, m.tests_received), (1, 1, 3));
    running.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn arguments_that_do_not_decode_are_an_error() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let case = scripted(&app, CaseSettings::new("c"));
    let mut reader = ReportReader::new(&transport).await;
    let running = app.start().await.unwrap();
    let now = chrono::Utc::now();
    let bad = TestExecution::new("b", "c", now, now + chrono::Duration::hours(1), &[1, 2]).unwrap();
    publish_raw(&transport, "livecheck", "b", &serde_json::to_vec(&bad).unwrap()).await;
    let report = reader.next(Duration::from_secs(1)).await;
    assert_eq!(report.state, State::Error);
    assert!(report.error.unwrap().contains("arguments"));
    assert_eq!(case.started.load(Ordering::SeqCst), 0);
    running.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_report_carries_case_state_execution_runtime_latency_and_null_error_on_pass() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let case = scripted(&app, CaseSettings::new("c"));
    let mut reader = ReportReader::new(&transport).await;
    let running = app.start().await.unwrap();
    let test = case.trigger_with_id("r", &args("wait")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    livecheck::scope(Some(test), case.ready.send(&1)).await.unwrap();
    let report = reader.next(Duration::from_secs(1)).await;
    assert_eq!(report.case_name, "c");
    assert_eq!(report.state, State::Pass);
    assert_eq!(report.test.as_ref().unwrap().test_kwargs["behaviour"], "wait");
    let waited = report.signal_latency.get("ready").unwrap();
    assert!((1.4..1.6).contains(&waited), "latency {waited}");
    assert!((1.4..1.6).contains(&report.runtime.unwrap()));
    assert_eq!((report.error, report.traceback), (None, None));
    running.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_failed_tests_report_and_log_carry_its_steps() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let case = scripted(&app, CaseSettings::new("c"));
    let mut reader = ReportReader::new(&transport).await;
    let running = app.start().await.unwrap();
    case.trigger_with_id("w", &args("wait")).await.unwrap();
    let report = reader.next(Duration::from_secs(11)).await;
    let trace = report.traceback.unwrap();
    assert!(trace.contains("starting"), "{trace}");
    assert!(trace.contains("waiting for `ready` (timeout 10s)"), "{trace}");
    assert!(trace.contains("`ready` did not arrive within 10s"), "{trace}");
    running.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn with_send_reports_off_nothing_is_published_but_counters_and_status_change() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).send_reports(false).build();
    let case = scripted(&app, CaseSettings::new("c").max_consecutive_failures(2));
    let running = app.start().await.unwrap();
    for (i, behaviour) in ["pass", "error", "error", "pass"].iter().enumerate() {
        case.trigger_with_id(&format!("t{i}"), &args(behaviour)).await.unwrap();
    }
    until(Duration::from_secs(5), || app.metrics().tests_finished == 4).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(reports(&transport).is_empty(), "no test report and no suite report");
    let health = case.health();
    assert_eq!((health.count(State::Pass), health.count(State::Error)), (2, 2));
    assert_eq!(health.status, State::Fail, "the suite failed after 2 errors in a row");
    assert_eq!(app.metrics().reports_suppressed, 5, "4 tests and 1 suite report");
    assert_eq!(app.metrics().reports_published, 0);
    running.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_test_interrupted_by_shutdown_gets_no_report_and_runs_again_after_a_restart() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let case = scripted(&app, CaseSettings::new("c"));
    let running = app.start().await.unwrap();
    let test = case.trigger_with_id("interrupted", &args("wait")).await.unwrap();
    until(Duration::from_secs(1), || case.started.load(Ordering::SeqCst) == 1).await;
    running.shutdown().await.unwrap();
    assert!(reports(&transport).is_empty());
    assert_eq!(app.metrics().tests_finished, 0);

    // A new instance in the same group picks the execution up again.
    let restarted = builder(&transport).build();
    let again = scripted(&restarted, CaseSettings::new("c"));
    let mut reader = ReportReader::new(&transport).await;
    let running = restarted.start().await.unwrap();
    until(Duration::from_secs(1), || again.started.load(Ordering::SeqCst) == 1).await;
    livecheck::scope(Some(test), again.ready.send(&1)).await.unwrap();
    let report = reader.next(Duration::from_secs(1)).await;
    assert_eq!((report.test.unwrap().id.as_str(), report.state), ("interrupted", State::Pass));
    running.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_second_execution_of_an_id_that_is_running_is_skipped() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let case = scripted(&app, CaseSettings::new("c"));
    let mut reader = ReportReader::new(&transport).await;
    let running = app.start().await.unwrap();
    case.trigger_with_id("dup", &args("wait")).await.unwrap();
    until(Duration::from_secs(1), || case.started.load(Ordering::SeqCst) == 1).await;
    // Issued later: another execution reusing the id (one issued at the same time would be a copy of the first).
    tokio::time::sleep(Duration::from_millis(1)).await;
    case.trigger_with_id("dup", &args("pass")).await.unwrap();
    let report = reader.next(Duration::from_secs(1)).await;
    assert_eq!(report.state, State::Skip);
    assert!(report.error.unwrap().contains("already running"));
    running.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn apps_with_their_own_stream_names_share_a_broker_without_seeing_each_others_tests() {
    let transport = MemoryTransport::new();
    let shop = builder(&transport).streams(livecheck::instance::StreamNames::prefixed("shop")).build();
    let bank = builder(&transport).streams(livecheck::instance::StreamNames::prefixed("bank")).build();
    let shop_case = scripted(&shop, CaseSettings::new("c"));
    let bank_case = scripted(&bank, CaseSettings::new("c"));
    let running = (shop.start().await.unwrap(), bank.start().await.unwrap());
    shop_case.trigger_with_id("s", &args("pass")).await.unwrap();
    until(Duration::from_secs(1), || shop.metrics().tests_finished == 1).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(bank.metrics().tests_received, 0);
    assert_eq!(bank_case.started.load(Ordering::SeqCst), 0);
    assert_eq!(transport.messages("shop-livecheck").len(), 1);
    assert_eq!(transport.messages("shop-livecheck-report").len(), 1);
    assert!(transport.messages("livecheck").is_empty());
    running.0.shutdown().await.unwrap();
    running.1.shutdown().await.unwrap();
}

/// A transport whose report publishes fail while `failing` is above zero (counting down), as on a full disk:
/// transient (`retriable`) or lasting.
fn reports_fail(inner: &MemoryTransport, failing: Arc<AtomicU32>, retriable: bool) -> Faulty {
    Faulty::new(inner.clone()).on_publish(move |stream| {
        let fail = stream == "livecheck-report"
            && failing.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        fail.then_some(Fault::Fail { retriable, context: "database or disk is full" })
    })
}

#[tokio::test(start_paused = true)]
async fn a_report_that_fails_on_a_transient_error_is_retried_until_it_is_out() {
    let inner = MemoryTransport::new();
    let transport = reports_fail(&inner, Arc::new(AtomicU32::new(3)), true);
    let app = LiveCheck::builder().transport(transport).clock(livecheck::Clock::follow_tokio()).build();
    let case = scripted(&app, CaseSettings::new("c"));
    let running = app.start().await.unwrap();
    case.trigger_with_id("t", &args("pass")).await.unwrap();
    until(Duration::from_secs(30), || app.metrics().reports_published == 1).await;
    let m = app.metrics();
    assert_eq!((m.reports_retried, m.reports_failed), (3, 0));
    assert_eq!(reports(&inner).len(), 1);
    running.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_execution_whose_report_could_not_be_published_is_not_committed_and_runs_again() {
    let inner = MemoryTransport::new();
    let failing = Arc::new(AtomicU32::new(u32::MAX));
    let transport = reports_fail(&inner, failing.clone(), false);
    let app = LiveCheck::builder().transport(transport.clone()).clock(livecheck::Clock::follow_tokio()).build();
    let case = scripted(&app, CaseSettings::new("c"));
    let running = app.start().await.unwrap();
    case.trigger_with_id("t", &args("pass")).await.unwrap();
    until(Duration::from_secs(5), || app.metrics().reports_failed == 1).await;
    running.shutdown().await.unwrap();
    assert!(reports(&inner).is_empty());

    // The disk has room again; the restarted instance runs the execution again and its report is out.
    failing.store(0, Ordering::SeqCst);
    let app = LiveCheck::builder().transport(transport).clock(livecheck::Clock::follow_tokio()).build();
    let case = scripted(&app, CaseSettings::new("c"));
    let running = app.start().await.unwrap();
    until(Duration::from_secs(30), || app.metrics().reports_published == 1).await;
    assert_eq!(case.started.load(Ordering::SeqCst), 1, "ran again");
    let reports = reports(&inner);
    assert_eq!((reports.len(), reports[0].state), (1, State::Pass));
    running.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_service_triggering_a_test_or_sending_a_signal_is_not_held_up_while_the_broker_is_away() {
    // The broker is away: bus and pending-test publishes never complete.
    let transport = Faulty::new(MemoryTransport::new())
        .on_publish(|stream| (stream == "livecheck-bus" || stream == "livecheck").then_some(Fault::Hang));
    let app = LiveCheck::builder()
        .transport(transport)
        .clock(livecheck::Clock::follow_tokio())
        .signal_send_timeout(Duration::from_secs(2))
        .build();
    let case = scripted(&app, CaseSettings::new("c"));
    let started = tokio::time::Instant::now();
    let test = case.trigger_with_id("t", &args("pass")).await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(2), "the request went on after the timeout");
    assert_eq!(test.id(), "t", "the test goes on with the request");
    assert_eq!(app.metrics().tests_unconfirmed, 1);
    let started = tokio::time::Instant::now();
    livecheck::scope(Some(test.clone()), case.ready.send(&1)).await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(2), "the request went on after the timeout");
    assert_eq!(app.metrics().signals_unconfirmed, 1);
    // The publishes keep trying in the background, 10 000 at most: past that, a message is dropped at once.
    let mut sends = 0;
    while app.metrics().unconfirmed_dropped == 0 {
        assert!(sends < 10_000, "nothing was dropped after {sends} more sends");
        livecheck::scope(Some(test.clone()), case.ready.send(&1)).await.unwrap();
        sends += 1;
    }
    assert_eq!(sends, 9_999, "10 000 wait: the trigger, the first signal and 9 998 more");
    let started = tokio::time::Instant::now();
    livecheck::scope(Some(test), case.ready.send(&1)).await.unwrap();
    assert_eq!(started.elapsed(), Duration::ZERO, "a dropped message does not wait");
    assert_eq!(app.metrics().unconfirmed_dropped, 2);
}

/// Executions in flight are bounded by bytes too (issue 15, item 6): with big arguments, fewer run at once than
/// `max_concurrent_tests` allows, the rest wait on the stream (not in memory), and every one still runs.
#[tokio::test(start_paused = true)]
async fn big_executions_in_flight_are_bounded_by_bytes_and_all_still_run() {
    #[derive(Serialize)]
    struct Big {
        behaviour: String,
        padding: String,
    }
    let transport = MemoryTransport::with_partitions(1);
    let app = builder(&transport).max_in_flight_bytes(1 << 20).build();
    let case = scripted(&app, CaseSettings::new("c"));
    let service = builder(&transport).build();
    let running = app.start().await.unwrap();
    for i in 0..20 {
        let big = Big { behaviour: "wait".into(), padding: "x".repeat(200_000) };
        service.trigger_by_name("c", Some(&format!("big-{i}")), &big, Duration::from_secs(3600)).await.unwrap();
    }
    until(Duration::from_secs(1), || case.started.load(Ordering::SeqCst) >= 5).await;
    let mut most_at_once = 0;
    for _ in 0..10_000 {
        most_at_once = most_at_once.max(app.metrics().tests_executing);
        if app.metrics().tests_finished == 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(app.metrics().tests_finished, 20, "every execution ran");
    // 1 MiB holds five executions of 200 kB, not six; the count limit (100) would have let all 20 run at once.
    assert_eq!(most_at_once, 5);
    assert_eq!(reports(&transport).iter().filter(|r| r.state == State::Timeout).count(), 20);
    running.shutdown().await.unwrap();
}

/// A test bigger than the whole byte bound still runs, alone.
#[tokio::test(start_paused = true)]
async fn an_execution_bigger_than_the_byte_bound_still_runs() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).max_in_flight_bytes(1000).build();
    let case = scripted(&app, CaseSettings::new("c"));
    let running = app.start().await.unwrap();
    let big = serde_json::json!({"behaviour": "pass", "padding": "x".repeat(5000)});
    app.trigger_by_name("c", Some("huge"), &big, Duration::from_secs(3600)).await.unwrap();
    let _ = &case;
    until(Duration::from_secs(5), || app.metrics().tests_finished == 1).await;
    assert_eq!(reports(&transport)[0].state, State::Pass);
    running.shutdown().await.unwrap();
}
