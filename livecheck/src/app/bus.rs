//! Handling one message of the bus: a signal for some test.

use std::{borrow::Cow, sync::Arc, time::Duration};

use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::time::Instant;

use super::LiveCheck;
use crate::{
    runner::{Arrival, BusPosition, Routed},
    transport::Received,
};

/// A `SignalEvent` read in place from the message bytes.
#[derive(Deserialize)]
struct SignalEventRef<'a> {
    #[serde(borrow)]
    signal_name: Cow<'a, str>,
    #[serde(borrow)]
    case_name: Cow<'a, str>,
    #[serde(borrow)]
    key: Cow<'a, str>,
    #[serde(borrow, default)]
    value: Option<&'a RawValue>,
    #[serde(borrow, default)]
    service_version: Option<Cow<'a, str>>,
}

/// Routes the signal in `received`, read at `position`, to its test.
pub(crate) fn handle(app: &LiveCheck, received: &Received, position: BusPosition) {
    let metrics = &app.shared.metrics;
    metrics.signals_received.inc();
    if too_large(app, received, "signal") {
        return;
    }
    let event: SignalEventRef<'_> = match serde_json::from_slice(&received.message.value) {
        Ok(event) => event,
        Err(error) => {
            metrics.signals_malformed.inc();
            if metrics.first_time("malformed signal") {
                tracing::warn!(%error, "dropping a bus message that is not a signal (logged once)");
            }
            super::dead_letter::copy(app, received, super::dead_letter::MALFORMED, &error.to_string());
            return;
        }
    };
    let Some(case) = app.registry.get(&event.case_name) else {
        metrics.signals_unknown_case.inc();
        if metrics.first_time(&format!("signal of unknown case {}", event.case_name)) {
            tracing::warn!(case = %event.case_name, "dropping signals of an unknown case (logged once per case)");
        }
        return;
    };
    let core = case.core();
    let Some(index) = core.signal_index(&event.signal_name) else {
        metrics.signals_unknown_name.inc();
        if metrics.first_time(&format!("unknown signal {}/{}", event.case_name, event.signal_name)) {
            tracing::warn!(case = %event.case_name, signal = %event.signal_name, "dropping an unknown signal (logged once per name)");
        }
        return;
    };
    let test = app.read_test_headers(&received.message.headers);
    // A signal held for a test that has not started is kept until that test expires, at most `test_expires`.
    let now_wall = app.shared.clock.now();
    let keep = test
        .as_ref()
        .and_then(|t| (t.expires - now_wall).to_std().ok())
        .map_or(core.settings.test_expires, |left| left.min(core.settings.test_expires));
    let expires = Instant::now() + keep.min(Duration::from_secs(100 * 365 * 24 * 3600));
    let arrival = Arrival {
        key: &event.key,
        timestamp: test.map(|t| t.timestamp),
        case: &core.name,
        index,
        value: event.value.map_or_else(null, RawValue::to_owned),
        expires,
        position,
        version: event.service_version.as_deref().and_then(crate::wire::valid_service_version).map(Arc::from),
    };
    match app.shared.router.route(arrival) {
        Routed::Delivered { duplicate: false } => {}
        Routed::Delivered { duplicate: true } => {
            metrics.signals_duplicate.inc();
            core.health().signal_duplicate(index);
        }
        Routed::Early { evicted } => {
            metrics.signals_evicted.add(evicted as u64);
            if evicted > 0 && metrics.first_time("early signal evicted") {
                tracing::warn!("the limit of signals held for tests not yet started was reached; dropping the oldest (logged once)");
            }
        }
        Routed::Stale => metrics.signals_stale.inc(),
        Routed::Late => {
            metrics.signals_late.inc();
            core.health().signal_late(index);
        }
    }
}

fn null() -> Box<RawValue> {
    RawValue::from_string("null".to_owned()).expect("`null` is valid JSON")
}

/// Whether the message is over the instance's message size limit; such a message is counted, logged (once) and
/// copied to the dead letters.
pub(crate) fn too_large(app: &LiveCheck, received: &Received, what: &str) -> bool {
    let (limit, bytes) = (app.shared.config.max_message_bytes, received.message.value.len());
    if bytes <= limit {
        return false;
    }
    let metrics = &app.shared.metrics;
    metrics.messages_too_large.inc();
    if metrics.first_time("message too large") {
        tracing::warn!(bytes, limit, "dropping a {what} message over the size limit (logged once)");
    }
    let error = format!("{bytes} bytes, over the limit of {limit}");
    super::dead_letter::copy(app, received, super::dead_letter::TOO_LARGE, &error);
    true
}
