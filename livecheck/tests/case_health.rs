//! Case health: consecutive failures, stalls, recovery, medians, fake traffic (SPEC appendix 22–27; SPEC §5
//! items 5 and 6).

mod support;

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU32, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use livecheck::{
    health::{SuiteFailure, SuiteFailureKind},
    observe::{ExecutionFinished, HealthEvent, Observer},
    transport::MemoryTransport,
    wire::TestReport,
    Case, CaseHandle, CaseResult, CaseSettings, Clock, Error, LiveCheck, State, TestRun,
};
use serde::{Deserialize, Serialize};
use support::{builder, reports, until};
use tokio::time::Instant;

#[derive(Serialize, Deserialize)]
struct Args {
    pass: bool,
    runtime_ms: u64,
}

#[derive(Default)]
struct Hooks {
    fake_requests: AtomicU32,
    service_down: AtomicBool,
    suite_failures: Mutex<Vec<SuiteFailure>>,
    recoveries: AtomicU32,
}

struct Verdicts {
    hooks: Arc<Hooks>,
}

impl Case for Verdicts {
    type Args = Args;
    async fn run(&self, _test: &TestRun, args: Args) -> CaseResult {
        tokio::time::sleep(Duration::from_millis(args.runtime_ms)).await;
        livecheck::ensure!(args.pass, "told to fail");
        Ok(())
    }

    async fn make_fake_request(&self) -> CaseResult {
        self.hooks.fake_requests.fetch_add(1, Ordering::SeqCst);
        if self.hooks.service_down.load(Ordering::SeqCst) {
            return Err(Error::service_down(None, "connection refused after 10 retries").into());
        }
        Ok(())
    }

    async fn on_suite_fail(&self, failure: &SuiteFailure) {
        self.hooks.suite_failures.lock().unwrap().push(failure.clone());
    }

    async fn on_suite_pass(&self) {
        self.hooks.recoveries.fetch_add(1, Ordering::SeqCst);
    }
}

fn verdicts(app: &LiveCheck, settings: CaseSettings) -> CaseHandle<Verdicts> {
    app.register(settings, |_| Verdicts { hooks: Arc::default() }).unwrap()
}

/// Triggers one test and waits until it finished.
async fn run_test(app: &LiveCheck, case: &CaseHandle<Verdicts>, pass: bool) {
    let before = app.metrics().tests_finished;
    case.trigger(&Args { pass, runtime_ms: 0 }).await.unwrap();
    until(Duration::from_secs(5), || app.metrics().tests_finished > before).await;
}

fn suite_reports(transport: &MemoryTransport) -> Vec<TestReport> {
    reports(transport).into_iter().filter(|r| r.test.is_none()).collect()
}

