//! SIGTERM — how systemd, Kubernetes and Docker stop a process — to the LiveCheck instance and then to the worker,
//! mid-run, each restarted: both must stop cleanly (exit 0), and no execution may be lost or reported twice.

use std::time::{Duration, Instant};

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

pub(super) async fn run(context: &Context) -> anyhow::Result<ScenarioOutcome> {
    let (count, rate) = context.pick((120, 15.0), (600, 20.0));
    let mut stage = Stage::start(context, &context.dir, |_| {}).await?;
    let traffic = stage.traffic();
    let window = Duration::from_secs_f64(count as f64 / rate);
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    stage.timeline.note(format!("placing {count} orders at {rate}/s; SIGTERM to the instance, then the worker"));
    let load_started = Instant::now();
    let faults = async {
        let mut worker_down = None;
        tokio::time::sleep(window.mul_f64(0.25)).await;
        let (pid, status) = stage.cluster.stop_instance(0, StopSignal::Terminate, STOP_WITHIN).await?;
        stage.timeline.note(format!("SIGTERM livecheck-1 (pid {pid}): {}", exit_text(status)));
        check_clean_exit("the LiveCheck instance", status, &mut problems);
        tokio::time::sleep(DOWN_FOR).await;
        let ready = stage.cluster.start_instance(0).await?;
        stage.timeline.note(format!("restarted livecheck-1 {ready}"));

        tokio::time::sleep_until((load_started + window.mul_f64(0.6)).into()).await;
        let down_since = Instant::now();
        let (pid, status) = stage.cluster.stop_worker(StopSignal::Terminate, STOP_WITHIN).await?;
        stage.timeline.note(format!("SIGTERM worker (pid {pid}): {}", exit_text(status)));
        check_clean_exit("the worker", status, &mut problems);
        tokio::time::sleep(DOWN_FOR).await;
        let ready = stage.cluster.start_worker().await?;
        worker_down.replace((down_since, Instant::now()));
        stage.timeline.note(format!("restarted the worker {ready}"));
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
    Ok(ScenarioOutcome::ran(Scenario::Sigterm, figures, None, problems, notes))
}

/// "exited (exit status: 0)" or "did not exit in time (killed)".
pub(super) fn exit_text(status: Option<std::process::ExitStatus>) -> String {
    match status {
        Some(status) => format!("exited ({status})"),
        None => format!("did not exit within {STOP_WITHIN:?} (killed)"),
    }
}

/// A problem unless `status` is a clean exit.
fn check_clean_exit(what: &str, status: Option<std::process::ExitStatus>, problems: &mut Vec<String>) {
    match status {
        Some(status) if status.success() => {}
        other => problems.push(format!("{what} did not stop cleanly on SIGTERM: {}", exit_text(other))),
    }
}
