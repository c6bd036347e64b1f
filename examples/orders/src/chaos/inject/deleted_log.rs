//! The log's files deleted mid-run (`rm livecheck.sqlite3*`), while orders come in. What was taken before is
//! accounted for first (a load, drained); then, during a second load, the files go. From then on:
//!
//! - no order may be answered 200 (a request sent after the deletion could only be written into the deleted file,
//!   which nobody reads again);
//! - both processes must say so loudly (an ERROR naming the deleted file), the worker in its answers too;
//! - the instance's `/healthz` must answer 503, naming its consumer of tests and signals as stopped and why;
//! - nothing may be written into the deleted file (the harness kept a hard link to it, to look);
//! - no running process may create a new file in its place, and a restarted instance or worker must refuse to
//!   start on a new empty log (exit with an error asking for `?recreate=1`).

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;
use rusqlite::Connection;

use super::{
    ledger::LogContents,
    logs::ProcessLog,
    outcome::ScenarioOutcome,
    sigterm::exit_text,
    stage::{drain_timeout, sent_between, Stage},
    traffic::OrderRecord,
    Context, Scenario,
};
use crate::chaos::process::StopSignal;

/// What an error about the deleted log says.
const DELETED: &str = "was deleted while in use";
/// What a refusal to create the log again says.
const RECREATE: &str = "recreate=1";
/// Grace for a transaction under way at the moment of the deletion, past which nothing may be written.
const IN_FLIGHT_GRACE_MS: i64 = 1000;

