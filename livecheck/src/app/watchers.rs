//! The instance's timers: stall detection, fake traffic and statistics.

use std::{sync::Arc, time::Duration};

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::{outcome, LiveCheck};
use crate::{
    case::{CaseStatus, RegisteredCase},
    transport::Leadership,
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
        let stalled = case.core().health().check_stalled(tokio::time::Instant::now(), app.shared.clock.now());
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
        let name = &*case.core().name;
        let error = match result {
            Ok(()) => {
                if let Some(down) = case.core().health().service_reachable() {
                    let since = crate::wire::timestamp::to_json_text(&down.since);
                    tracing::info!(case = name, "{name}: service reachable again (down since {since})");
                }
                continue;
            }
            Err(error) => error,
        };
        metrics.fake_requests_failed.inc();
        let down = error.chain().find_map(|cause| match cause.downcast_ref::<Error>() {
            Some(Error::ServiceDown { url, reason }) => Some((url.clone(), reason.clone())),
            _ => None,
        });
        match down {
            Some((url, reason)) => {
                let failure = case.core().health().service_down(url, reason, app.shared.clock.now());
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
        for status in app.case_statuses() {
            log_stats(&status);
        }
    }
}

/// One line per case, its fields named as in the JSON API:
/// `case stats case=test_order status=PASS failing=false counts={"PASS":19,"FAIL":1,"ERROR":0,"TIMEOUT":0,"SKIP":0}
/// consecutive_failures=0 total_failures=1 pass_rate=0.950 pass_rate_last=20 runtime_median_seconds=0.040
/// interval_median_seconds=1.000 lateness_median_seconds=0.000 service_down=null stall_quiet_seconds=null
/// in_flight=2 oldest_in_flight_seconds=12.500`: tests waiting out a long timeout show as in flight while the status
/// still says PASS.
fn log_stats(status: &CaseStatus) {
    let (name, health) = (&status.name, &status.health);
    let seconds = |value: Option<f64>| value.map_or_else(|| "null".to_owned(), |s| format!("{s:.3}"));
    let counts = serde_json::to_string(&health.counts).unwrap_or_default();
    // Quoted: the error has spaces.
    let service_down = match &health.service_down {
        Some(down) => match &down.url {
            Some(url) => format!("{:?}", format!("{url}: {}", down.last_error)),
            None => format!("{:?}", down.last_error),
        },
        None => "null".to_owned(),
    };
    tracing::info!(
        case = name,
        status = %health.status,
        failing = health.failing,
        counts = %counts,
        consecutive_failures = health.consecutive_failures,
        total_failures = health.total_failures,
        pass_rate = %seconds(health.pass_rate.rate),
        pass_rate_last = health.pass_rate.last,
        runtime_median_seconds = %seconds(health.runtime_median_seconds),
        interval_median_seconds = %seconds(health.interval_median_seconds),
        lateness_median_seconds = %seconds(health.lateness_median_seconds),
        service_down = %service_down,
        stall_quiet_seconds = %seconds(health.stall.as_ref().map(|stall| stall.quiet_seconds)),
        in_flight = status.in_flight,
        oldest_in_flight_seconds = %seconds(status.oldest_in_flight_seconds),
        "case stats"
    );
}
