//! Handling one message of the bus: a signal for some test.

use std::time::Duration;

use tokio::time::Instant;

use super::{consumer::Handled, LiveCheck};
use crate::{runner::Routed, transport::Received, wire::SignalEvent};

pub(crate) fn handle(app: &LiveCheck, received: &Received) -> Handled {
    let metrics = &app.shared.metrics;
    metrics.signals_received.inc();
    let event: SignalEvent = match serde_json::from_slice(&received.message.value) {
        Ok(event) => event,
        Err(error) => {
            metrics.signals_malformed.inc();
            if metrics.first_time("malformed signal") {
                tracing::warn!(%error, "dropping a bus message that is not a signal (logged once)");
            }
            return Handled::Done;
        }
    };
    let Some(case) = app.registry.get(&event.case_name) else {
        metrics.signals_unknown_case.inc();
        if metrics.first_time(&format!("signal of unknown case {}", event.case_name)) {
            tracing::warn!(case = %event.case_name, "dropping signals of an unknown case (logged once per case)");
        }
        return Handled::Done;
    };
    let core = case.core();
    let Some(index) = core.signal_index(&event.signal_name) else {
        metrics.signals_unknown_name.inc();
        if metrics.first_time(&format!("unknown signal {}/{}", event.case_name, event.signal_name)) {
            tracing::warn!(case = %event.case_name, signal = %event.signal_name, "dropping an unknown signal (logged once per name)");
        }
        return Handled::Done;
    };
    let test = app.test_from_headers(&received.message.headers);
    // A signal held for a test that has not started is kept until that test expires, at most `test_expires`.
    let now_wall = app.shared.clock.now();
    let keep = test
        .as_ref()
        .and_then(|t| (t.expires() - now_wall).to_std().ok())
        .map_or(core.settings.test_expires, |left| left.min(core.settings.test_expires));
    let expires = Instant::now() + keep.min(Duration::from_secs(100 * 365 * 24 * 3600));
    match app.shared.router.route(
        &event.key,
        test.map(|t| t.timestamp()),
        &core.name,
        index,
        event.value,
        expires,
    ) {
        Routed::Delivered => {}
        Routed::Early { evicted } => {
            metrics.signals_evicted.add(evicted as u64);
            if evicted > 0 && metrics.first_time("early signal evicted") {
                tracing::warn!("the limit of signals held for tests not yet started was reached; dropping the oldest (logged once)");
            }
        }
        Routed::Stale => metrics.signals_stale.inc(),
        Routed::Late => metrics.signals_late.inc(),
    }
    Handled::Done
}
