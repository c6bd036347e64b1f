//! A full disk: the log on a tmpfs of its own, filled up by a filler file while orders come in, then freed.
//! Orders refused while it is full are fine; an order answered 200 must be executed and its test reported, once
//! and PASS, whatever happened meanwhile — the publishes that failed were retried, and nothing was acknowledged
//! that was not stored. The disk must have refused something, or nothing was proven. It stays full for longer
//! than the case's stall warning (5 s), so that the instance reports a suite failure while it cannot write: that
//! report must be retried, not dropped.
//!
//! Mounting needs root: without it the scenario does not run, and says why.

use std::time::{Duration, Instant};

use super::{
    disk::Tmpfs,
    ledger::LogContents,
    outcome::ScenarioOutcome,
    stage::{drain_timeout, sent_between, Stage},
    Context, Scenario,
};

/// The tmpfs's size: room for the log of a long run, and little enough to fill at once.
const DISK_BYTES: u64 = 64 << 20;

pub(super) async fn run(context: &Context) -> anyhow::Result<ScenarioOutcome> {
    let (count, rate, full_for) = context.pick((150, 15.0, 7.0), (800, 20.0, 12.0));
    let mut disk = match Tmpfs::mount(&context.dir.join("disk"), DISK_BYTES) {
        Ok(disk) => disk,
        Err(reason) => return Ok(ScenarioOutcome::not_run(Scenario::FullDisk, reason)),
    };
    // Declared after the disk: the processes are killed before it is unmounted, however this ends.
    let stage = Stage::start(context, &context.dir.join("disk"), |_| {}).await?;
    let traffic = stage.traffic();
    let window = Duration::from_secs_f64(count as f64 / rate);
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    stage.timeline.note(format!(
        "placing {count} orders at {rate}/s; the disk ({} MiB) full from 30 % of the load for {full_for} s",
        DISK_BYTES >> 20
    ));
    let load_started = Instant::now();
    let fill = async {
        tokio::time::sleep_until((load_started + window.mul_f64(0.3)).into()).await;
        let filler = disk.fill().await?;
        let full_since = Instant::now();
        stage.timeline.note(format!("disk full (a filler of {:.1} MiB)", filler.bytes as f64 / (1 << 20) as f64));
        tokio::time::sleep(Duration::from_secs_f64(full_for)).await;
        filler.remove()?;
        stage.timeline.note("filler removed: the disk has room again");
        anyhow::Ok((full_since, Instant::now()))
    };
    let (orders, full) = tokio::join!(traffic.place(count, rate), fill);
    let (full_since, freed_at) = full?;
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