#[tokio::test(start_paused = true)]
async fn thirty_failing_tests_in_a_row_fail_the_suite_with_a_suite_report() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let case = verdicts(&app, CaseSettings::new("c"));
    let running = app.start().await.unwrap();
    for _ in 0..29 {
        run_test(&app, &case, false).await;
    }
    assert!(suite_reports(&transport).is_empty());
    run_test(&app, &case, false).await;
    let suite = suite_reports(&transport);
    assert_eq!(suite.len(), 1);
    assert_eq!(suite[0].state, State::Fail);
    assert!(suite[0].error.as_deref().unwrap().contains("30 consecutive failures"));
    assert_eq!(case.hooks.suite_failures.lock().unwrap().len(), 1, "on_suite_fail called");
    running.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn twenty_nine_failures_then_a_pass_is_no_suite_failure() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let case = verdicts(&app, CaseSettings::new("c"));
    let running = app.start().await.unwrap();
    for _ in 0..29 {
        run_test(&app, &case, false).await;
    }
    tokio::time::sleep(Duration::from_secs(61)).await;
    run_test(&app, &case, true).await;
    assert_eq!(case.health().consecutive_failures, 0);
    for _ in 0..29 {
        run_test(&app, &case, false).await;
    }
    assert!(suite_reports(&transport).is_empty());
    assert_eq!(case.health().total_failures, 58);
    running.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_stall_is_reported_once_per_period_not_once_per_tick() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).stats_interval(Duration::from_secs(1)).build();
    let case = verdicts(&app, CaseSettings::new("c").warn_stalled_after(Duration::from_secs(300)));
    let running = app.start().await.unwrap();
    tokio::time::sleep(Duration::from_secs(299)).await;
    assert!(suite_reports(&transport).is_empty(), "not stalled before the period");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let suite = suite_reports(&transport);
    assert_eq!(suite.len(), 1);
    assert_eq!(suite[0].state, State::Stall);
    assert_eq!(case.health().status, State::Stall);
    tokio::time::sleep(Duration::from_secs(290)).await;
    assert_eq!(suite_reports(&transport).len(), 1, "no alert per tick");
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(suite_reports(&transport).len(), 2, "one more alert after another quiet period");
    assert_eq!(case.hooks.suite_failures.lock().unwrap().len(), 2);
    running.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_test_received_in_time_prevents_the_stall() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let case = verdicts(&app, CaseSettings::new("c").warn_stalled_after(Duration::from_secs(60)));
    let running = app.start().await.unwrap();
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_secs(50)).await;
        run_test(&app, &case, true).await;
    }
    assert!(suite_reports(&transport).is_empty());
    running.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn recovery_needs_a_passing_test_issued_after_the_failure_and_after_the_delay() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let settings = CaseSettings::new("c").max_consecutive_failures(2).frequency(Duration::from_secs(1));
    let case = verdicts(&app, settings);
    let running = app.start().await.unwrap();
    run_test(&app, &case, false).await;
    run_test(&app, &case, false).await;
    assert_eq!(case.health().status, State::Fail);
    // Quiet time full of successful fake requests does not recover the case.
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert!(case.hooks.fake_requests.load(Ordering::SeqCst) >= 100);
    assert_eq!(case.health().status, State::Fail);
    assert_eq!(case.health().consecutive_failures, 2);

    // A passing test issued before the failure does not recover it either.
    let tests_before = app.metrics().tests_finished;
    let old = chrono::Utc::now() - chrono::Duration::hours(1);
    let stale_pass = livecheck::wire::TestExecution::new(
        "old",
        "c",
        old,
        old + chrono::Duration::hours(3),
        &Args { pass: true, runtime_ms: 0 },
    )
    .unwrap();
    support::publish_raw(&transport, "livecheck", "old", &serde_json::to_vec(&stale_pass).unwrap()).await;
    until(Duration::from_secs(5), || app.metrics().tests_finished > tests_before).await;
    assert_eq!(case.health().status, State::Fail);

    // A passing test issued now, more than state_transition_delay after the failure: recovered.
    run_test(&app, &case, true).await;
    let health = case.health();
    assert_eq!((health.status, health.consecutive_failures), (State::Pass, 0));
    assert_eq!(case.hooks.recoveries.load(Ordering::SeqCst), 1);
    running.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_passing_test_within_the_delay_does_not_recover() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let case = verdicts(&app, CaseSettings::new("c").max_consecutive_failures(2));
    let running = app.start().await.unwrap();
    run_test(&app, &case, false).await;
    run_test(&app, &case, false).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    run_test(&app, &case, true).await;
    assert_eq!(case.health().status, State::Fail);
    assert_eq!(case.hooks.recoveries.load(Ordering::SeqCst), 0);
    running.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_second_suite_failure_within_the_delay_updates_the_status_but_posts_no_report() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let case = verdicts(&app, CaseSettings::new("c").max_consecutive_failures(2));
    let running = app.start().await.unwrap();
    run_test(&app, &case, false).await;
    run_test(&app, &case, false).await;
    assert_eq!(suite_reports(&transport).len(), 1);
    tokio::time::sleep(Duration::from_secs(30)).await;
    run_test(&app, &case, false).await;
    assert_eq!(suite_reports(&transport).len(), 1, "within state_transition_delay: no new suite report");
    assert_eq!(app.metrics().suite_failures, 2, "but it was a suite failure");
    tokio::time::sleep(Duration::from_secs(31)).await;
    run_test(&app, &case, false).await;
    assert_eq!(suite_reports(&transport).len(), 2, "after the delay the repeated failure is reported again");
    running.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn failing_tests_reach_the_limit_while_fake_requests_succeed() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let case = verdicts(&app, CaseSettings::new("c").frequency(Duration::from_millis(500)));
    let running = app.start().await.unwrap();
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        run_test(&app, &case, false).await;
    }
    assert!(case.hooks.fake_requests.load(Ordering::SeqCst) >= 100);
    let suite = suite_reports(&transport);
    assert_eq!(suite.len(), 1, "max_consecutive_failures reached despite the fake requests");
    running.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn medians_are_over_the_last_max_history_samples() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let case = verdicts(&app, CaseSettings::new("c").max_history(3));
    let running = app.start().await.unwrap();
    for runtime_ms in [10_000, 100, 200, 300, 400] {
        let before = app.metrics().tests_finished;
        case.trigger(&Args { pass: true, runtime_ms }).await.unwrap();
        until(Duration::from_secs(20), || app.metrics().tests_finished > before).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let median = case.health().runtime_median_seconds.unwrap();
    assert!((median - 0.3).abs() < 0.01, "median of 0.2, 0.3, 0.4 is 0.3, not {median}");
    let between = case.health().interval_median_seconds.unwrap();
    assert!((1.2..1.6).contains(&between), "time between the last tests ~1.3-1.4 s, not {between}");
    running.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn without_frequency_no_fake_requests_are_made() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let case = verdicts(&app, CaseSettings::new("c"));
    let running = app.start().await.unwrap();
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(case.hooks.fake_requests.load(Ordering::SeqCst), 0);
    running.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn fake_requests_come_every_period_from_the_leader_only_and_stop_at_shutdown() {
    let transport = MemoryTransport::new();
    let settings = CaseSettings::new("c").frequency(Duration::from_secs(1));
    let first = builder(&transport).build();
    let second = builder(&transport).build();
    let a = verdicts(&first, settings.clone());
    let b = verdicts(&second, settings);
    let running_a = first.start().await.unwrap();
    let running_b = second.start().await.unwrap();
    tokio::time::sleep(Duration::from_millis(10_500)).await;
    let (calls_a, calls_b) =
        (a.hooks.fake_requests.load(Ordering::SeqCst), b.hooks.fake_requests.load(Ordering::SeqCst));
    assert_eq!((calls_a, calls_b), (10, 0), "only the leader calls, once a period");
    // The leader goes away: the other instance takes over.
    running_a.shutdown().await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(a.hooks.fake_requests.load(Ordering::SeqCst), 10, "never after shutdown");
    let taken_over = b.hooks.fake_requests.load(Ordering::SeqCst);
    assert!((4..=5).contains(&taken_over), "{taken_over}");
    running_b.shutdown().await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(b.hooks.fake_requests.load(Ordering::SeqCst), taken_over);
}

#[tokio::test(start_paused = true)]
async fn a_service_down_fake_request_is_a_suite_failure_with_the_reason() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let case = verdicts(&app, CaseSettings::new("c").frequency(Duration::from_secs(1)));
    case.hooks.service_down.store(true, Ordering::SeqCst);
    let running = app.start().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let suite = suite_reports(&transport);
    assert_eq!(suite.len(), 1);
    assert_eq!(suite[0].state, State::Fail);
    assert!(suite[0].error.as_deref().unwrap().contains("service down: connection refused"), "{suite:?}");
    assert_eq!(case.health().status, State::Fail);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(suite_reports(&transport).len(), 1, "rate limited by state_transition_delay");
    running.shutdown().await.unwrap();
}

