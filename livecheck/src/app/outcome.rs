//! What happens after an execution or a suite reached a verdict: logs, health, reports, hooks.

use crate::{
    case::{HealthChange, RegisteredCase, SuiteFailure},
    runner::{Finished, Verdict},
    transport::{Delivery, Message},
    wire::{State, TestReport},
};

use super::LiveCheck;

/// Logs the execution — a PASS as one line at `info` (its steps at `debug`), any other outcome with its steps —
/// updates the case's health and publishes the report; returns where the report landed, when it was published.
pub(crate) async fn test_finished(app: &LiveCheck, case: &dyn RegisteredCase, finished: Finished) -> Option<Delivery> {
    let core = case.core();
    let report = &finished.report;
    let test = finished.test_id();
    let runtime = report.runtime.unwrap_or(0.0);
    let steps_seen = if finished.verdict.state().is_ok() {
        tracing::enabled!(tracing::Level::DEBUG)
    } else {
        tracing::enabled!(tracing::Level::ERROR)
    };
    let steps = match &finished.run {
        // Buffered step logs, formatted only when they will be seen (realtime ones were logged as they happened).
        Some(run) if steps_seen && !core.settings.realtime_logs => format!("\n{}", run.steps_text().trim_end()),
        _ => String::new(),
    };
    match &finished.verdict {
        Verdict::Pass => {
            let slowest = report.signal_latency.0.iter().max_by(|a, b| a.1.total_cmp(&b.1));
            match slowest {
                Some((signal, secs)) => {
                    tracing::info!("{}[{test}] PASS in {runtime:.3}s (slowest signal {signal}: {secs:.3}s)", core.name)
                }
                None => tracing::info!("{}[{test}] PASS in {runtime:.3}s", core.name),
            }
            if !steps.is_empty() {
                tracing::debug!("{}[{test}] steps:{steps}", core.name);
            }
        }
        Verdict::Skip(reason) => tracing::info!("{}[{test}] SKIP: {reason}", core.name),
        Verdict::Fail { message, location } => tracing::error!(
            "{}[{test}] FAIL in {runtime:.3}s at {}: {message}{steps}",
            core.name,
            location.as_deref().unwrap_or("?")
        ),
        Verdict::Error(message) => tracing::error!("{}[{test}] ERROR in {runtime:.3}s: {message}{steps}", core.name),
        Verdict::Timeout(message) => {
            tracing::error!("{}[{test}] TIMEOUT in {runtime:.3}s: {message}{steps}", core.name)
        }
    }

    let shared = &app.shared;
    shared.metrics.tests_finished.inc();
    let issued = finished.issued().unwrap_or_else(|| shared.clock.now());
    let change = core.health().test_finished(
        report.state,
        issued,
        report.runtime,
        tokio::time::Instant::now(),
        shared.clock.now(),
    );
    let delivery = publish(app, test, &report.case_name, report.state, finished.encode()).await;
    // The report is out: the signals the test was given are no longer needed.
    shared.router.settle(&finished.bus_positions);
    match change {
        HealthChange::Nothing => {}
        HealthChange::SuiteFailed(failure) => suite_failed(app, case, failure).await,
        HealthChange::Recovered => {
            tracing::info!("{}: recovered, status PASS", core.name);
            case.on_suite_pass().await;
        }
    }
    delivery
}

/// Records a suite failure; posts a suite report and calls the hook unless one was posted within
/// `state_transition_delay`.
pub(crate) async fn suite_failed(app: &LiveCheck, case: &dyn RegisteredCase, failure: SuiteFailure) {
    let core = case.core();
    let shared = &app.shared;
    shared.metrics.suite_failures.inc();
    let due = core.health().suite_failed(&failure, tokio::time::Instant::now(), shared.clock.now());
    if !due {
        tracing::warn!(
            "{}: suite {}: {} (already reported within state_transition_delay)",
            core.name,
            failure.state,
            failure.reason
        );
        return;
    }
    tracing::error!("{}: suite {}: {}", core.name, failure.state, failure.reason);
    let mut report = TestReport::new(&*core.name, failure.state, None);
    report.error = Some(failure.reason.clone());
    publish(app, &core.name, &core.name, failure.state, serde_json::to_vec(&report)).await;
    case.on_suite_fail(failure).await;
}

/// Publishes an encoded report keyed by `key` (the test id; the case name for suite reports).
async fn publish(
    app: &LiveCheck,
    key: &str,
    case: &str,
    state: State,
    encoded: serde_json::Result<Vec<u8>>,
) -> Option<Delivery> {
    let shared = &app.shared;
    if !shared.config.send_reports {
        shared.metrics.reports_suppressed.inc();
        return None;
    }
    let value = match encoded {
        Ok(value) => value,
        Err(error) => {
            shared.metrics.reports_failed.inc();
            tracing::error!(%error, %case, "a report could not be encoded");
            return None;
        }
    };
    let message = Message { key: Some(key.to_owned()), value, headers: Default::default() };
    match shared.transport.publish(&shared.streams.reports, message).await {
        Ok(delivery) => {
            shared.metrics.reports_published.inc();
            Some(delivery)
        }
        Err(error) => {
            shared.metrics.reports_failed.inc();
            tracing::error!(%error, %case, %state, "a report could not be published");
            None
        }
    }
}