pub(super) async fn run(context: &Context) -> anyhow::Result<ScenarioOutcome> {
    let (before_count, after_count, rate) = context.pick((60, 60, 15.0), (300, 300, 20.0));
    let mut stage = Stage::start(context, &context.dir, |_| {}).await?;
    let traffic = stage.traffic();
    let mut problems = Vec::new();
    let mut notes = Vec::new();

    stage.timeline.note(format!("placing {before_count} orders at {rate}/s, then waiting for their reports"));
    let before = traffic.place(before_count, rate).await;
    if !stage.drain(&before, drain_timeout(context)).await? {
        problems.push("the orders before the deletion were not all executed and reported in time".into());
    }
    let (mut figures, examples) = stage.account(&before).await?;
    if !figures.losses().is_empty() {
        problems.extend(examples);
    }

    let kept = context.dir.join("kept.sqlite3");
    stage.timeline.note(format!("placing {after_count} more orders at {rate}/s; deleting the log's files mid-way"));
    let window = Duration::from_secs_f64(after_count as f64 / rate);
    let deletion = async {
        tokio::time::sleep(window.mul_f64(0.4)).await;
        let deleted = delete_keeping_a_link(&stage.log_file, &kept)?;
        stage.timeline.note(format!("deleted {}* (a hard link kept as {})", stage.log_file.display(), kept.display()));
        anyhow::Ok(deleted)
    };
    let (during, deleted) = tokio::join!(traffic.place(after_count, rate), deletion);
    let (deleted_at, deleted_ms) = deleted?;
    // Let every process notice (the writer at its next transaction, the group member at its next heartbeat).
    tokio::time::sleep(Duration::from_secs(2)).await;

    let after_deletion = sent_between(&during, deleted_at, None);
    let ok_after: Vec<&&OrderRecord> = after_deletion.iter().filter(|o| o.answered_ok()).collect();
    let said_deleted =
        after_deletion.iter().filter(|o| o.refused.as_deref().is_some_and(|r| r.contains(DELETED))).count();
    notes.push(format!(
        "{} orders sent after the deletion: {} answered 200, {} refused ({said_deleted} saying the log {DELETED})",
        after_deletion.len(),
        ok_after.len(),
        after_deletion.len() - ok_after.len(),
    ));
    if said_deleted == 0 && !after_deletion.is_empty() {
        problems.push(format!("no refusal after the deletion said the log {DELETED}"));
    }
    if !ok_after.is_empty() {
        problems.push(format!("{} orders sent after the deletion were answered 200", ok_after.len()));
    }
    if after_deletion.is_empty() {
        problems.push("no order was sent after the deletion: nothing was checked".into());
    }
    // An order answered 200 after the deletion can never be executed: it went nowhere anyone reads.
    figures.never_executed += ok_after.len();
    figures.answered_ok += during.iter().filter(|o| o.answered_ok()).count();
    figures.refused += during.iter().filter(|o| !o.answered_ok()).count();

    for (name, path) in
        [("worker", stage.cluster.log_of("worker")), ("livecheck-1", stage.cluster.log_of("livecheck-1"))]
    {
        let log = ProcessLog::read(&path);
        let errors = log.at_level_containing("ERROR", DELETED);
        match errors.first() {
            Some(first) => notes.push(format!("{name} logged: {}", one_line(first))),
            None => problems.push(format!("{name} logged no ERROR saying the log {DELETED}")),
        }
        // Not a transient error: nothing retries it, hoping it goes away.
        let retried = log.at_level_containing("WARN", DELETED).into_iter().filter(|l| l.to_string().contains("retry"));
        if let Some(line) = retried.into_iter().next() {
            problems.push(format!("{name} retries the deleted log's error as transient: {}", one_line(line)));
        }
    }
    if stage.log_file.exists() {
        problems.push(format!("a running process created a new {} after the deletion", stage.log_file.display()));
    }
    match stage.cluster.instance_health(0).await {
        Some((503, health)) if stopped_on_deletion(&health) => {
            let stopped = health["consumers_stopped"].as_array().map(Vec::as_slice).unwrap_or_default();
            let names: Vec<String> = stopped
                .iter()
                .map(|c| format!("{} ({})", c["consumer"].as_str().unwrap_or("?"), c["streams"]))
                .collect();
            notes.push(format!("livecheck-1's /healthz: 503, consumers stopped by the deletion: {}", names.join(", ")))
        }
        Some((status, health)) => problems.push(format!(
            "livecheck-1's /healthz answered {status} after the deletion, not 503 naming its stopped consumer: \
             {health}"
        )),
        None => problems.push("livecheck-1's /healthz did not answer after the deletion".into()),
    }

    // Stop both (SIGTERM), then try to start them again on the same URL.
    let (_, status) = stage.cluster.stop_instance(0, StopSignal::Terminate, Duration::from_secs(20)).await?;
    notes.push(format!("livecheck-1 on SIGTERM: {}", exit_text(status)));
    let (_, status) = stage.cluster.stop_worker(StopSignal::Terminate, Duration::from_secs(20)).await?;
    notes.push(format!("worker on SIGTERM: {}", exit_text(status)));
    let written_after = written_after(&kept, deleted_ms).await?;
    notes.push(format!(
        "messages in the deleted file published after the deletion: {} within {IN_FLIGHT_GRACE_MS} ms (a \
         transaction under way), {} later",
        written_after.0, written_after.1
    ));
    if written_after.1 > 0 {
        problems.push(format!("{} messages were written into the deleted file after the deletion", written_after.1));
        figures.messages_lost += written_after.1;
    }
    let (refused, text) = refuses_to_start(stage.cluster.start_instance(0).await, &stage.cluster.log_of("livecheck-1"));
    notes.push(format!("livecheck-1 restarted: {text}"));
    if !refused {
        problems.push(format!("the restarted instance did not refuse the missing log: {text}"));
    }
    let (refused, text) = refuses_to_start(stage.cluster.start_worker().await, &stage.cluster.log_of("worker"));
    notes.push(format!("worker restarted: {text}"));
    if !refused {
        problems.push(format!("the restarted worker did not refuse the missing log: {text}"));
    }
    if stage.log_file.exists() {
        problems.push(format!("a new, empty {} was created", stage.log_file.display()));
    }

    // What was under way at the deletion: taken before it, cut with the file (as documented).
    let before_deletion: Vec<OrderRecord> = during.iter().filter(|o| o.sent_at < deleted_at).cloned().collect();
    let kept_broker = format!("sqlite://{}", kept.display());
    let (cut, _) = LogContents::read(&kept_broker, true).await?.account(&before_deletion);
    notes.push(format!(
        "of the {} orders answered 200 in the {:.1} s before the deletion, {} have no report and {} were never \
         executed: cut with the deleted file (expected: what the processes wrote since is lost with it)",
        cut.answered_ok,
        window.mul_f64(0.4).as_secs_f64(),
        cut.reports_lost,
        cut.never_executed
    ));
    Ok(ScenarioOutcome::ran(Scenario::DeletedLog, figures, None, problems, notes))
}

