//! SIGTERM — how systemd, Kubernetes and Docker stop a process — to the LiveCheck instance and then to the worker,
//! mid-run, each restarted: both must stop cleanly (exit 0), and no execution may be lost or reported twice. Then
//! once more to the instance while another program holds the log's write lock (a backup, a stuck process: the
//! instance's commits and its group member's heartbeat wait for it): its shutdown is bounded by its
//! `--shutdown-timeout`, so it must exit, 0, while the lock is still held; restarted once the lock is released, it
//! runs again what it had not committed.

use std::{
    path::Path,
    sync::mpsc,
    time::{Duration, Instant},
};

use super::{
    outcome::ScenarioOutcome,
    stage::{drain_timeout, sent_between, Stage},
    Context, Scenario,
};
use crate::chaos::process::StopSignal;

/// How long a process may take to stop after SIGTERM.
const STOP_WITHIN: Duration = Duration::from_secs(20);
/// How long a stopped process stays down.
const DOWN_FOR: Duration = Duration::from_secs(1);
/// The instance's `--shutdown-timeout`.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the log's write lock is held: less than the 10 s the log's connections wait for a lock, so that the
/// worker's publishes wait for it rather than fail.
const LOCKED_FOR: Duration = Duration::from_secs(8);
/// When, after the lock was taken, the instance gets its SIGTERM.
const SIGTERM_AFTER_LOCK: Duration = Duration::from_secs(1);

pub(super) async fn run(context: &Context) -> anyhow::Result<ScenarioOutcome> {
    let (count, rate) = context.pick((150, 15.0), (600, 20.0));
    let mut stage = Stage::start(context, &context.dir, |setup| {
        setup.instance_args.extend(["--shutdown-timeout".into(), SHUTDOWN_TIMEOUT.as_secs_f64().to_string()]);
    })
    .await?;
    let traffic = stage.traffic();
    let window = Duration::from_secs_f64(count as f64 / rate);
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    stage.timeline.note(format!(
        "placing {count} orders at {rate}/s; SIGTERM to the instance, then the worker, then the instance while the \
         log is locked"
    ));
    let load_started = Instant::now();
    let faults = async {
        let mut worker_down = None;
        tokio::time::sleep(window.mul_f64(0.25)).await;
        let (pid, status) = stage.cluster.stop_instance(0, StopSignal::Terminate, STOP_WITHIN).await?;
        stage.timeline.note(format!("SIGTERM livecheck-1 (pid {pid}): {}", exit_text(status)));
        check_clean_exit("the LiveCheck instance", status, STOP_WITHIN, &mut problems);
        tokio::time::sleep(DOWN_FOR).await;
        let ready = stage.cluster.start_instance(0).await?;
        stage.timeline.note(format!("restarted livecheck-1 {ready}"));

        tokio::time::sleep_until((load_started + window.mul_f64(0.6)).into()).await;
        let down_since = Instant::now();
        let (pid, status) = stage.cluster.stop_worker(StopSignal::Terminate, STOP_WITHIN).await?;
        stage.timeline.note(format!("SIGTERM worker (pid {pid}): {}", exit_text(status)));
        check_clean_exit("the worker", status, STOP_WITHIN, &mut problems);
        tokio::time::sleep(DOWN_FOR).await;
        let ready = stage.cluster.start_worker().await?;
        worker_down.replace((down_since, Instant::now()));
        stage.timeline.note(format!("restarted the worker {ready}"));

        tokio::time::sleep_until((load_started + window.mul_f64(0.7)).into()).await;
        let lock = LogLock::take(&stage.log_file)?;
        stage.timeline.note(format!("the log's write lock taken by another connection, for {LOCKED_FOR:?}"));
        tokio::time::sleep(SIGTERM_AFTER_LOCK).await;
        let lock_left = LOCKED_FOR - SIGTERM_AFTER_LOCK;
        let (pid, status) = stage.cluster.stop_instance(0, StopSignal::Terminate, lock_left).await?;
        let still_locked = !lock.released();
        stage.timeline.note(format!(
            "SIGTERM livecheck-1 (pid {pid}) with the log locked: {}{}",
            exit_text_within(status, lock_left),
            if still_locked { ", while the lock was still held" } else { "" }
        ));
        check_clean_exit("the LiveCheck instance", status, lock_left, &mut problems);
        if status.is_some() && !still_locked {
            problems.push("the instance exited only once the log's lock was released".into());
        }
        tokio::time::sleep_until((lock.taken_at + LOCKED_FOR).into()).await;
        lock.release();
        stage.timeline.note("the lock released");
        let ready = stage.cluster.start_instance(0).await?;
        stage.timeline.note(format!("restarted livecheck-1 {ready}"));
        anyhow::Ok(worker_down)
    };
    let (orders, worker_down) = tokio::join!(traffic.place(count, rate), faults);
    let worker_down = worker_down?;
    stage
        .timeline
        .note(format!("load done: {} orders answered 200", orders.iter().filter(|o| o.answered_ok()).count()));
    if let Some((since, until)) = worker_down {
        let refused = sent_between(&orders, since, Some(until)).iter().filter(|o| !o.answered_ok()).count();
        notes.push(format!("{refused} orders refused while the worker was down"));
    }
    if !stage.drain(&orders, drain_timeout(context)).await? {
        problems.push("not every order answered 200 was executed and reported in time".into());
    }
    let (figures, examples) = stage.account(&orders).await?;
    for exit in stage.cluster.unexpected_exits() {
        problems.push(exit);
    }
    notes.push(format!(
        "{} orders executed twice (the worker's agents are at-least-once: a message being handled at the SIGTERM \
         is handled again after the restart)",
        figures.executed_twice
    ));
    if !figures.losses().is_empty() {
        problems.extend(examples);
    }
    if let Some(lost) = shutdown_losses(&stage.cluster.log_of("livecheck-1")) {
        notes.push(format!("the instance stopped with the log locked logged: {lost}"));
    }
    Ok(ScenarioOutcome::ran(Scenario::Sigterm, figures, None, problems, notes))
}

