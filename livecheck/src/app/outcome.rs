//! What happens after an execution or a suite reached a verdict: logs, health, reports, hooks.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::{
    backoff::Backoff,
    case::{HealthChange, RegisteredCase, SuiteFailure, SuiteFailureKind},
    error::with_causes,
    history::{signal_outcomes, FinishedExecution},
    observe::{ExecutionFinished, HealthEvent},
    runner::{Finished, Verdict},
    transport::{Delivery, Message},
    wire::{State, TestReport},
};

use super::LiveCheck;

/// How long a report that fails to publish on a transient error (a full disk, a broker away) is retried (a
/// stopping instance retries it until its `shutdown_timeout` at most).
const REPORT_RETRY_FOR: Duration = Duration::from_secs(600);

/// What became of a report.
pub(crate) enum Published {
    /// On the report stream, there.
    Out(Delivery),
    /// Not sent: reports are off, or it could not be encoded.
    NotSent,
    /// Could not be published (a lasting error, retries used up, or given up meanwhile): the execution must not be
    /// committed, so that it runs again.
    Failed,
}

/// Logs the execution as one line — a PASS at `info`, a FAIL (message and location), ERROR or TIMEOUT (the missing
/// signal) at `error`, its steps at `debug` (they stay in the record and the report's traceback) — updates the
/// case's health and publishes the report, retrying on transient errors until `abandon` (its partition revoked, or
/// the shutdown timeout passed). A report given up while the instance stops is recorded as lost.
pub(crate) async fn test_finished(
    app: &LiveCheck,
    case: &dyn RegisteredCase,
    finished: Finished,
    abandon: &CancellationToken,
) -> Published {
    let core = case.core();
    let report = &finished.report;
    let test = finished.test_id();
    let runtime = report.runtime.unwrap_or(0.0);
    let steps = match &finished.run {
        // Buffered step logs, formatted only when they will be seen (realtime ones were logged as they happened).
        Some(run) if tracing::enabled!(tracing::Level::DEBUG) && !core.settings.realtime_logs => {
            format!("\n{}", run.steps_text().trim_end())
        }
        _ => String::new(),
    };
    // The case, test id, state and runtime are fields too, for JSON logs and filters; the message reads alone.
    let (case_name, state) = (&*core.name, report.state.as_str());
    // A TIMEOUT while this instance lags behind its streams may be its own fault: unknown, not the service's.
    let unknown = matches!(finished.verdict, Verdict::Timeout { .. }) && app.shared.lag.lagging().is_some();
    match &finished.verdict {
        Verdict::Pass => {
            let slowest = report.signal_latency.0.iter().max_by(|a, b| a.1.total_cmp(&b.1));
            match slowest {
                Some((signal, secs)) => tracing::info!(
                    case = case_name,
                    test,
                    state,
                    runtime,
                    "{case_name}[{test}] PASS in {runtime:.3}s (slowest signal {signal}: {secs:.3}s)"
                ),
                None => {
                    tracing::info!(case = case_name, test, state, runtime, "{case_name}[{test}] PASS in {runtime:.3}s")
                }
            }
        }
        Verdict::Degraded(over) => {
            let over = over.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
            tracing::warn!(
                case = case_name, test, state, runtime, over_budget = %over,
                "{case_name}[{test}] DEGRADED in {runtime:.3}s, over budget: {over}"
            )
        }
        Verdict::Skip(reason) => {
            tracing::info!(case = case_name, test, state, reason = %reason, "{case_name}[{test}] SKIP: {reason}")
        }
        Verdict::Fail { message, location } => {
            let location = location.as_deref().unwrap_or("?");
            tracing::error!(
                case = case_name, test, state, runtime, error = %message, location,
                "{case_name}[{test}] FAIL in {runtime:.3}s at {location}: {message}"
            )
        }
        Verdict::Error(message) => tracing::error!(
            case = case_name, test, state, runtime, error = %message,
            "{case_name}[{test}] ERROR in {runtime:.3}s: {message}"
        ),
        Verdict::Timeout { message, signal } if unknown => tracing::warn!(
            case = case_name, test, state, runtime, signal, error = %message, unknown,
            "{case_name}[{test}] TIMEOUT in {runtime:.3}s, missing signal {signal}, while this instance lags behind \
             its streams: unknown, kept out of the case's health"
        ),
        Verdict::Timeout { message, signal } => tracing::error!(
            case = case_name, test, state, runtime, signal, error = %message,
            "{case_name}[{test}] TIMEOUT in {runtime:.3}s, missing signal {signal}: {message}"
        ),
    }
    if !steps.is_empty() {
        tracing::debug!(case = case_name, test, "{case_name}[{test}] steps:{steps}");
    }

    let shared = &app.shared;
    shared.metrics.tests_finished.inc();
    let now_wall = shared.clock.now();
    let declared = core.signal_names.get().map_or(&[][..], Vec::as_slice);
    let signals = signal_outcomes(&finished, declared, now_wall);
    // Kept for the API (its steps are taken out of the run: logged above already).
    if core.history().capacity() > 0 {
        if let Some(kept) = FinishedExecution::new(&finished, now_wall) {
            core.history().push(kept);
        }
    }
    let issued = finished.issued().unwrap_or(now_wall);
    shared.observers.execution_finished(&ExecutionFinished {
        case: &core.name,
        declared_signals: declared,
        test_id: test,
        issued_at: issued,
        finished_at: now_wall,
        report,
        trace_id: finished.trace_id(),
        by_hand: finished.by_hand(),
        signals: &signals,
        service_version: finished.service_version(),
    });
    let now = tokio::time::Instant::now();
    // A test started by hand tells nothing about the traffic: out of the health (and the alerts) unless asked.
    let change = if finished.by_hand() && !shared.config.count_tests_by_hand {
        tracing::debug!(case = case_name, test, "{case_name}[{test}] was started by hand: not counted in the health");
        HealthChange::Nothing
    } else if unknown {
        core.health().unknown_verdict(report.state);
        HealthChange::Nothing
    } else {
        core.health().test_finished(report.state, issued, report.runtime, &signals, now, now_wall)
    };
    let published = publish(app, test, &report.case_name, report.state, finished.encode(), abandon).await;
    if !matches!(published, Published::Failed) {
        // The report is out: the signals the test was given are no longer needed.
        shared.router.settle(&finished.bus_positions);
    } else if shared.stopping.is_stopping() {
        shared.stopping.report_lost(test);
    }
    match change {
        HealthChange::Nothing => {}
        HealthChange::SuiteFailed(failures) => {
            for failure in failures {
                suite_failed(app, case, failure).await;
            }
        }
        HealthChange::Recovered(kind) => {
            let name = &*core.name;
            tracing::info!(case = name, kind = kind.as_str(), "{name}: recovered from {kind}, status PASS");
            let at = shared.clock.now();
            shared.observers.health_changed(&HealthEvent::Recovered { case: name, from: kind, at });
            case.on_suite_pass().await;
        }
    }
    published
}

