//! Handling one message of the pending-tests stream.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{consumer::Handled, outcome, LiveCheck};
use crate::{
    case::{RegisteredCase, SuiteFailure},
    context::HEADER_EXECUTION_SIGNATURE,
    runner,
    transport::{Delivery, Received},
    wire::RawExecution,
};

/// Handles one pending test, unless it has a report already or is running now; `stop` interrupts it without a
/// verdict (shutdown, or its partition given to another member), `abandon` makes it give up publishing its report
/// (its partition given to another member, or the shutdown timeout passed). Every waiting test's task is this
/// future, so it keeps only small state across the wait (the body itself is boxed; the report is built after).
pub(crate) async fn handle(
    app: LiveCheck,
    received: Received,
    stop: CancellationToken,
    abandon: CancellationToken,
) -> (Handled, Option<Delivery>) {
    let prepared = prepare(&app, &received);
    // The message's bytes are not kept across the wait.
    drop(received);
    let Some((case, start, skew)) = prepared else {
        return (Handled::Done, None);
    };
    if let runner::Start::Skipped(skipped) = &start {
        // Before anything is awaited: a copy arriving meanwhile is not skipped (and reported) a second time.
        remember_reported(&app, skipped.identity());
    }
    if let Some(failure) = skew {
        outcome::suite_failed(&app, case.as_ref(), failure).await;
    }
    let finished = match start {
        runner::Start::Copy => {
            app.shared.metrics.tests_redelivered.inc();
            tracing::debug!(case = %case.core().name, "not running a copy of an execution running now");
            return (Handled::Done, None);
        }
        runner::Start::Skipped(skipped) => skipped,
        runner::Start::Run(started) => match run_body(&app, started, &stop).await {
            Some(finished) => finished,
            None => return (Handled::Abandoned, None),
        },
    };
    let identity = finished.identity();
    // Boxed: its state is only needed once the test is over.
    let published = Box::pin(outcome::test_finished(&app, case.as_ref(), *finished, &abandon)).await;
    match published {
        outcome::Published::Out(delivery) => (Handled::Done, Some(delivery)),
        outcome::Published::NotSent => (Handled::Done, None),
        // Not committed: it runs again (after a restart or when its partition moves), so a copy arriving from
        // now on may run it.
        outcome::Published::Failed => {
            if let Some((id, issued, _)) = identity {
                app.shared.reported.forget(&id, issued);
                app.shared.router.forget_finished(&id, issued);
            }
            (Handled::Abandoned, None)
        }
    }
}

/// Remembers an execution that has its verdict, so that copies of it are not run again. Done as soon as the
/// verdict is known — before the router lets the execution go and before its report is published — so that a copy
/// arriving at any moment is either running-now or reported, never neither.
fn remember_reported(app: &LiveCheck, identity: Option<runner::Identity>) {
    let Some((id, issued, expires)) = identity else { return };
    let shared = &app.shared;
    let forgotten = shared.reported.remember(&id, issued, expires, shared.clock.now()).forgotten;
    if forgotten > 0 {
        shared.metrics.reports_forgotten.add(forgotten as u64);
        if shared.metrics.first_time("reports forgotten") {
            tracing::warn!(
                forgotten,
                "more reported executions than remembered_reports allows: the ones expiring first are forgotten, \
                 a copy of one arriving later would run again (logged once; counted in reports_forgotten)"
            );
        }
    }
}

/// A pending test's case, what to do with it, and the clock-skew suite failure its arrival makes, if any.
type Prepared = (Arc<dyn RegisteredCase>, runner::Start, Option<SuiteFailure>);