/// Whether a `/healthz` answer names the instance's consumer of tests and signals as stopped by the deletion.
fn stopped_on_deletion(health: &serde_json::Value) -> bool {
    let stopped = health["consumers_stopped"].as_array().map(Vec::as_slice).unwrap_or_default();
    health["ok"] == false
        && stopped.iter().any(|consumer| {
            consumer["consumer"] == "tests and signals"
                && consumer["reason"].as_str().is_some_and(|reason| reason.contains(DELETED))
        })
}

/// Makes a hard link of the log (and its write-ahead log) at `kept`, then deletes the log's files: when, as an
/// instant and in milliseconds since the epoch.
fn delete_keeping_a_link(log: &Path, kept: &Path) -> anyhow::Result<(Instant, i64)> {
    let with_suffix = |path: &Path, suffix: &str| PathBuf::from(format!("{}{suffix}", path.display()));
    for suffix in ["", "-wal"] {
        let from = with_suffix(log, suffix);
        if from.exists() {
            std::fs::hard_link(&from, with_suffix(kept, suffix))
                .with_context(|| format!("linking {}", from.display()))?;
        }
    }
    let deleted_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    for suffix in ["", "-wal", "-shm"] {
        let path = with_suffix(log, suffix);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error).with_context(|| format!("deleting {}", path.display())),
        }
    }
    Ok((Instant::now(), deleted_ms))
}

/// Messages in the kept file published after `deleted_ms`: within the grace, and later.
async fn written_after(kept: &Path, deleted_ms: i64) -> anyhow::Result<(usize, usize)> {
    let kept = kept.to_owned();
    tokio::task::spawn_blocking(move || {
        let connection = Connection::open(&kept).with_context(|| format!("opening {}", kept.display()))?;
        let count = |from: i64, to: i64| -> rusqlite::Result<usize> {
            connection.query_row(
                "SELECT count(*) FROM messages WHERE published_ms > ?1 AND published_ms <= ?2",
                [from, to],
                |row| row.get(0),
            )
        };
        let grace = deleted_ms + IN_FLIGHT_GRACE_MS;
        Ok((count(deleted_ms, grace)?, count(grace, i64::MAX)?))
    })
    .await
    .context("reading the kept file")?
}

/// Whether a start that should fail did — the process exited, saying why (`recreate=1`) — and what happened.
fn refuses_to_start(started: anyhow::Result<String>, log: &Path) -> (bool, String) {
    match started {
        Ok(ready) => (false, format!("started {ready}")),
        Err(error) => {
            let exited = format!("{error:#}").contains("exited");
            let log = ProcessLog::read(log);
            let said = log.since_last_start().lines().last().unwrap_or_default().trim().to_owned();
            let verdict = exited && said.contains(RECREATE);
            (verdict, format!("exited: {}", said.chars().take(300).collect::<String>()))
        }
    }
}

/// A log line's message and error, on one line.
fn one_line(line: &serde_json::Value) -> String {
    let fields = &line["fields"];
    let text = format!(
        "{} {}: {}",
        line["level"].as_str().unwrap_or_default(),
        fields["message"].as_str().unwrap_or_default(),
        fields["error"].as_str().unwrap_or_default()
    );
    text.chars().take(240).collect()
}
