//! A bounded shutdown (issue 15, item 4): an instance stopping while its reports, suite reports or alerts cannot
//! be published — a full disk, a broker that does not answer, a database locked by another process, a webhook that
//! never answers — gives them up after `shutdown_timeout`, says what was lost, and commits no execution whose report
//! is not out, so that it runs again after a restart.

mod support;

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU32, Ordering},
        Arc,
    },
    time::Duration,
};

use livecheck::{
    transport::{MemoryTransport, SqliteTransport, Transport},
    Case, CaseHandle, CaseResult, CaseSettings, LiveCheck, LiveCheckBuilder, State, TestRun,
};
use support::{
    faulty::{Fault, Faulty},
    logs::Captured,
    reports, until, TempDb,
};

/// A case whose body passes once `go` is notified (at once when it is `None`), counting its executions.
struct Counted {
    started: Arc<AtomicU32>,
    go: Option<Arc<tokio::sync::Notify>>,
}

impl Case for Counted {
    type Args = ();
    async fn run(&self, _test: &TestRun, _: ()) -> CaseResult {
        self.started.fetch_add(1, Ordering::SeqCst);
        if let Some(go) = &self.go {
            go.notified().await;
        }
        Ok(())
    }
}

fn counted(app: &LiveCheck, settings: CaseSettings) -> CaseHandle<Counted> {
    app.register(settings, |_| Counted { started: Arc::default(), go: None }).unwrap()
}

/// An app on `transport` whose wall clock follows tokio's paused clock.
fn on(transport: impl Transport) -> LiveCheckBuilder {
    LiveCheck::builder().transport(transport).clock(livecheck::Clock::follow_tokio())
}

/// `inner`, with every report publish failing on a transient error while `full` (as on a full disk).
fn reports_fail_while(inner: &MemoryTransport, full: &Arc<AtomicBool>) -> Faulty {
    let full = full.clone();
    Faulty::new(inner.clone()).on_publish(move |stream| {
        (stream == "livecheck-report" && full.load(Ordering::SeqCst))
            .then_some(Fault::Fail { retriable: true, context: "database or disk is full" })
    })
}

/// Runs `running.shutdown()`, failing the test if it does not return within a minute (of paused time, where
/// retrying a report for its 10 minutes would take no longer than this).
async fn shut_down(running: livecheck::Running) -> Duration {
    let started = tokio::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(60), running.shutdown())
        .await
        .expect("shutdown returns (in paused time, retrying a report for its 10 minutes would take longer)")
        .unwrap();
    started.elapsed()
}

