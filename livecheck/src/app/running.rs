//! A started LiveCheck instance and its shutdown.

use std::{sync::Arc, time::Duration};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{member, watchers, LiveCheck};
use crate::{backoff::Backoff, transport::check_co_partitioned, Error, Result};

/// How long starting waits for a broker that is away (retriable errors) before giving up.
const START_WAITS_FOR: Duration = Duration::from_secs(300);

/// A running LiveCheck instance. Dropping it stops the instance too, without waiting.
#[must_use = "the instance stops when this is dropped"]
pub struct Running {
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    #[cfg(feature = "web")]
    web_address: Option<std::net::SocketAddr>,
}

impl Running {
    /// Stops consuming, interrupts executing tests (they reach no verdict and are not committed, so they run again
    /// after a restart) and waits for every task to end. A task that panicked meanwhile (a bug, or a panic in a
    /// case's hook) is an error ([`Error::TasksPanicked`], with the panic messages), logged too.
    pub async fn shutdown(mut self) -> Result<()> {
        self.shutdown.cancel();
        let mut panics = Vec::new();
        while let Some(ended) = self.tasks.join_next().await {
            let Err(error) = ended else { continue };
            if error.is_panic() {
                let payload = error.into_panic();
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".to_owned());
                tracing::error!(panic = %message, "a task of the LiveCheck instance had panicked");
                panics.push(message);
            }
        }
        if panics.is_empty() {
            Ok(())
        } else {
            Err(Error::TasksPanicked(panics))
        }
    }

    /// A token that stops the instance when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Where the web server listens (the port actually bound, when the address asked for port 0); `None` when it
    /// is off.
    #[cfg(feature = "web")]
    pub fn web_address(&self) -> Option<std::net::SocketAddr> {
        self.web_address
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub(super) async fn start(app: LiveCheck) -> Result<Running> {
    let shared = &app.shared;
    // The web server's address first: one that cannot be listened on fails the start before anything runs.
    #[cfg(feature = "web")]
    let web_server = match &shared.config.web_address {
        Some(address) => Some(crate::web::WebServer::bind(address).await?),
        None => None,
    };
    #[cfg(feature = "web")]
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
                        tracing::warn!(%error, %stream, "the broker is not answering; waiting for it");
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

    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();
    #[cfg(feature = "http")]
    if let Some(alert_sender) = shared.alerts.start(shutdown.clone())? {
        tasks.spawn(alert_sender);
    }
    let member = member::run(app.clone(), subscription, shutdown.clone());
    #[cfg(feature = "web")]
    let (member, member_alive) = crate::web::TaskAlive::watch(member);
    tasks.spawn(member);
    for case in cases {
        tasks.spawn(watchers::watch_stalls(app.clone(), case.clone(), shutdown.clone()));
        if let (Some(frequency), Some(leadership)) = (case.core().settings.frequency, &leadership) {
            tasks.spawn(watchers::make_fake_requests(
                app.clone(),
                case.clone(),
                frequency,
                leadership.clone(),
                shutdown.clone(),
            ));
        }
    }
    tasks.spawn(watchers::sample_stats(app.clone(), shutdown.clone()));
    #[cfg(feature = "web")]
    let web_address = web_server.map(|server| {
        let probe = Default::default();
        let instance = crate::web::Instance { app: app.clone(), started_at, leadership, member: member_alive, probe };
        let address = server.address();
        tasks.spawn(server.serve(instance, shutdown.clone()));
        address
    });
    tracing::info!(group = %config.group, pending = %streams.pending, bus = %streams.bus, "LiveCheck instance started");
    Ok(Running {
        shutdown,
        tasks,
        #[cfg(feature = "web")]
        web_address,
    })
}
