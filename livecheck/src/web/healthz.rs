//! `GET /healthz`: whether the instance itself works — its transport answers and its consumers (its group member
//! for tests and signals, the app's agents and tables) still run — and whether it is the leader. A consumer that
//! stopped for good (its log deleted) makes it 503, naming the consumer and why.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use axum::{extract::State, http::StatusCode, Json};
use serde::Serialize;

use super::server::Instance;
use crate::app::StoppedConsumer;

/// How long the transport may take to answer the health check's question (the end offsets of the pending-tests
/// stream) before it counts as unreachable.
const TRANSPORT_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long an answer of the transport is reused by the next health checks.
const PROBE_FRESH_FOR: Duration = Duration::from_secs(1);
/// How long one probe may run in the background (a Kafka end-offsets query opens a consumer on a blocking thread);
/// no second one starts meanwhile.
const PROBE_RUNS_AT_MOST: Duration = Duration::from_secs(30);

/// The health check's question to the transport, asked by one task at a time: probes by many callers, or while the
/// broker is slow, do not pile up (the work behind a timed-out query goes on until it ends).
#[derive(Default)]
pub(crate) struct TransportProbe {
    running: AtomicBool,
    last: Mutex<Option<(Instant, bool)>>,
    done: tokio::sync::Notify,
}

impl TransportProbe {
    /// Whether the transport answered: a fresh answer if there is one, else the answer of the probe running now
    /// (started here if none runs), waiting at most [`TRANSPORT_PROBE_TIMEOUT`].
    async fn reachable(self: &Arc<Self>, app: &crate::LiveCheck) -> bool {
        if let Some(answer) = self.fresh() {
            return answer;
        }
        let done = self.done.notified();
        if !self.running.swap(true, Ordering::SeqCst) {
            let (probe, transport, stream) = (self.clone(), app.transport().clone(), app.streams().pending.clone());
            tokio::spawn(async move {
                let answer = match tokio::time::timeout(PROBE_RUNS_AT_MOST, transport.end_offsets(&stream)).await {
                    Ok(Ok(_)) => true,
                    Ok(Err(error)) => {
                        tracing::debug!(error = %crate::error::with_causes(&error), "health check: the transport did not answer");
                        false
                    }
                    Err(_) => false,
                };
                *crate::sync::lock(&probe.last) = Some((Instant::now(), answer));
                probe.running.store(false, Ordering::SeqCst);
                probe.done.notify_waiters();
            });
        }
        match tokio::time::timeout(TRANSPORT_PROBE_TIMEOUT, done).await {
            Ok(()) => self.fresh().unwrap_or(false),
            Err(_) => {
                tracing::debug!(timeout = ?TRANSPORT_PROBE_TIMEOUT, "health check: the transport did not answer in time");
                false
            }
        }
    }

    fn fresh(&self) -> Option<bool> {
        crate::sync::lock(&self.last).filter(|(at, _)| at.elapsed() < PROBE_FRESH_FOR).map(|(_, answer)| answer)
    }
}

/// The health check's answer.
#[derive(Serialize)]
pub(super) struct Health {
    ok: bool,
    transport_reachable: bool,
    consumers_alive: bool,
    leader: bool,
    /// The consumers that stopped on their own, and why (left out while there are none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    consumers_stopped: Vec<StoppedConsumer>,
    /// Partitions of the group with tests or signals waiting and no member consuming them (the instance rejoins
    /// its group to heal that; it does not make the instance unhealthy).
    unowned_partitions: Vec<u32>,
}

/// 200 when the transport answers and every consumer runs, else 503; the same body either way.
pub(super) async fn healthz(State(instance): State<Arc<Instance>>) -> (StatusCode, Json<Health>) {
    let transport_reachable = instance.probe.reachable(&instance.app).await;
    let consumers_stopped = instance.app.shared.consumers.stopped();
    let consumers_alive = consumers_stopped.is_empty();
    let ok = transport_reachable && consumers_alive;
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let leader = instance.is_leader();
    let unowned_partitions = instance.app.group_health().unowned_partitions;
    (status, Json(Health { ok, transport_reachable, consumers_alive, leader, consumers_stopped, unowned_partitions }))
}