#[tokio::test(start_paused = true)]
async fn a_full_disk_does_not_hold_shutdown_up_the_lost_reports_are_logged_and_their_executions_run_again() {
    let logs = Captured::default();
    let _logging = tracing::subscriber::set_default(logs.subscriber());
    let inner = MemoryTransport::new();
    let full = Arc::new(AtomicBool::new(true));
    let transport = reports_fail_while(&inner, &full);
    let app = on(transport.clone()).shutdown_timeout(Duration::from_secs(2)).build();
    let case = counted(&app, CaseSettings::new("c"));
    // No test ever comes for this one: it stalls, and its suite report cannot be published either.
    counted(&app, CaseSettings::new("quiet").warn_stalled_after(Duration::from_secs(1)));
    let running = app.start().await.unwrap();
    case.trigger_with_id("t-1", &()).await.unwrap();
    until(Duration::from_secs(30), || {
        let m = app.metrics();
        m.tests_finished == 1 && m.suite_failures >= 1
    })
    .await;
    // Both reports are being retried now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let retried = app.metrics().reports_retried;
    assert!(retried >= 4, "both reports retried: {retried}");

    let took = shut_down(running).await;
    assert!(took >= Duration::from_secs(2), "the reports were retried until the shutdown timeout: {took:?}");
    assert!(took < Duration::from_secs(10), "then given up: {took:?}");
    let text = logs.text();
    assert!(
        text.contains(
            "shutdown: 1 report could not be published (test ids t-1; they run again after a restart since their \
             offsets were not committed)"
        ),
        "{text}"
    );
    assert!(text.contains("shutdown: 1 suite report lost (quiet (stall))"), "{text}");
    assert!(!text.contains("did not end in time"), "no task was left behind:\n{text}");
    assert!(reports(&inner).is_empty());

    // The disk has room again: the restarted instance runs the execution again, and its report is out.
    full.store(false, Ordering::SeqCst);
    let restarted = on(transport).build();
    let case = counted(&restarted, CaseSettings::new("c"));
    let running = restarted.start().await.unwrap();
    until(Duration::from_secs(30), || restarted.metrics().reports_published == 1).await;
    assert_eq!(case.started.load(Ordering::SeqCst), 1, "not committed: it ran again");
    let reports = reports(&inner);
    assert_eq!(reports.len(), 1);
    assert_eq!((reports[0].test.as_ref().map(|t| t.id.as_str()), reports[0].state), (Some("t-1"), State::Pass));
    running.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_report_publish_that_never_answers_is_given_up_at_the_shutdown_timeout() {
    let logs = Captured::default();
    let _logging = tracing::subscriber::set_default(logs.subscriber());
    // The broker takes the pending test, then stops answering: report publishes never complete.
    let transport =
        Faulty::new(MemoryTransport::new()).on_publish(|stream| (stream == "livecheck-report").then_some(Fault::Hang));
    let app = on(transport).shutdown_timeout(Duration::from_secs(1)).build();
    let case = counted(&app, CaseSettings::new("c"));
    let running = app.start().await.unwrap();
    case.trigger_with_id("t-2", &()).await.unwrap();
    until(Duration::from_secs(30), || app.metrics().tests_finished == 1).await;
    tokio::time::sleep(Duration::from_secs(5)).await;

    let took = shut_down(running).await;
    assert!(took < Duration::from_secs(10), "{took:?}");
    let text = logs.text();
    assert!(text.contains("shutdown: 1 report could not be published (test ids t-2;"), "{text}");
    assert_eq!(app.metrics().reports_published, 0);
}

#[tokio::test]
async fn a_locked_log_does_not_hold_shutdown_up_and_the_execution_is_not_committed() {
    let logs = Captured::default();
    let _logging = tracing::subscriber::set_default(logs.subscriber());
    let db = TempDb::new("shutdown-locked");
    let sqlite = || SqliteTransport::open(&db.0).unwrap().with_liveness(Duration::from_millis(800));
    let app = LiveCheck::builder().transport(sqlite()).shutdown_timeout(Duration::from_millis(300)).build();
    let go = Arc::new(tokio::sync::Notify::new());
    let started = Arc::new(AtomicU32::new(0));
    let case =
        app.register(CaseSettings::new("c"), |_| Counted { started: started.clone(), go: Some(go.clone()) }).unwrap();
    let running = app.start().await.unwrap();
    case.trigger_with_id("t-3", &()).await.unwrap();
    until_real(|| started.load(Ordering::SeqCst) == 1).await;

    // Another process holds the log's write lock (a backup, a stuck program): the report waits for it.
    let lock = LogLock::take(&db.0);
    go.notify_one();
    until_real(|| app.metrics().tests_finished == 1).await;

    tokio::time::timeout(Duration::from_secs(60), running.shutdown()).await.expect("shutdown returns").unwrap();
    // Dropping the transport does not wait for its writer either: past the deadline, it is left behind.
    drop((app, case));
    assert!(!lock.released(), "shutdown returned, and the transport was dropped, while the log was still locked");
    let text = logs.text();
    assert!(text.contains("shutdown: 1 report could not be published (test ids t-3;"), "{text}");
    lock.release();

    // As a new process would, on the same log: the execution is delivered again (it was not committed), runs and
    // is reported once. (The writer left behind wrote nothing once the lock was released.)
    let transport: Arc<dyn Transport> = Arc::new(sqlite());
    let restarted = LiveCheck::builder().shared_transport(transport.clone()).build();
    let case = counted(&restarted, CaseSettings::new("c"));
    let running = restarted.start().await.unwrap();
    until_real(|| restarted.metrics().reports_published == 1).await;
    assert_eq!(case.started.load(Ordering::SeqCst), 1, "delivered again and run: not committed");
    running.shutdown().await.unwrap();
    let reports = support::read_all(transport.as_ref(), "livecheck-report").await;
    assert_eq!(reports.len(), 1, "one report");
}

/// Waits, in real time (the log's threads work in it), for `cond`; panics after a minute.
async fn until_real(cond: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "condition not reached within a minute");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The embedded log's write lock, held by a connection of its own on a thread of its own until released (or a
/// minute passed, so that a test that fails does not hang).
struct LogLock {
    release: std::sync::mpsc::Sender<()>,
    released: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LogLock {
    fn take(path: &std::path::Path) -> Self {
        let connection = rusqlite::Connection::open(path).unwrap();
        let (release, released_rx) = std::sync::mpsc::channel::<()>();
        let (locked_tx, locked) = std::sync::mpsc::channel();
        let released = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let released = released.clone();
            move || {
                connection.execute_batch("BEGIN IMMEDIATE").unwrap();
                locked_tx.send(()).unwrap();
                let _ = released_rx.recv_timeout(Duration::from_secs(60));
                released.store(true, Ordering::SeqCst);
                connection.execute_batch("COMMIT").unwrap();
            }
        });
        locked.recv().unwrap();
        LogLock { release, released, thread: Some(thread) }
    }

    fn released(&self) -> bool {
        self.released.load(Ordering::SeqCst)
    }

    fn release(mut self) {
        let _ = self.release.send(());
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

#[tokio::test]
async fn an_alert_a_webhook_never_answers_is_given_up_at_the_shutdown_timeout_and_logged() {
    let logs = Captured::default();
    let _logging = tracing::subscriber::set_default(logs.subscriber());
    // Connections are taken (the kernel's backlog) and never answered: each attempt would wait 10 s.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", silent.local_addr().unwrap());
    let app = LiveCheck::builder().alert_webhook(&url).shutdown_timeout(Duration::from_millis(200)).build();
    counted(&app, CaseSettings::new("quiet").warn_stalled_after(Duration::from_millis(50)));
    let running = app.start().await.unwrap();
    until_real(|| !app.alert_deliveries().is_empty()).await;

    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(60), running.shutdown()).await.expect("shutdown returns").unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "not held up by the webhook's 10 s attempts: {took:?}");
    let text = logs.text();
    assert!(text.contains(&format!("shutdown: 1 alert not delivered (quiet stalled → {url})")), "{text}");
    assert_eq!(app.metrics().alerts_failed, 1);
    assert_eq!(app.metrics().alerts_delivered, 0);
    drop(silent);
}

/// A case whose `on_suite_fail` hook never returns.
struct StuckHook;

impl Case for StuckHook {
    type Args = ();
    async fn run(&self, _test: &TestRun, _: ()) -> CaseResult {
        Ok(())
    }

    async fn on_suite_fail(&self, _failure: &livecheck::health::SuiteFailure) {
        std::future::pending::<()>().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_hook_that_never_returns_is_left_behind_and_named() {
    let logs = Captured::default();
    let _logging = tracing::subscriber::set_default(logs.subscriber());
    let app = on(MemoryTransport::new()).shutdown_timeout(Duration::from_secs(1)).build();
    app.register(CaseSettings::new("stuck").warn_stalled_after(Duration::from_secs(1)), |_| StuckHook).unwrap();
    let running = app.start().await.unwrap();
    until(Duration::from_secs(30), || app.metrics().suite_failures == 1).await;

    shut_down(running).await;
    let text = logs.text();
    assert!(
        text.contains("shutdown: 1 task(s) did not end in time and are left behind: the stall watch of stuck"),
        "{text}"
    );
    assert!(!text.contains("could not be published"), "the suite report was out:\n{text}");
}
