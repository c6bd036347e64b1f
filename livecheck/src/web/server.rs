//! Binding the web server's address, its routes, and serving them until the instance stops.

use std::{
    future::Future,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    routing::{get, post},
    Router,
};
use chrono::{DateTime, Utc};
use tokio::{net::TcpListener, sync::Semaphore, task::JoinSet};
use tokio_util::sync::CancellationToken;

use super::metrics::ExecutionMetrics;
use super::{
    api,
    connection::{self, Accepted, ConnectionCounts, ConnectionLimits},
    dashboard, healthz,
    healthz::TransportProbe,
    metrics, not_found, openapi, otlp, signals_api, tests_api, TlsFiles,
};
use crate::{transport::Leadership, Error, LiveCheck, Result};

/// The web server's usual address: port 9999 on the loopback interface (reachable from this machine only).
pub const DEFAULT_WEB_ADDRESS: &str = "127.0.0.1:9999";

/// How long a stopping server waits for requests in progress before it closes their connections.
const DRAIN_FOR: Duration = Duration::from_secs(5);
/// How often connections refused at the limit are logged, at most.
const REFUSALS_LOGGED_EVERY: Duration = Duration::from_secs(60);

/// What the routes look at: the app and its running instance.
pub(crate) struct Instance {
    pub(crate) app: LiveCheck,
    /// When the instance started.
    pub(crate) started_at: DateTime<Utc>,
    /// The instance's candidacy for leader of its group, when it runs for it (a case has a `frequency`).
    pub(crate) leadership: Option<Arc<dyn Leadership>>,
    /// The health check's question to the transport: one at a time, its answer reused for a second.
    pub(crate) probe: Arc<TransportProbe>,
    /// What the server counts of its connections.
    pub(crate) connections: ConnectionCounts,
    /// Executions, runtimes, signal latencies and suite failures, observed as they happen.
    pub(crate) observed: Arc<ExecutionMetrics>,
    /// One OTLP body decoded at a time.
    pub(crate) otlp_decoding: tokio::sync::Semaphore,
    /// Every case's outcomes per minute, observed as they happen.
    pub(crate) timelines: Arc<super::timeline::Timelines>,
    /// Every case's results per service version, observed as they happen (the rollout gate's).
    pub(crate) versions: Arc<crate::gate::VersionTally>,
    /// The tokens the routes ask for (none by default).
    pub(crate) tokens: super::auth::Tokens,
    /// The rate limit of the routes that publish.
    pub(crate) publishes: super::rate_limit::RateLimit,
}

impl Instance {
    /// Whether this instance is its group's leader now (never, when it does not run for it).
    pub(crate) fn is_leader(&self) -> bool {
        self.leadership.as_ref().is_some_and(|leadership| leadership.is_leader())
    }
}

/// The web server, listening, not serving yet.
pub(crate) struct WebServer {
    /// What `/metrics` observes as executions finish: an observer of the app from the moment the server is bound.
    observed: Arc<ExecutionMetrics>,
    /// What the charts draw: an observer of the app too.
    pub(super) timelines: Arc<super::timeline::Timelines>,
    /// What the rollout gate compares: an observer too.
    pub(super) versions: Arc<crate::gate::VersionTally>,
    listener: TcpListener,
    address: SocketAddr,
    limits: ConnectionLimits,
    /// The TLS handshake of every connection, when the server speaks HTTPS.
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// The tokens its routes ask for.
    pub(super) tokens: super::auth::Tokens,
    /// Requests a second its routes that publish take.
    pub(super) publishes_per_second: u32,
}

impl WebServer {
    /// Listens on `address` (`host:port`); [`Error::WebServer`] when it cannot (a port in use says so). With
    /// `tls`, its certificate and key are read first ([`Error::Setup`] or [`Error::Config`] naming what is wrong).
    /// Its metrics of executions observe `app` from now on.
    pub(crate) async fn bind(
        address: &str,
        app: &LiveCheck,
        limits: ConnectionLimits,
        tls: Option<&TlsFiles>,
    ) -> Result<Self> {
        let tls = tls.map(TlsFiles::acceptor).transpose()?;
        let failed = |source| Error::WebServer { address: address.to_owned(), source };
        let listener = TcpListener::bind(address).await.map_err(failed)?;
        let address = listener.local_addr().map_err(failed)?;
        let observed = Arc::new(ExecutionMetrics::default());
        app.shared.observers.add(observed.clone());
        let timelines = Arc::new(super::timeline::Timelines::default());
        app.shared.observers.add(timelines.clone());
        let versions = Arc::new(crate::gate::VersionTally::default());
        app.shared.observers.add(versions.clone());
        let (tokens, publishes_per_second) = (Default::default(), super::rate_limit::DEFAULT_PUBLISHES_PER_SECOND);
        Ok(WebServer { observed, timelines, versions, listener, address, limits, tls, tokens, publishes_per_second })
    }

    /// The server asking for `tokens` and taking `publishes_per_second` on its publishing routes.
    pub(crate) fn guarded(self, tokens: super::auth::Tokens, publishes_per_second: u32) -> Self {
        WebServer { tokens, publishes_per_second, ..self }
    }