/// Checks, decodes and prepares the execution; `None` when it is refused (unsigned), dropped (malformed, unknown
/// case) or was reported already.
fn prepare(app: &LiveCheck, received: &Received) -> Option<Prepared> {
    let metrics = &app.shared.metrics;
    metrics.tests_received.inc();
    if super::bus::too_large(app, received, "pending-test") {
        return None;
    }
    if !signed_if_required(app, received) {
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
    // The key is not signed: a signed execution stored under another key (another partition, so maybe another
    // instance, which would not know it ran) is a replay made to look new.
    if app.shared.signer.is_some() && message.key.as_deref() != Some(execution.id.as_str()) {
        refuse(app, received, &metrics.tests_bad_signature, "is stored under another key than its id");
        return None;
    }
    let Some(case) = app.registry.get(&execution.case_name) else {
        metrics.tests_unknown_case.inc();
        if metrics.first_time(&format!("unknown case {}", execution.case_name)) {
            tracing::warn!(case = %execution.case_name, "dropping tests of an unknown case (logged once per case)");
        }
        return None;
    };
    // Running now, then reported: in this order, since an execution is remembered as reported before it stops
    // running (see `remember_reported`), a copy is always recognised as one or the other.
    if app.shared.router.is_executing(&execution.id, execution.timestamp, &case.core().name) {
        return Some((case, runner::Start::Copy, None));
    }
    if app.shared.reported.contains(&execution.id, execution.timestamp, app.shared.clock.now()) {
        metrics.tests_redelivered.inc();
        app.shared.router.already_reported(&execution.id, execution.timestamp);
        tracing::debug!(test_id = %execution.id, "not running again an execution that has a report");
        return None;
    }
    let now = app.shared.clock.now();
    let skew = case.core().health().execution_arrived(execution.timestamp, execution.expires, now);
    let start = runner::start(case.as_ref(), execution, &app.shared.router);
    Some((case, start, skew))
}

/// Whether the pending test may run as far as signing goes: always when the app does not sign; when it does, only
/// with an execution signature made with either secret over the message's value (anything else is refused before
/// it is decoded: never run, never in a case's health, counted in `tests_unsigned` / `tests_bad_signature`, the
/// first of each logged).
fn signed_if_required(app: &LiveCheck, received: &Received) -> bool {
    let Some(signer) = &app.shared.signer else { return true };
    let message = &received.message;
    let metrics = &app.shared.metrics;
    let (counter, cause) = match message.headers.get(HEADER_EXECUTION_SIGNATURE) {
        None => (&metrics.tests_unsigned, "has no execution signature"),
        Some(signature) if signer.verify_execution(&message.value, signature).is_none() => {
            (&metrics.tests_bad_signature, "has an execution signature that matches neither secret")
        }
        Some(_) => return true,
    };
    refuse(app, received, counter, cause);
    false
}

/// Counts and logs (once per cause at `warn`) a pending test refused for `cause`.
fn refuse(app: &LiveCheck, received: &Received, counter: &crate::metrics::Counter, cause: &'static str) {
    counter.inc();
    let key = received.message.key.as_deref();
    if app.shared.metrics.first_time(cause) {
        tracing::warn!(
            key = ?key,
            partition = received.partition,
            offset = received.offset,
            "refusing a pending test that {cause}: not run (logged once per cause; counted in tests_unsigned / \
             tests_bad_signature)"
        );
    } else {
        tracing::debug!(key = ?key, "refusing a pending test that {cause}");
    }
}

/// Runs the body to its verdict, or `None` if shutdown interrupted it (no verdict: the execution is not
/// committed and runs again after a restart).
async fn run_body(
    app: &LiveCheck,
    mut started: runner::Started,
    shutdown: &CancellationToken,
) -> Option<Box<runner::Finished>> {
    let context = started.context().clone();
    app.shared.traces.started(&context);
    let result = tokio::select! {
        result = &mut started.body => result,
        _ = shutdown.cancelled() => {
            app.shared.traces.ended(&context);
            started.abandon(&app.shared.router);
            return None;
        }
    };
    app.shared.traces.ended(&context);
    remember_reported(app, Some(started.identity()));
    Some(Box::new(started.conclude(&app.shared.router, result)))
}
