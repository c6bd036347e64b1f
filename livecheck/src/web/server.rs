//! Binding the web server's address, its routes, and serving them until the instance stops.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{routing::get, Router};
use chrono::{DateTime, Utc};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{api, dashboard, healthz, healthz::TransportProbe, metrics, not_found};
use crate::{transport::Leadership, Error, LiveCheck, Result};

/// The web server's usual address: port 9999 on the loopback interface (reachable from this machine only).
pub const DEFAULT_WEB_ADDRESS: &str = "127.0.0.1:9999";

/// How long a stopping server waits for requests in progress before it closes their connections.
const DRAIN_FOR: Duration = Duration::from_secs(5);

/// What the routes look at: the app and its running instance.
pub(crate) struct Instance {
    pub(crate) app: LiveCheck,
    /// When the instance started.
    pub(crate) started_at: DateTime<Utc>,
    /// The instance's candidacy for leader of its group, when it runs for it (a case has a `frequency`).
    pub(crate) leadership: Option<Arc<dyn Leadership>>,
    /// The health check's question to the transport: one at a time, its answer reused for a second.
    pub(crate) probe: Arc<TransportProbe>,
}

impl Instance {
    /// Whether this instance is its group's leader now (never, when it does not run for it).
    pub(crate) fn is_leader(&self) -> bool {
        self.leadership.as_ref().is_some_and(|leadership| leadership.is_leader())
    }
}

/// The web server, listening, not serving yet.
pub(crate) struct WebServer {
    listener: TcpListener,
    address: SocketAddr,
}

impl WebServer {
    /// Listens on `address` (`host:port`); [`Error::WebServer`] when it cannot (a port in use says so).
    pub(crate) async fn bind(address: &str) -> Result<Self> {
        let failed = |source| Error::WebServer { address: address.to_owned(), source };
        let listener = TcpListener::bind(address).await.map_err(failed)?;
        let address = listener.local_addr().map_err(failed)?;
        Ok(WebServer { listener, address })
    }

    /// The address listened on (with the port chosen when port 0 was asked for).
    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves `instance` until `shutdown`; then lets the requests in progress finish, for up to [`DRAIN_FOR`].
    pub(crate) fn serve(self, instance: Instance, shutdown: CancellationToken) -> impl Future<Output = ()> + Send {
        let url = format!("http://{}/", self.address);
        tracing::info!(%url, "LiveCheck web server listening on {url} (dashboard, /api/status, /healthz, /metrics)");
        let router = routes(Arc::new(instance));
        async move {
            let stopped = shutdown.clone().cancelled_owned();
            let server = axum::serve(self.listener, router).with_graceful_shutdown(stopped);
            let drained = async {
                shutdown.cancelled().await;
                tokio::time::sleep(DRAIN_FOR).await;
            };
            tokio::select! {
                served = server => if let Err(error) = served {
                    tracing::error!(%error, "the LiveCheck web server stopped");
                },
                () = drained => tracing::warn!(
                    "the LiveCheck web server stopped with requests still in progress after {DRAIN_FOR:?}"
                ),
            }
        }
    }
}

fn routes(instance: Arc<Instance>) -> Router {
    Router::new()
        .route("/", get(dashboard::dashboard))
        .route("/api/status", get(api::status))
        .route("/api/cases/{name}", get(api::case))
        .route("/api/cases/{name}/executions", get(api::executions))
        .route("/api/executions/{id}", get(api::execution))
        .route("/api/alerts", get(api::alerts))
        .route("/healthz", get(healthz::healthz))
        .route("/metrics", get(metrics::metrics))
        .fallback(not_found::no_route)
        .with_state(instance)
}
