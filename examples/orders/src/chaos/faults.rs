//! The faults injected into the LiveCheck group while the load runs, on a schedule spread over the load window:
//! SIGKILLs and restarts, graceful restarts, and an instance that joins and later leaves.

use std::time::{Duration, Instant};

use super::{cluster::Cluster, Timeline};

/// How long a gracefully stopped instance may take to exit.
const STOP_WITHIN: Duration = Duration::from_secs(20);

/// One fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// SIGKILL a random running instance of the base group; restart it after 0.5–3 s.
    Kill,
    /// SIGINT a random running instance of the base group, wait for it to exit; restart it after 0.5–3 s.
    GracefulRestart,
    /// Start one more instance, which joins the group.
    AddInstance,
    /// Stop the added instance with SIGINT and wait for it to exit.
    RemoveInstance,
}

/// The faults and when each is due, from the start of the load.
pub(super) struct FaultPlan {
    due: Vec<(Duration, Fault)>,
}

impl FaultPlan {
    /// `kills` SIGKILLs evenly spread over `window` (each moved randomly by up to a quarter of the spacing),
    /// `graceful_restarts` graceful restarts likewise, and, with `extra_instance`, an instance added at 30 % of the
    /// window and removed at 70 %.
    pub(super) fn new(window: Duration, kills: usize, graceful_restarts: usize, extra_instance: bool) -> Self {
        let mut due = Vec::new();
        for (fault, count) in [(Fault::Kill, kills), (Fault::GracefulRestart, graceful_restarts)] {
            for i in 0..count {
                let jitter = (fastrand::f64() - 0.5) / 2.0;
                let fraction = (i as f64 + 1.0 + jitter) / (count as f64 + 1.0);
                due.push((window.mul_f64(fraction), fault));
            }
        }
        if extra_instance {
            due.push((window.mul_f64(0.3), Fault::AddInstance));
            due.push((window.mul_f64(0.7), Fault::RemoveInstance));
        }
        due.sort_by_key(|(at, _)| *at);
        FaultPlan { due }
    }
}

/// What the faults did.
#[derive(Debug, Default)]
pub(super) struct FaultRecord {
    /// Instances SIGKILLed.
    pub(super) kills: usize,
    /// Instances stopped with SIGINT and restarted.
    pub(super) graceful_restarts: usize,
    /// Instances added mid-run.
    pub(super) instances_added: usize,
    /// Added instances stopped with SIGINT.
    pub(super) instances_removed: usize,
    /// Instances that did not exit within 20 s of a SIGINT (then killed).
    pub(super) stop_timeouts: usize,
    /// Processes that exited without being told to.
    pub(super) unexpected_exits: Vec<String>,
    /// Faults that could not be carried out (an instance that did not restart, …).
    pub(super) errors: Vec<String>,
    /// When the last fault was done with.
    pub(super) last_fault: Option<Instant>,
}

impl FaultRecord {
    /// Notes processes of `cluster` that exited by themselves.
    pub(super) fn check_exits(&mut self, cluster: &mut Cluster, timeline: &Timeline) {
        for exit in cluster.unexpected_exits() {
            timeline.note(format!("UNEXPECTED: {exit}"));
            self.unexpected_exits.push(exit);
        }
    }
}

/// Carries out `plan` on `cluster`, its times counted from `load_started`, one fault after the other (a fault
/// that is late because the one before took long comes at once). The instances that exist now are the base
/// group that kills and graceful restarts pick from.
pub(super) async fn inject(
    plan: FaultPlan,
    cluster: &mut Cluster,
    load_started: Instant,
    timeline: &Timeline,
) -> FaultRecord {
    let mut record = FaultRecord::default();
    let base = cluster.instance_count();
    let mut added = None;
    for (at, fault) in plan.due {
        tokio::time::sleep_until((load_started + at).into()).await;
        record.check_exits(cluster, timeline);
        let done = match fault {
            Fault::Kill => kill_and_restart(cluster, base, timeline).await.map(|()| record.kills += 1),
            Fault::GracefulRestart => stop_and_restart(cluster, base, timeline, &mut record).await,
            Fault::AddInstance => cluster.add_instance().await.map(|(index, ready)| {
                timeline.note(format!("added {} {ready}", cluster.instance_name(index)));
                added = Some(index);
                record.instances_added += 1;
            }),
            Fault::RemoveInstance => match added.take() {
                Some(index) => {
                    stop(cluster, index, timeline, &mut record).await.map(|()| record.instances_removed += 1)
                }
                None => Err(anyhow::anyhow!("no added instance to remove")),
            },
        };
        if let Err(error) = done {
            let error = format!("{fault:?}: {error:#}");
            timeline.note(format!("FAULT FAILED: {error}"));
            record.errors.push(error);
        }
        record.last_fault = Some(Instant::now());
    }
    record
}

/// A random running instance among the first `base`.
fn pick(cluster: &Cluster, base: usize) -> anyhow::Result<usize> {
    let running = cluster.running_instances(base);
    anyhow::ensure!(!running.is_empty(), "no instance of the base group is running");
    Ok(running[fastrand::usize(..running.len())])
}

/// 0.5–3 s.
fn restart_delay() -> Duration {
    Duration::from_secs_f64(0.5 + 2.5 * fastrand::f64())
}

async fn kill_and_restart(cluster: &mut Cluster, base: usize, timeline: &Timeline) -> anyhow::Result<()> {
    let index = pick(cluster, base)?;
    let pid = cluster.kill_instance(index)?;
    let delay = restart_delay();
    let name = cluster.instance_name(index).to_owned();
    timeline.note(format!("SIGKILL {name} (pid {pid}); restarting it in {:.1} s", delay.as_secs_f64()));
    tokio::time::sleep(delay).await;
    let ready = cluster.start_instance(index).await?;
    timeline.note(format!("restarted {name} {ready}"));
    Ok(())
}

async fn stop_and_restart(
    cluster: &mut Cluster,
    base: usize,
    timeline: &Timeline,
    record: &mut FaultRecord,
) -> anyhow::Result<()> {
    let index = pick(cluster, base)?;
    stop(cluster, index, timeline, record).await?;
    let delay = restart_delay();
    let name = cluster.instance_name(index).to_owned();
    tokio::time::sleep(delay).await;
    let ready = cluster.start_instance(index).await?;
    timeline.note(format!("restarted {name} after {:.1} s {ready}", delay.as_secs_f64()));
    record.graceful_restarts += 1;
    Ok(())
}

/// Stops instance `index` with SIGINT and waits for its exit.
async fn stop(
    cluster: &mut Cluster,
    index: usize,
    timeline: &Timeline,
    record: &mut FaultRecord,
) -> anyhow::Result<()> {
    let name = cluster.instance_name(index).to_owned();
    let asked = Instant::now();
    timeline.note(format!("SIGINT {name}"));
    let (pid, status) = cluster.interrupt_instance(index, STOP_WITHIN).await?;
    match status {
        Some(status) => {
            timeline.note(format!("{name} (pid {pid}) exited after {:.1} s ({status})", asked.elapsed().as_secs_f64()));
            anyhow::ensure!(status.success(), "{name} failed to shut down cleanly: {status}");
        }
        None => {
            timeline.note(format!("{name} (pid {pid}) did not exit within {STOP_WITHIN:?} of SIGINT; killed it"));
            record.stop_timeouts += 1;
        }
    }
    Ok(())
}
