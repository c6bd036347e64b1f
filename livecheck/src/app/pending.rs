//! Handling one message of the pending-tests stream.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{consumer::Handled, outcome, reported::Reported, LiveCheck};
use crate::{
    case::RegisteredCase,
    runner,
    transport::{Delivery, Received},
    wire::RawExecution,
};

/// Handles one pending test, unless `reported` says it has a report already; `stop` interrupts it without a
/// verdict (shutdown, or its partition given to another member), `abandon` makes it give up publishing its report
/// (its partition given to another member, or the shutdown timeout passed). Every waiting test's task is this
/// future, so it keeps only small state across the wait (the body itself is boxed; the report is built after).
pub(crate) async fn handle(
    app: LiveCheck,
    received: Received,
    stop: CancellationToken,
    abandon: CancellationToken,
    reported: Option<Arc<Reported>>,
) -> (Handled, Option<Delivery>) {
    let prepared = prepare(&app, &received, reported.as_deref());
    // The message's bytes are not kept across the wait.
    drop(received);
    let Some((case, start)) = prepared else {
        return (Handled::Done, None);
    };
    let finished = match start {
        Err(skipped) => skipped,
        Ok(started) => match run_body(started, &stop).await {
            Some(finished) => finished,
            None => return (Handled::Abandoned, None),
        },
    };
    // Boxed: its state is only needed once the test is over.
    match Box::pin(outcome::test_finished(&app, case.as_ref(), *finished, &abandon)).await {
        outcome::Published::Out(delivery) => (Handled::Done, Some(delivery)),
        outcome::Published::NotSent => (Handled::Done, None),
        // Not committed: it runs again (after a restart or when its partition moves).
        outcome::Published::Failed => (Handled::Abandoned, None),
    }
}

/// A pending test's case, and its body ready to run or its verdict already (skipped).
type Prepared = (Arc<dyn RegisteredCase>, Result<runner::Started, Box<runner::Finished>>);

/// Decodes the execution and prepares it; `None` when it is dropped (malformed, unknown case) or was reported
/// already.
fn prepare(app: &LiveCheck, received: &Received, reported: Option<&Reported>) -> Option<Prepared> {
    let metrics = &app.shared.metrics;
    metrics.tests_received.inc();
    if super::bus::too_large(app, received, "pending-test") {
        return None;
    }
    let message = &received.message;
    let execution: RawExecution = match serde_json::from_slice(&message.value) {
        Ok(execution) => execution,
        Err(error) => {
            metrics.tests_malformed.inc();
            tracing::warn!(%error, key = ?message.key, "dropping a pending test that does not decode");
            super::dead_letter::copy(app, received, super::dead_letter::MALFORMED, &error.to_string());
            return None;
        }
    };
    if reported.is_some_and(|r| r.contains(&execution.id, execution.timestamp)) {
        metrics.tests_redelivered.inc();
        app.shared.router.already_reported(&execution.id, execution.timestamp);
        tracing::debug!(test_id = %execution.id, "not running again an execution that has a report");
        return None;
    }
    let Some(case) = app.registry.get(&execution.case_name) else {
        metrics.tests_unknown_case.inc();
        if metrics.first_time(&format!("unknown case {}", execution.case_name)) {
            tracing::warn!(case = %execution.case_name, "dropping tests of an unknown case (logged once per case)");
        }
        return None;
    };
    let start = runner::start(case.as_ref(), execution);
    Some((case, start))
}

/// Runs the body to its verdict, or `None` if shutdown interrupted it (no verdict: the execution is not
/// committed and runs again after a restart).
async fn run_body(mut started: runner::Started, shutdown: &CancellationToken) -> Option<Box<runner::Finished>> {
    let result = tokio::select! {
        result = &mut started.body => result,
        _ = shutdown.cancelled() => {
            started.abandon();
            return None;
        }
    };
    Some(Box::new(started.conclude(result)))
}
