//! Tests started by hand (`livecheck trigger`, `LiveCheck::trigger_by_name`) are marked as such, and stay out of
//! their case's health — and so out of suite failures and alerts — unless the instance counts them.

mod support;

use std::time::Duration;

use livecheck::{
    observe::{ExecutionFinished, HealthEvent, Observer},
    transport::MemoryTransport,
    Case, CaseResult, CaseSettings, LiveCheck, State, TestRun,
};
use serde::{Deserialize, Serialize};
use support::{builder, executions, reports, until};

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

/// Counts the health changes an alert would be sent for, and the finished executions started by hand.
#[derive(Default)]
struct Seen {
    health_changes: std::sync::Mutex<Vec<String>>,
    by_hand: std::sync::atomic::AtomicU32,
}

impl Observer for Seen {
    fn execution_finished(&self, finished: &ExecutionFinished<'_>) {
        if finished.by_hand {
            self.by_hand.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn health_changed(&self, change: &HealthEvent<'_>) {
        self.health_changes.lock().unwrap().push(format!("{change:?}"));
    }
}

/// Three failing tests by hand against a case that fails its suite after two failures in a row.
async fn three_failures_by_hand(count_them: bool) -> (LiveCheck, MemoryTransport, std::sync::Arc<Seen>) {
    let transport = MemoryTransport::new();
    let seen = std::sync::Arc::new(Seen::default());
    let app = builder(&transport).observer(seen.clone()).count_tests_by_hand(count_them).build();
    app.register(CaseSettings::new("c").max_consecutive_failures(2), |_| Verdicts).unwrap();
    let running = app.start().await.unwrap();
    for _ in 0..3 {
        let before = app.metrics().tests_finished;
        app.trigger_by_name("c", None, &Args { pass: false }, Duration::from_secs(60)).await.unwrap();
        until(Duration::from_secs(5), || app.metrics().tests_finished > before).await;
    }
    running.shutdown().await.unwrap();
    (app, transport, seen)
}

#[tokio::test(start_paused = true)]
async fn failing_tests_by_hand_are_reported_but_fail_no_suite_and_alert_no_one() {
    let (app, transport, seen) = three_failures_by_hand(false).await;
    let published = executions(&transport);
    assert_eq!(published.len(), 3);
    assert!(published.iter().all(|(_, execution)| execution.by_hand), "marked on the wire");
    let test_reports: Vec<_> = reports(&transport).into_iter().filter(|r| r.test.is_some()).collect();
    assert_eq!(test_reports.len(), 3, "each is reported");
    assert!(test_reports.iter().all(|r| r.state == State::Fail && r.test.as_ref().unwrap().by_hand));
    assert!(reports(&transport).iter().all(|r| r.test.is_some()), "no suite report");
    assert_eq!(seen.by_hand.load(std::sync::atomic::Ordering::SeqCst), 3, "observers are told, marked");
    assert!(seen.health_changes.lock().unwrap().is_empty(), "no health change, no alert");
    let health = app.case_health("c").unwrap();
    assert_eq!((health.status, health.consecutive_failures, health.total_failures), (State::Init, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn an_instance_asked_to_count_them_fails_the_suite_on_them() {
    let (app, transport, seen) = three_failures_by_hand(true).await;
    assert!(reports(&transport).iter().any(|r| r.test.is_none() && r.state == State::Fail), "a suite report");
    let changes = seen.health_changes.lock().unwrap();
    assert!(changes.iter().any(|change| change.contains("SuiteFailed")), "{changes:?}");
    assert!(app.case_health("c").unwrap().total_failures >= 3);
}

#[tokio::test(start_paused = true)]
async fn a_service_s_trigger_is_not_by_hand() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let case = app.register(CaseSettings::new("c"), |_| Verdicts).unwrap();
    case.trigger(&Args { pass: true }).await.unwrap();
    let published = executions(&transport);
    assert_eq!(published.len(), 1);
    assert!(!published[0].1.by_hand);
    let json = serde_json::to_string(&published[0].1).unwrap();
    assert!(!json.contains("by_hand"), "the field is written only when true: {json}");
}
