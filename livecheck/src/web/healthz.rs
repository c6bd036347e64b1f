//! `GET /healthz`: whether the instance itself works — its transport answers and its group member (the consumer
//! of tests and signals) still runs — and whether it is the leader.

use std::{
    future::Future,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use axum::{extract::State, http::StatusCode, Json};
use serde::Serialize;

use super::server::Instance;

/// How long the transport may take to answer the health check's question (the end offsets of the pending-tests
/// stream) before it counts as unreachable.
const TRANSPORT_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether a task still runs: false once it ended, however (returned, panicked, or dropped).
#[derive(Clone, Debug)]
pub(crate) struct TaskAlive(Arc<AtomicBool>);

/// Marks its task ended when dropped.
struct EndsTask(Arc<AtomicBool>);

impl Drop for EndsTask {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

impl TaskAlive {
    /// `task`, watched: the flag says whether it still runs.
    pub(crate) fn watch<F: Future<Output = ()>>(task: F) -> (impl Future<Output = ()>, TaskAlive) {
        let alive = Arc::new(AtomicBool::new(true));
        let ends = EndsTask(alive.clone());
        let watched = async move {
            let _ends = ends;
            task.await
        };
        (watched, TaskAlive(alive))
    }

    pub(crate) fn is_alive(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

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
                        tracing::debug!(%error, "health check: the transport did not answer");
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
    /// Partitions of the group with tests or signals waiting and no member consuming them (the instance rejoins
    /// its group to heal that; it does not make the instance unhealthy).
    unowned_partitions: Vec<u32>,
}

/// 200 when the transport answers and the member runs, else 503; the same body either way.
pub(super) async fn healthz(State(instance): State<Arc<Instance>>) -> (StatusCode, Json<Health>) {
    let transport_reachable = instance.probe.reachable(&instance.app).await;
    let consumers_alive = instance.member.is_alive();
    let ok = transport_reachable && consumers_alive;
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let unowned_partitions = instance.app.group_health().unowned_partitions;
    (
        status,
        Json(Health { ok, transport_reachable, consumers_alive, leader: instance.is_leader(), unowned_partitions }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_watched_task_is_alive_until_it_ends_however_it_ends() {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (task, alive) = TaskAlive::watch(async move {
            let _ = stopped.await;
        });
        let task = tokio::spawn(task);
        tokio::task::yield_now().await;
        assert!(alive.is_alive());
        stop.send(()).unwrap();
        task.await.unwrap();
        assert!(!alive.is_alive(), "returned");

        let (task, alive) = TaskAlive::watch(async { panic!("the member failed") });
        assert!(tokio::spawn(task).await.is_err());
        assert!(!alive.is_alive(), "panicked");

        let (task, alive) = TaskAlive::watch(std::future::pending());
        drop(task);
        assert!(!alive.is_alive(), "dropped");
    }
}
