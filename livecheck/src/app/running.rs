//! A started LiveCheck instance and its shutdown.

use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

use tokio::task::{Id, JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

use super::{member, watchers, LiveCheck, StartedInstance};
use crate::{backoff::Backoff, error::with_causes, transport::check_co_partitioned, Error, Result};

/// How long starting waits for a broker that is away (retriable errors) before giving up.
const START_WAITS_FOR: Duration = Duration::from_secs(300);

/// How long shutdown still waits for the instance's tasks once it gave up what they were publishing: they end at
/// once then, unless one is stuck in a user's hook or a transport call that never returns.
const AFTER_GIVING_UP: Duration = Duration::from_secs(1);

/// A running LiveCheck instance. Dropping it stops the instance too, without waiting.
#[must_use = "the instance stops when this is dropped"]
pub struct Running {
    app: LiveCheck,
    tasks: Tasks,
    /// Where each companion listens, by name.
    addresses: Vec<(&'static str, std::net::SocketAddr)>,
}

impl Running {
    /// Stops consuming, interrupts executing tests (they reach no verdict and are not committed, so they run again
    /// after a restart) and waits for every task to end — for the reports, suite reports and alerts being
    /// published or retried, the group member's last commits, and the transport to store what it was given
    /// ([`Transport::flush`](crate::transport::Transport::flush)), up to the builder's
    /// [`shutdown_timeout`](crate::LiveCheckBuilder::shutdown_timeout) (default 5 s). Then it gives them up:
    /// what could not be published is logged, one line per kind (`shutdown: 2 reports could not be published
    /// (test ids …)`, suite reports lost, alerts not delivered), and the executions whose report is not out are
    /// not committed, so they run again after a restart. It returns within a second after that: a task still
    /// stuck (a case's hook that never returns, say) is left behind, with a warning naming it.
    ///
    /// A task that panicked meanwhile (a bug, or a panic in a case's hook) is an error ([`Error::TasksPanicked`],
    /// with the panic messages), logged too.
    ///
    /// Not cancellation safe: dropping the future gives up what is being published at once, as dropping the
    /// `Running` does, and logs no summary.
    pub async fn shutdown(mut self) -> Result<()> {
        let shared = &self.app.shared;
        let timeout = shared.config.shutdown_timeout;
        shared.stopping.shutdown.cancel();
        // Nothing that drops the transport's threads waits past the same deadline.
        shared.transport.set_drop_deadline(std::time::Instant::now() + timeout);
        let ended_in_time = tokio::time::timeout(timeout, self.tasks.join_all()).await.is_ok();
        shared.stopping.give_up.cancel();
        if !ended_in_time {
            tracing::debug!(?timeout, "shutdown: giving up what is still being published");
            self.tasks.join_for(AFTER_GIVING_UP).await;
            self.tasks.leave_behind();
        }
        // What the transport still holds (a publish given up, a signal whose sender stopped waiting) is stored before
        // this returns, until the same deadline: dropping the transport later does not wait for it.
        if let Err(error) = shared.transport.flush().await {
            tracing::warn!(error = %with_causes(&error), "shutdown: the transport did not store all it was given");
        }
        shared.stopping.log_losses(&shared.alerts.not_delivered_at_stop());
        let panics = std::mem::take(&mut self.tasks.panics);
        if panics.is_empty() {
            Ok(())
        } else {
            Err(Error::TasksPanicked(panics))
        }
    }

    /// A token that stops the instance when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.app.shared.stopping.shutdown.clone()
    }

    /// Where the companion `name` listens (the port actually bound, when the address asked for port 0).
    #[cfg_attr(not(feature = "web"), allow(dead_code))]
    pub(crate) fn address_of(&self, name: &str) -> Option<std::net::SocketAddr> {
        self.addresses.iter().find(|(companion, _)| *companion == name).map(|(_, address)| *address)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Nothing waits: what is being published is given up at once (and its execution not committed).
        let stopping = &self.app.shared.stopping;
        stopping.shutdown.cancel();
        stopping.give_up.cancel();
    }
}

/// The instance's tasks, each with a name for the log when one does not end in time.
#[derive(Default)]
struct Tasks {
    set: JoinSet<()>,
    names: HashMap<Id, String>,
    /// The messages of the tasks that panicked.
    panics: Vec<String>,
}

impl Tasks {
    fn spawn(&mut self, name: impl Into<String>, task: impl Future<Output = ()> + Send + 'static) {
        let id = self.set.spawn(task).id();
        self.names.insert(id, name.into());
    }

    /// Waits for every task to end. Cancellation safe: a task that ended is recorded before the next wait.
    async fn join_all(&mut self) {
        while let Some(ended) = self.set.join_next_with_id().await {
            self.ended(ended);
        }
    }

    /// Waits for the tasks to end, for `within` of real time at most: those still running then wait on the outside
    /// world (a thread, a socket), which runs in real time.
    async fn join_for(&mut self, within: Duration) {
        let until = std::time::Instant::now() + within;
        while !self.set.is_empty() {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            // A tick of real time on a blocking thread, during which paused test time does not race ahead.
            let tick = tokio::task::spawn_blocking(move || std::thread::sleep(left.min(Duration::from_millis(10))));
            tokio::select! {
                ended = self.set.join_next_with_id() => if let Some(ended) = ended {
                    self.ended(ended);
                },
                _ = tick => {}
            }
        }
    }

    /// Aborts the tasks still running (one stuck in blocking code goes on until it returns), with a warning.
    fn leave_behind(&mut self) {
        if self.set.is_empty() {
            return;
        }
        let mut names: Vec<&str> = self.names.values().map(String::as_str).collect();
        names.sort_unstable();
        let count = names.len();
        tracing::warn!(
            count,
            tasks = %names.join(", "),
            "shutdown: {count} task(s) did not end in time and are left behind: {}",
            names.join(", ")
        );
        self.set.abort_all();
    }

    fn ended(&mut self, ended: std::result::Result<(Id, ()), JoinError>) {
        let id = match &ended {
            Ok((id, ())) => *id,
            Err(error) => error.id(),
        };
        let name = self.names.remove(&id).unwrap_or_default();
        let Err(error) = ended else { return };
        if error.is_panic() {
            let payload = error.into_panic();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            tracing::error!(panic = %message, task = %name, "a task of the LiveCheck instance had panicked");
            self.panics.push(message);
        }
    }
}

pub(super) async fn start(app: LiveCheck) -> Result<Running> {
    let shared = &app.shared;
    // The companions first (the web server's address): one that cannot bind fails the start before anything runs.
    let mut companions = Vec::new();
    for companion in &shared.companions {
        companions.extend(companion.bind(&app).await?);
    }
    let started_at = shared.clock.now();
    let config = &shared.config;
    let streams = &shared.streams;
    if let Some(partitions) = config.partitions {
        for stream in [&streams.pending, &streams.bus, &streams.reports] {
            shared.transport.create_stream(stream, partitions).await?;
        }
    }
    // Reports are keyed by test id too: partition p of the report stream holds the reports of partition p's tests.
    // (Asking for the end offsets creates a missing stream with the transport's default partitions.)
    let mut counts = Vec::new();
    for stream in [&streams.pending, &streams.bus, &streams.reports] {
        // A broker away at start-up is waited for (retriable errors), with one warning.
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        let (started, mut warned) = (tokio::time::Instant::now(), false);
        let ends = loop {
            match shared.transport.end_offsets(stream).await {
                Err(error) if error.is_retriable() && started.elapsed() < START_WAITS_FOR => {
                    if !std::mem::replace(&mut warned, true) {
                        tracing::warn!(error = %with_causes(&error), %stream, "the broker is not answering; waiting for it");
                    }
                    tokio::time::sleep(backoff.next()).await;
                }
                other => break other?,
            }
        };
        counts.push((stream.as_str(), ends.len() as u32));
    }
    check_co_partitioned(&counts)?;
    let subscription = shared.transport.subscribe(&[&streams.pending, &streams.bus], &config.group).await?;
    if let Some(health) = subscription.group_health() {
        let _ = shared.group_health.set(health);
    }
    let cases = app.registry.all();
    let leadership = if cases.iter().any(|c| c.core().settings.frequency.is_some()) {
        Some(Arc::<dyn crate::transport::Leadership>::from(shared.transport.elect_leader(&config.group).await?))
    } else {
        None
    };

    let (shutdown, give_up) = (&shared.stopping.shutdown, &shared.stopping.give_up);
    let mut tasks = Tasks::default();
    #[cfg(feature = "http")]
    {
        let dashboard = companions.iter().find_map(|companion| companion.dashboard_url());
        if let Some(alert_sender) = shared.alerts.start(shutdown.clone(), give_up.clone(), dashboard)? {
            tasks.spawn("the alert sender", alert_sender);
        }
    }
    let consumed = vec![streams.pending.clone(), streams.bus.clone()];
    let member_consumer =
        super::Consumer { consumer: "tests and signals", group: config.group.clone(), streams: consumed };
    let runs = shared.consumers.run(member_consumer);
    tasks.spawn(
        "the group member (tests and signals)",
        member::run(app.clone(), subscription, runs, shutdown.clone(), give_up.clone()),
    );
    for case in cases {
        let name = &case.core().name;
        tasks.spawn(
            format!("the stall watch of {name}"),
            watchers::watch_stalls(app.clone(), case.clone(), shutdown.clone()),
        );
        if let (Some(frequency), Some(leadership)) = (case.core().settings.frequency, &leadership) {
            tasks.spawn(
                format!("the fake requests of {name}"),
                watchers::make_fake_requests(
                    app.clone(),
                    case.clone(),
                    frequency,
                    leadership.clone(),
                    shutdown.clone(),
                ),
            );
        }
    }
    tasks.spawn("the statistics", watchers::sample_stats(app.clone(), shutdown.clone()));
    let leader = {
        let leadership = leadership.clone();
        move || leadership.as_ref().is_some_and(|l| l.is_leader())
    };
    tasks.spawn("the lag watch", super::lag::watch(app.clone(), shutdown.clone()));
    tasks.spawn("the group view", super::group_view::run(app.clone(), started_at, leader, shutdown.clone()));
    let mut addresses = Vec::new();
    for companion in companions {
        addresses.extend(companion.address().map(|address| (companion.name(), address)));
        let instance = StartedInstance { app: app.clone(), started_at, leadership: leadership.clone() };
        tasks.spawn(companion.name(), companion.serve(instance, shutdown.clone()));
    }
    tracing::info!(group = %config.group, pending = %streams.pending, bus = %streams.bus, "LiveCheck instance started");
    Ok(Running { app: app.clone(), tasks, addresses })
}
