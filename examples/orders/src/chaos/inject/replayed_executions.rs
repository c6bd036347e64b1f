//! Replayed executions with signing on: genuine orders are placed and reported; then every message of the
//! pending-tests stream is read back whole (key, value, headers — its signature with it) and written again, byte
//! for byte, as someone replaying stolen messages or a producer retrying would. The instance must see each copy
//! as a copy (`tests_redelivered`) and run none. It is then stopped with SIGTERM and started again, and every
//! copy is written once more: the new process, which remembers reported executions from the report stream, must
//! run none either.
//!
//! Every execution must end with exactly one report — every genuine order one PASS — with no duplicate verdict.

use std::time::Duration;

use super::{
    ledger::LogContents,
    outcome::ScenarioOutcome,
    pending::read_whole,
    stage::{drain_timeout, random_hex, Stage},
    Context, Scenario,
};
use crate::chaos::{process::StopSignal, PENDING_STREAM};

/// How long the instance may take to stop after SIGTERM.
const STOP_WITHIN: Duration = Duration::from_secs(20);
/// How long the instance may take to read every copy.
const COPIES_READ_WITHIN: Duration = Duration::from_secs(60);

pub(super) async fn run(context: &Context) -> anyhow::Result<ScenarioOutcome> {
    let (count, rate) = context.pick((60, 15.0), (300, 20.0));
    let secret = random_hex(32);
    let mut stage = Stage::start(context, &context.dir, |setup| {
        setup.env.push((livecheck::context::SIGNING_SECRET_ENV.to_owned(), secret.clone()));
    })
    .await?;
    let traffic = stage.traffic();
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    stage.timeline.note(format!("placing {count} orders at {rate}/s"));
    let orders = traffic.place(count, rate).await;
    if !stage.drain(&orders, drain_timeout(context)).await? {
        problems.push("not every order answered 200 was executed and reported in time".into());
    }

    let transport = livecheck::transport::from_url(&stage.broker)?;
    let copies = read_whole(transport.as_ref()).await?;
    let copied = copies.len() as u64;
    for (round, restart_first) in [("to the running instance", false), ("after SIGTERM and a restart", true)] {
        if restart_first {
            let (pid, status) = stage.cluster.stop_instance(0, StopSignal::Terminate, STOP_WITHIN).await?;
            stage.timeline.note(format!("SIGTERM livecheck-1 (pid {pid}): {status:?}"));
            if !status.is_some_and(|s| s.success()) {
                problems.push(format!("the instance did not stop cleanly on SIGTERM: {status:?}"));
            }
            let ready = stage.cluster.start_instance(0).await?;
            stage.timeline.note(format!("restarted livecheck-1 {ready}"));
        }
        let before = stage.instance_metric("tests_redelivered").await.unwrap_or(0);
        stage.timeline.note(format!("writing again all {copied} messages of {PENDING_STREAM}, byte for byte, {round}"));
        for copy in &copies {
            transport.publish(PENDING_STREAM, copy.clone()).await?;
        }
        let redelivered = stage.wait_for_metric("tests_redelivered", before + copied, COPIES_READ_WITHIN).await;
        let seen = redelivered.map_or("?".to_owned(), |n| (n - before.min(n)).to_string());
        stage.timeline.note(format!("the instance counted {seen} copies (tests_redelivered)"));
        notes.push(format!("{copied} executions written again {round}: {seen} counted as copies (tests_redelivered)"));
        if redelivered.is_none_or(|n| n < before + copied) {
            problems.push(format!("{round}, the instance counted {seen} of {copied} copies as such"));
        }
        // A copy that ran would be executing now (waiting for signals that came long ago): the drain waits for it,
        // and its second report shows in the accounting.
        if !stage.drain(&orders, drain_timeout(context)).await? {
            problems.push(format!("{round}, the instance did not drain in time"));
        }
    }

    // Exactly one verdict per execution copied (the instance's own fake orders too).
    let contents = LogContents::read(&stage.broker, false).await?;
    let reports = contents.reports_by_id();
    let mut duplicates = 0;
    let mut examples = Vec::new();
    for copy in &copies {
        let id = copy.key.as_deref().unwrap_or_default();
        let verdicts = reports.get(id).map_or(&[][..], Vec::as_slice);
        if verdicts.len() != 1 {
            duplicates += verdicts.len().saturating_sub(1);
            examples.push(format!("{id}: {verdicts:?}"));
        }
    }
    notes.push(format!("duplicate verdicts: {duplicates} (over {copied} executions, each written three times)"));
    if !examples.is_empty() {
        examples.truncate(5);
        problems.push(format!("executions without exactly one report: {}", examples.join(", ")));
    }

    let (figures, examples) = stage.account(&orders).await?;
    if !figures.losses().is_empty() {
        problems.extend(examples);
    }
    Ok(ScenarioOutcome::ran(Scenario::ReplayedExecutions, figures, None, problems, notes))
}