/// Records a suite failure. When its cause starts (whatever other cause came before it), or it was last reported
/// more than `state_transition_delay` ago (a reminder): logs it at `error`, alerts, posts a suite report and calls
/// the hook. Otherwise it only updates the case's state, logged at `debug` (one per failing test or stall check).
pub(crate) async fn suite_failed(app: &LiveCheck, case: &dyn RegisteredCase, failure: SuiteFailure) {
    let core = case.core();
    let shared = &app.shared;
    shared.metrics.suite_failures.inc();
    let due = core.health().suite_failed(&failure, tokio::time::Instant::now());
    shared.observers.health_changed(&HealthEvent::SuiteFailed { failure: &failure, reported: due });
    let (name, kind, state, reason) = (&*core.name, failure.kind, failure.state, &failure.reason);
    if !due {
        tracing::debug!(
            case = name,
            kind = kind.as_str(),
            %state,
            "{name}: still {kind}: {reason} (reported at most once per state_transition_delay)"
        );
        return;
    }
    match kind {
        // The reason starts with "service down: ".
        SuiteFailureKind::ServiceDown => {
            tracing::error!(case = name, kind = kind.as_str(), %state, "{name}: {reason}")
        }
        SuiteFailureKind::Stall => {
            tracing::error!(case = name, kind = kind.as_str(), %state, "{name}: STALL: {reason}")
        }
        // The reason starts with "clock skew: ".
        SuiteFailureKind::ClockSkew => {
            tracing::error!(case = name, kind = kind.as_str(), %state, "{name}: suite {state}, {reason}")
        }
        SuiteFailureKind::DegradedRate => {
            tracing::warn!(case = name, kind = kind.as_str(), %state, "{name}: suite {state} ({kind}): {reason}")
        }
        SuiteFailureKind::ConsecutiveFailures | SuiteFailureKind::FailureRate | SuiteFailureKind::PassRate => {
            tracing::error!(case = name, kind = kind.as_str(), %state, "{name}: suite {state} ({kind}): {reason}")
        }
    }
    let mut report = TestReport::new(&*core.name, failure.state, None);
    report.error = Some(failure.reason.clone());
    // Suite reports are retried too; a stopping instance gives them up at its shutdown timeout.
    let stopping = &shared.stopping;
    let published =
        publish(app, &core.name, &core.name, failure.state, serde_json::to_vec(&report), &stopping.give_up).await;
    if matches!(published, Published::Failed) && stopping.is_stopping() {
        stopping.suite_report_lost(name, kind);
    }
    case.on_suite_fail(failure).await;
}

