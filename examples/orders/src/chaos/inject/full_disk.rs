//! A full disk: the log on a tmpfs of its own, filled up by a filler file while orders come in, then freed.
//! Orders refused while it is full are fine; an order answered 200 must be executed and its test reported, once
//! and PASS, whatever happened meanwhile — the publishes that failed were retried, and nothing was acknowledged
//! that was not stored. The disk must have refused something, or nothing was proven. It stays full for longer
//! than the case's stall warning (5 s), so that the instance reports a suite failure while it cannot write: that
//! report is retried — until the instance gets a SIGTERM, still with the disk full: it must exit (0) before the disk
//! is freed, its shutdown bounded by its `--shutdown-timeout`, logging what it could not publish (that suite report,
//! and the test reports then being retried); restarted once the disk has room, it runs again the executions whose
//! report was not out, so that nothing is lost. (It used to keep retrying until space was freed.)
//!
//! Mounting needs root: without it the scenario does not run, and says why.

use std::time::{Duration, Instant};

use super::{
    disk::Tmpfs,
    ledger::LogContents,
    outcome::ScenarioOutcome,
    sigterm::{exit_text_within, shutdown_losses},
    stage::{drain_timeout, sent_between, Stage},
    Context, Scenario,
};
use crate::chaos::process::StopSignal;

/// The tmpfs's size: room for the log of a long run, and little enough to fill at once.
const DISK_BYTES: u64 = 64 << 20;
/// The instance's `--shutdown-timeout`.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest the instance's suite failure (a STALL, 5 s after the last test arrived) is waited for once the disk
/// is full, before the SIGTERM.
const STALL_WITHIN: Duration = Duration::from_secs(9);

pub(super) async fn run(context: &Context) -> anyhow::Result<ScenarioOutcome> {
    // Full for long enough to stall (5 s), be stopped (2 s) and still be full when the instance has exited.
    let (count, rate, full_for) = context.pick((200, 15.0, 15.0), (800, 20.0, 18.0));
    let mut disk = match Tmpfs::mount(&context.dir.join("disk"), DISK_BYTES) {
        Ok(disk) => disk,
        Err(reason) => return Ok(ScenarioOutcome::not_run(Scenario::FullDisk, reason)),
    };
    // Declared after the disk: the processes are killed before it is unmounted, however this ends.
    let mut stage = Stage::start(context, &context.dir.join("disk"), |setup| {
        setup.instance_args.extend(["--shutdown-timeout".into(), SHUTDOWN_TIMEOUT.as_secs_f64().to_string()]);
    })
    .await?;
    let traffic = stage.traffic();
    let window = Duration::from_secs_f64(count as f64 / rate);
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    stage.timeline.note(format!(
        "placing {count} orders at {rate}/s; the disk ({} MiB) full from 30 % of the load for {full_for} s, SIGTERM \
         to the instance once it reported a suite failure meanwhile",
        DISK_BYTES >> 20
    ));
    let load_started = Instant::now();
    let suite_failures_before = stage.instance_metric("suite_failures").await.unwrap_or(0);
    let fill = async {
        tokio::time::sleep_until((load_started + window.mul_f64(0.3)).into()).await;
        let filler = disk.fill().await?;
        let full_since = Instant::now();
        let freed_at = full_since + Duration::from_secs_f64(full_for);
        stage.timeline.note(format!("disk full (a filler of {:.1} MiB)", filler.bytes as f64 / (1 << 20) as f64));
        let failures = stage.wait_for_metric("suite_failures", suite_failures_before + 1, STALL_WITHIN).await;
        stage
            .timeline
            .note(format!("suite failures: {failures:?} (before the disk was full: {suite_failures_before})"));
        let left = freed_at.saturating_duration_since(Instant::now());
        let (pid, status) = stage.cluster.stop_instance(0, StopSignal::Terminate, left).await?;
        let still_full = Instant::now() < freed_at;
        stage.timeline.note(format!(
            "SIGTERM livecheck-1 (pid {pid}) with the disk full: {}{}",
            exit_text_within(status, left),
            if still_full { ", while the disk was still full" } else { "" }
        ));
        tokio::time::sleep_until(freed_at.into()).await;
        filler.remove()?;
        stage.timeline.note("filler removed: the disk has room again");
        let ready = stage.cluster.start_instance(0).await?;
        stage.timeline.note(format!("restarted livecheck-1 {ready}"));
        anyhow::Ok((full_since, freed_at, status.map(|s| s.success()), failures))
    };
    let (orders, full) = tokio::join!(traffic.place(count, rate), fill);
    let (full_since, freed_at, exited_cleanly, failures) = full?;
    match exited_cleanly {
        Some(true) => {}
        Some(false) => problems.push("the instance did not exit with status 0 on SIGTERM with the disk full".into()),
        None => problems.push("the instance did not exit on SIGTERM while the disk was full".into()),
    }
    let lost = shutdown_losses(&stage.cluster.log_of("livecheck-1"));
    notes.push(format!("the instance stopped with the disk full logged: {}", lost.as_deref().unwrap_or("nothing")));
    if failures.is_some_and(|n| n > suite_failures_before)
        && !lost.as_deref().is_some_and(|l| l.contains("suite report"))
    {
        problems.push("the suite report that could not be published at the SIGTERM was not logged as lost".into());
    }
    let while_full = sent_between(&orders, full_since, Some(freed_at));
    let refused_while_full = while_full.iter().filter(|o| !o.answered_ok()).count();
    notes.push(format!(
        "{} orders sent while the disk was full: {} answered 200, {refused_while_full} refused",
        while_full.len(),
        while_full.len() - refused_while_full
    ));
    if let Some(example) = while_full.iter().find_map(|o| o.refused.as_deref()) {
        notes.push(format!("refused with: {}", example.chars().take(200).collect::<String>()));
    }
    if refused_while_full == 0 {
        problems.push("the full disk refused no order: nothing was proven (a bigger load or a longer fill?)".into());
    }
    if !stage.drain(&orders, drain_timeout(context)).await? {
        problems.push("not every order answered 200 was executed and reported in time".into());
    }
    let (figures, examples) = stage.account(&orders).await?;
    if !figures.losses().is_empty() {
        problems.extend(examples);
    }
    let (retried, failed) =
        (stage.instance_metric("reports_retried").await, stage.instance_metric("reports_failed").await);
    let suite_reports = LogContents::read(&stage.broker, false).await?.suite_reports();
    notes.push(format!(
        "report publishes retried: {}; reports that could not be published: {}; suite reports on the log: {}",
        retried.map_or("?".into(), |n| n.to_string()),
        failed.map_or("?".into(), |n| n.to_string()),
        serde_json::json!(suite_reports)
    ));
    if failed != Some(0) {
        problems.push(format!("{failed:?} reports could not be published"));
    }
    drop(stage);
    disk.unmount()?;
    Ok(ScenarioOutcome::ran(Scenario::FullDisk, figures, None, problems, notes))
}