    /// What `/metrics` observes as executions finish, for the [`Instance`] it serves.
    pub(crate) fn observed(&self) -> Arc<ExecutionMetrics> {
        self.observed.clone()
    }

    /// The address listened on (with the port chosen when port 0 was asked for).
    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    /// The server's URL: `https://` when it speaks TLS.
    pub(crate) fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}/", self.address)
    }

    /// Serves `instance` until `shutdown`, each connection within the app's [`ConnectionLimits`] (beyond the most
    /// connections, new ones are closed at once, counted and logged); then stops accepting, lets the requests in
    /// progress finish for up to [`DRAIN_FOR`], and closes what is left.
    pub(crate) fn serve(self, instance: Instance, shutdown: CancellationToken) -> impl Future<Output = ()> + Send {
        let url = self.url();
        tracing::info!(%url, "LiveCheck web server listening on {url} (dashboard, /api/status, /healthz, /metrics)");
        let limits = self.limits;
        let counts = instance.connections.clone();
        let router = routes(Arc::new(instance));
        async move {
            let slots = Arc::new(Semaphore::new(limits.max_connections));
            let mut connections = JoinSet::new();
            let mut refusals = Refusals::default();
            loop {
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => break,
                    Some(_) = connections.join_next() => {}
                    accepted = self.listener.accept() => match accepted {
                        Ok((stream, peer)) => match slots.clone().try_acquire_owned() {
                            Ok(slot) => {
                                let accepted = Accepted { stream, peer, slot };
                                let (router, counts, shutdown) = (router.clone(), counts.clone(), shutdown.clone());
                                let tls = self.tls.clone();
                                connections.spawn(connection::serve(accepted, tls, router, limits, counts, shutdown));
                            }
                            Err(_) => {
                                // Closed unread: the client sees the connection end without an answer.
                                drop(stream);
                                counts.refused.inc();
                                refusals.refused(&peer, limits.max_connections);
                            }
                        },
                        Err(error) => accept_failed(&error).await,
                    },
                }
            }
            drop(self.listener);
            let drained = async { while connections.join_next().await.is_some() {} };
            if tokio::time::timeout(DRAIN_FOR, drained).await.is_err() {
                tracing::warn!("the LiveCheck web server stopped with requests still in progress after {DRAIN_FOR:?}");
                connections.shutdown().await;
            }
        }
    }
}

/// Logs connections refused at the limit: the first, then at most once a minute with how many since.
#[derive(Default)]
struct Refusals {
    last_logged: Option<Instant>,
    since: u64,
}

impl Refusals {
    fn refused(&mut self, peer: &SocketAddr, max_connections: usize) {
        self.since += 1;
        if self.last_logged.is_some_and(|at| at.elapsed() < REFUSALS_LOGGED_EVERY) {
            return;
        }
        tracing::warn!(
            %peer,
            max_connections,
            refused = self.since,
            "the LiveCheck web server holds its most connections: closing new ones at once (logged at most once a \
             minute; counted in livecheck_web_connections_refused_total)"
        );
        self.last_logged = Some(Instant::now());
        self.since = 0;
    }
}

/// What to do when accepting a connection failed: nothing when only that connection failed; otherwise (out of
/// file descriptors, say) log it and wait a second rather than spin.
async fn accept_failed(error: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(error.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::warn!(%error, "the LiveCheck web server could not accept a connection; trying again in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

fn routes(instance: Arc<Instance>) -> Router {
    // Reads of the API: the read token when one is set.
    let reads = Router::new()
        .route("/api/status", get(api::status))
        .route("/api/cases/{name}", get(api::case))
        .route("/api/cases/{name}/executions", get(api::executions))
        .route("/api/cases/{name}/timeline", get(super::timeline::timeline))
        .route("/api/executions/{id}", get(api::execution))
        .route("/api/alerts", get(api::alerts))
        .route("/metrics", get(metrics::metrics))
        // The rollout gate's reads (`/api/cases/{name}/versions`, `/api/gate`, Flagger's `/api/gate/flagger`).
        .merge(super::gate::routes())
        .route_layer(axum::middleware::from_fn_with_state(instance.clone(), require_read));
    Router::new()
        .route("/", get(dashboard::dashboard))
        .route("/api/openapi.json", get(openapi::document))
        .route("/healthz", get(healthz::healthz))
        // The routes that publish check the write token themselves (a signal may show its signed test instead).
        .route("/api/tests", post(tests_api::start_test))
        .route("/api/signals", post(signals_api::send_signal))
        .route(
            "/v1/traces",
            post(otlp::traces).layer(axum::extract::DefaultBodyLimit::max(crate::spans::otlp::MAX_BODY_BYTES)),
        )
        .merge(reads)
        .fallback(not_found::no_route)
        .with_state(instance)
}

/// Lets a read through when it holds the read token (or the write token), or none is set; 401 otherwise.
async fn require_read(
    axum::extract::State(instance): axum::extract::State<Arc<Instance>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match super::auth::Access::Read.check(&instance.tokens, request.headers()) {
        super::auth::Presented::Allowed => next.run(request).await,
        super::auth::Presented::Denied => super::api_error::ApiError::unauthorized().into_response(),
    }
}