/// Publishes an encoded report keyed by `key` (the test id; the case name for suite reports). A transient error
/// (retriable: a full disk, a broker away) is retried with backoff for up to [`REPORT_RETRY_FOR`]; `give_up` ends
/// the retries, and the instance giving up at its shutdown timeout also a publish that does not answer.
async fn publish(
    app: &LiveCheck,
    key: &str,
    case: &str,
    state: State,
    encoded: serde_json::Result<Vec<u8>>,
    give_up: &CancellationToken,
) -> Published {
    let shared = &app.shared;
    if !shared.config.send_reports {
        shared.metrics.reports_suppressed.inc();
        return Published::NotSent;
    }
    let value = match encoded {
        Ok(value) => value,
        Err(error) => {
            shared.metrics.reports_failed.inc();
            tracing::error!(%error, %case, "a report could not be encoded");
            return Published::NotSent;
        }
    };
    let message = Message { key: Some(key.to_owned()), value, headers: Default::default() };
    let retry_until = tokio::time::Instant::now() + REPORT_RETRY_FOR;
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    let mut attempts = 0u32;
    let given_up = |attempts: u32| {
        shared.metrics.reports_failed.inc();
        // A stopping instance sums these up in one line (see `Stopping::log_losses`).
        if shared.stopping.is_stopping() {
            tracing::debug!(%case, key, attempts, "gave up publishing a report: the instance stops");
        } else {
            tracing::warn!(%case, key, attempts, "gave up publishing a report: its partition was revoked; the \
                           execution runs again");
        }
        Published::Failed
    };
    loop {
        attempts += 1;
        let publishing = shared.transport.publish(&shared.streams.reports, message.clone());
        // A publish under way is abandoned only when the instance gives up at its shutdown timeout (its transport
        // goes away with the process); otherwise its outcome is waited for, so that a report does not land after
        // another member ran the execution again.
        let published = tokio::select! {
            biased;
            _ = shared.stopping.give_up.cancelled() => return given_up(attempts),
            published = publishing => published,
        };
        let error = match published {
            Ok(delivery) => {
                shared.metrics.reports_published.inc();
                if attempts > 1 {
                    tracing::info!(%case, %state, key, attempts, "a report was published after retries");
                }
                return Published::Out(delivery);
            }
            Err(error) => error,
        };
        if !error.is_retriable() || tokio::time::Instant::now() + backoff.peek() > retry_until {
            shared.metrics.reports_failed.inc();
            tracing::error!(error = %with_causes(&error), %case, %state, key, attempts, "a report could not be published; the execution \
                             is not committed and runs again after a restart");
            return Published::Failed;
        }
        shared.metrics.reports_retried.inc();
        if attempts == 1 {
            tracing::warn!(error = %with_causes(&error), %case, %state, key, "publishing a report failed; retrying with backoff");
        }
        tokio::select! {
            _ = give_up.cancelled() => return given_up(attempts),
            _ = tokio::time::sleep(backoff.next()) => {}
        }
    }
}
