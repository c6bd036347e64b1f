//! The instance's timers: stall detection, fake traffic and statistics.

use std::{sync::Arc, time::Duration};

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::{outcome, LiveCheck};
use crate::{
    case::{RegisteredCase, SuiteFailure},
    transport::Leadership,
    wire::State,
    Error,
};

/// Raises a STALL suite failure when no test arrived for `warn_stalled_after`, once per that period. Sleeps
/// exactly until the next moment a stall is possible; no polling.
pub(crate) async fn watch_stalls(app: LiveCheck, case: Arc<dyn RegisteredCase>, shutdown: CancellationToken) {
    loop {
        let next = case.core().health().next_stall_check();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep_until(next) => {}
        }
        let stalled = case.core().health().check_stalled(tokio::time::Instant::now());
        if let Some(failure) = stalled {
            outcome::suite_failed(&app, case.as_ref(), failure).await;
        }
    }
}

/// Calls `make_fake_request` every `frequency` while this instance is the leader.
pub(crate) async fn make_fake_requests(
    app: LiveCheck,
    case: Arc<dyn RegisteredCase>,
    frequency: Duration,
    leadership: Arc<dyn Leadership>,
    shutdown: CancellationToken,
) {
    let frequency = frequency.max(Duration::from_millis(1));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + frequency, frequency);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let metrics = &app.shared.metrics;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if !leadership.is_leader() {
            continue;
        }
        metrics.fake_requests.inc();
        let result = tokio::select! {
            _ = shutdown.cancelled() => return,
            result = case.make_fake_request() => result,
        };
        let Err(error) = result else { continue };
        metrics.fake_requests_failed.inc();
        let down = error.chain().find_map(|cause| match cause.downcast_ref::<Error>() {
            Some(Error::ServiceDown { reason }) => Some(reason.clone()),
            _ => None,
        });
        match down {
            Some(reason) => {
                let failure = SuiteFailure {
                    case_name: case.core().name.to_string(),
                    state: State::Fail,
                    reason: format!("service down: {reason}"),
                };
                outcome::suite_failed(&app, case.as_ref(), failure).await;
            }
            None => {
                tracing::warn!(case = %case.core().name, error = %format!("{error:#}"), "fake request failed")
            }
        }
    }
}

/// Every `stats_interval`: logs each case's counters and medians, and drops held signals whose time is up.
pub(crate) async fn sample_stats(app: LiveCheck, shutdown: CancellationToken) {
    let every = app.shared.config.stats_interval;
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let expired = app.shared.router.sweep(tokio::time::Instant::now());
        app.shared.metrics.signals_expired.add(expired as u64);
        for case in app.registry.all() {
            let health = case.core().health().snapshot();
            let secs = |m: Option<f64>| m.map_or_else(|| "-".to_owned(), |s| format!("{s:.3}s"));
            tracing::info!(
                "{}: status {}; pass {} fail {} error {} timeout {} skip {}; consecutive failures {}; \
                 median runtime {}, time between tests {}, lateness {}",
                case.core().name,
                health.status,
                health.count(State::Pass),
                health.count(State::Fail),
                health.count(State::Error),
                health.count(State::Timeout),
                health.count(State::Skip),
                health.consecutive_failures,
                secs(health.runtime_median),
                secs(health.frequency_median),
                secs(health.latency_median),
            );
        }
    }
}