/// "exited (exit status: 0)" or "did not exit in time (killed)".
pub(super) fn exit_text(status: Option<std::process::ExitStatus>) -> String {
    exit_text_within(status, STOP_WITHIN)
}

/// "exited (exit status: 0)" or "did not exit within … (killed)".
pub(super) fn exit_text_within(status: Option<std::process::ExitStatus>, within: Duration) -> String {
    match status {
        Some(status) => format!("exited ({status})"),
        None => format!("did not exit within {within:?} (killed)"),
    }
}

/// A problem unless `status` is a clean exit.
fn check_clean_exit(
    what: &str,
    status: Option<std::process::ExitStatus>,
    within: Duration,
    problems: &mut Vec<String>,
) {
    match status {
        Some(status) if status.success() => {}
        other => problems.push(format!("{what} did not stop cleanly on SIGTERM: {}", exit_text_within(other, within))),
    }
}

/// The `shutdown: …` lines of an instance's log (what it could not publish when it stopped), joined; `None` when
/// there are none.
pub(super) fn shutdown_losses(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let lines: Vec<String> = text
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|line| line["fields"]["message"].as_str().map(str::to_owned))
        .filter(|message| message.starts_with("shutdown: "))
        .collect();
    (!lines.is_empty()).then(|| lines.join("; "))
}

/// The log's write lock, held by a connection of this process on a thread of its own until released (at the
/// latest when dropped).
struct LogLock {
    taken_at: Instant,
    release: Option<mpsc::Sender<()>>,
    released: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LogLock {
    fn take(log_file: &Path) -> anyhow::Result<Self> {
        let connection = rusqlite::Connection::open(log_file)?;
        connection.busy_timeout(Duration::from_secs(10))?;
        let (release, released_rx) = mpsc::channel::<()>();
        let (locked_tx, locked) = mpsc::channel();
        let released = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = std::thread::spawn({
            let released = released.clone();
            move || {
                let taken = connection.execute_batch("BEGIN IMMEDIATE");
                let ok = taken.is_ok();
                let _ = locked_tx.send(taken);
                if ok {
                    let _ = released_rx.recv();
                    released.store(true, std::sync::atomic::Ordering::SeqCst);
                    let _ = connection.execute_batch("COMMIT");
                }
            }
        });
        locked.recv()??;
        Ok(LogLock { taken_at: Instant::now(), release: Some(release), released, thread: Some(thread) })
    }

    fn released(&self) -> bool {
        self.released.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn release(mut self) {
        self.release_now();
    }

    fn release_now(&mut self) {
        self.release.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for LogLock {
    fn drop(&mut self) {
        self.release_now();
    }
}