/// An instance whose clock is ahead of the services' by more than `test_expires` (issue 15, item 8): every
/// execution arrives expired and is skipped — in numbers, that is a suite failure of its own kind, with the skew
/// measured in the status, instead of a case that stays INIT and not failing. One arriving in time ends it.
#[tokio::test(start_paused = true)]
async fn executions_arriving_expired_in_numbers_are_a_clock_skew_suite_failure() {
    let transport = MemoryTransport::new();
    let (wall, instant) = (chrono::Utc::now() + chrono::Duration::hours(4), Instant::now());
    let ahead = || Clock::FollowTokio { wall, instant };
    let instance = builder(&transport).clock(ahead()).build();
    let settings = CaseSettings::new("c").test_expires(Duration::from_secs(3 * 3600));
    let case = verdicts(&instance, settings.clone());
    let service = builder(&transport).build();
    let sender = verdicts(&service, settings);
    let running = instance.start().await.unwrap();
    for i in 1..=9 {
        sender.trigger(&Args { pass: true, runtime_ms: 0 }).await.unwrap();
        until(Duration::from_secs(5), || instance.metrics().tests_finished == i).await;
    }
    let health = case.health();
    assert_eq!((health.count(State::Skip), health.status), (9, State::Init));
    assert!(health.failing, "skewed arrivals make the case failing before the suite fails");
    assert!(suite_reports(&transport).is_empty(), "nine are not yet in numbers");
    sender.trigger(&Args { pass: true, runtime_ms: 0 }).await.unwrap();
    until(Duration::from_secs(5), || instance.metrics().tests_finished == 10).await;

    let suite = suite_reports(&transport);
    assert_eq!(suite.len(), 1);
    assert!(suite[0].error.as_deref().unwrap().contains("10 executions in a row arrived expired"), "{suite:?}");
    let health = case.health();
    assert_eq!(health.last_suite_failure.as_ref().map(|f| f.kind), Some(SuiteFailureKind::ClockSkew));
    let skew = health.clock_skew.expect("the skew in the status");
    assert!((4.0 * 3600.0 - skew.skew_seconds).abs() < 60.0, "measured {} s", skew.skew_seconds);
    assert_eq!(skew.executions, 10);
    assert_eq!((health.status, health.failing), (State::Fail, true));
    let json = serde_json::to_value(case.health()).unwrap();
    assert_eq!(json["clock_skew"]["executions"], 10);
    assert_eq!(json["last_suite_failure"]["kind"], "clock_skew");

    // A service whose clock agrees with the instance's: in time again.
    let agreeing = builder(&transport).clock(ahead()).build();
    verdicts(&agreeing, CaseSettings::new("c")).trigger(&Args { pass: true, runtime_ms: 0 }).await.unwrap();
    until(Duration::from_secs(5), || instance.metrics().tests_finished == 11).await;
    assert!(case.health().clock_skew.is_none());
    running.shutdown().await.unwrap();
}

/// What an observer of the instance saw.
#[derive(Default)]
struct Seen {
    executions: Mutex<Vec<(String, State)>>,
    health: Mutex<Vec<String>>,
}

impl Observer for Seen {
    fn execution_finished(&self, execution: &ExecutionFinished<'_>) {
        self.executions.lock().unwrap().push((execution.case.to_owned(), execution.report.state));
    }

    fn health_changed(&self, change: &HealthEvent<'_>) {
        let seen = match change {
            HealthEvent::SuiteFailed { failure, reported } => format!("{} reported={reported}", failure.kind),
            HealthEvent::Recovered { from, .. } => format!("recovered from {from}"),
            _ => "other".to_owned(),
        };
        self.health.lock().unwrap().push(seen);
    }
}

/// A user's observer is told of every finished execution and every health change, as the built-in ones are
/// (issue 16: the observer seam), without touching the instance.
#[tokio::test(start_paused = true)]
async fn an_observer_is_told_of_every_finished_execution_and_health_change() {
    let transport = MemoryTransport::new();
    let seen = Arc::new(Seen::default());
    let app = builder(&transport).observer(seen.clone()).build();
    let settings = CaseSettings::new("c").max_consecutive_failures(2).state_transition_delay(Duration::from_secs(1));
    let case = verdicts(&app, settings);
    let running = app.start().await.unwrap();
    for pass in [false, false, false] {
        run_test(&app, &case, pass).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    run_test(&app, &case, true).await;
    running.shutdown().await.unwrap();

    let executions = seen.executions.lock().unwrap().clone();
    let states: Vec<State> = executions.iter().map(|(_, state)| *state).collect();
    assert_eq!(states, [State::Fail, State::Fail, State::Fail, State::Pass]);
    assert!(executions.iter().all(|(case, _)| case == "c"));
    assert_eq!(
        *seen.health.lock().unwrap(),
        [
            "consecutive_failures reported=true",
            "consecutive_failures reported=false",
            "recovered from consecutive_failures"
        ]
    );
}
