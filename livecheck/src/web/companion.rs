//! The web server as the instance's companion: configured with the `web_*` methods of the builder, bound before
//! the instance starts, served while it runs. The app knows it only as a [`Companion`].

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use tokio_util::sync::CancellationToken;

use super::{ConnectionLimits, Instance, TlsFiles, WebServer};
use crate::{
    app::{BoundCompanion, Companion, StartedInstance},
    transport::BoxFuture,
    Error, LiveCheck, LiveCheckBuilder, Result, Running,
};

/// The name the web server's task and address go by.
const WEB_SERVER: &str = "the web server";

/// The web server's configuration on the builder: off until an address is set.
#[derive(Default)]
pub(crate) struct WebCompanion {
    address: Option<String>,
    limits: ConnectionLimits,
    /// HTTPS with this certificate and key; plain HTTP without.
    tls: Option<TlsFiles>,
    /// The tokens its routes ask for (see `auth.rs`).
    pub(super) tokens: super::auth::Tokens,
    /// Requests a second the routes that publish take.
    publishes_per_second: Option<u32>,
}

impl Companion for WebCompanion {
    fn bind<'a>(&'a self, app: &'a LiveCheck) -> BoxFuture<'a, Result<Option<Box<dyn BoundCompanion>>>> {
        Box::pin(async move {
            let Some(address) = &self.address else { return Ok(None) };
            let server = WebServer::bind(address, app, self.limits, self.tls.as_ref()).await?;
            // Beyond loopback, only with both tokens: nobody else reads the cases or starts tests.
            let bound = server.address();
            if !bound.ip().is_loopback() && !self.tokens.guards_reads_and_writes() {
                return Err(Error::Config(format!(
                    "LiveCheck web server: {bound} is reachable beyond this machine, so it needs a write token and a \
                     read token (web_write_token and web_read_token; LIVECHECK_WEB_TOKEN and \
                     LIVECHECK_WEB_READ_TOKEN for livecheck serve), or an address on 127.0.0.1"
                )));
            }
            let publishes_per_second =
                self.publishes_per_second.unwrap_or(super::rate_limit::DEFAULT_PUBLISHES_PER_SECOND);
            let server = server.guarded(self.tokens.clone(), publishes_per_second);
            Ok(Some(Box::new(server) as Box<dyn BoundCompanion>))
        })
    }
}

impl BoundCompanion for WebServer {
    fn name(&self) -> &'static str {
        WEB_SERVER
    }

    fn address(&self) -> Option<SocketAddr> {
        Some(WebServer::address(self))
    }

    fn dashboard_url(&self) -> Option<String> {
        Some(self.url())
    }

    fn serve(self: Box<Self>, started: StartedInstance, shutdown: CancellationToken) -> BoxFuture<'static, ()> {
        let StartedInstance { app, started_at, leadership } = started;
        let (probe, connections, observed) = (Default::default(), Default::default(), self.observed());
        let otlp_decoding = tokio::sync::Semaphore::new(1);
        let (timelines, versions) = (self.timelines.clone(), self.versions.clone());
        let tokens = self.tokens.clone();
        let publishes = super::rate_limit::RateLimit::new(self.publishes_per_second);
        let instance = Instance {
            app,
            started_at,
            leadership,
            probe,
            connections,
            observed,
            otlp_decoding,
            timelines,
            versions,
            tokens,
            publishes,
        };
        Box::pin(WebServer::serve(*self, instance, shutdown))
    }
}

impl LiveCheckBuilder {
    /// Serves the instance's web server — JSON API, dashboard, `/healthz` and Prometheus `/metrics` — on `address`
    /// (`host:port`, e.g. [`crate::web::DEFAULT_WEB_ADDRESS`]; port 0 picks a free one, see
    /// [`crate::Running::web_address`]) while the instance runs. Off by default. [`LiveCheck::start`] fails if it
    /// cannot listen there (e.g. the port is in use), before anything else starts.
    #[cfg_attr(docsrs, doc(cfg(feature = "web")))]
    pub fn web_address(mut self, address: impl Into<String>) -> Self {
        self.companion::<WebCompanion>().address = Some(address.into());
        self
    }

    /// Serves the web server over HTTPS (TLS 1.2 and 1.3, by rustls) with the certificate chain in the PEM file
    /// `cert_path` (the server's certificate first, then any intermediates) and its private key in the PEM file
    /// `key_path` (PKCS#8, RSA or EC). The files are read when the instance starts: [`LiveCheck::start`] fails,
    /// naming the file, if one cannot be read, holds no certificate or key, or the key is not the certificate's.
    /// The dashboard's URL (in the logs and the alerts) is then `https://`. A client that does not complete its
    /// handshake within [`Self::web_header_read_timeout`] is disconnected. Plain HTTP by default.
    ///
    /// ```no_run
    /// # async fn run() -> livecheck::Result<()> {
    /// let app = livecheck::LiveCheck::builder()
    ///     .web_address("0.0.0.0:9999")
    ///     .web_tls("/etc/livecheck/tls/cert.pem", "/etc/livecheck/tls/key.pem")
    ///     .build();
    /// let running = app.start().await?;
    /// # Ok(()) }
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "web")))]
    pub fn web_tls(mut self, cert_path: impl Into<PathBuf>, key_path: impl Into<PathBuf>) -> Self {
        self.companion::<WebCompanion>().tls = Some(TlsFiles { cert: cert_path.into(), key: key_path.into() });
        self
    }

    /// How long the web server waits for a request's headers (default 10 s): for a connection's first request from
    /// its opening, for the next ones from their first byte. A client that sends them slower, or sends nothing, is
    /// disconnected (counted in `livecheck_web_connections_timed_out_total{timeout="header_read"}`), so slow
    /// (slowloris) and half-open connections do not hold the server's connections. At least 1 ms.
    #[cfg_attr(docsrs, doc(cfg(feature = "web")))]
    pub fn web_header_read_timeout(mut self, timeout: Duration) -> Self {
        self.companion::<WebCompanion>().limits.header_read_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How long a kept-alive connection of the web server may wait for its next request (default 60 s) before it is
    /// closed (counted in `livecheck_web_connections_timed_out_total{timeout="idle"}`). At least 1 ms.
    #[cfg_attr(docsrs, doc(cfg(feature = "web")))]
    pub fn web_idle_timeout(mut self, timeout: Duration) -> Self {
        self.companion::<WebCompanion>().limits.idle_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How many connections the web server holds at once (default 1 024). Beyond, a new connection is closed at
    /// once, unanswered (counted in `livecheck_web_connections_refused_total`, logged at most once a minute),
    /// until one of the others closes. At least 1.
    #[cfg_attr(docsrs, doc(cfg(feature = "web")))]
    pub fn web_max_connections(mut self, connections: usize) -> Self {
        self.companion::<WebCompanion>().limits.max_connections = connections.max(1);
        self
    }
}

impl LiveCheckBuilder {
    /// How many requests a second the web server's routes that publish (`POST /api/tests`, `POST /api/signals`)
    /// take, all clients together (default 50 000; at least 1); beyond, a request is answered 429 with
    /// `Retry-After: 1`.
    #[cfg_attr(docsrs, doc(cfg(feature = "web")))]
    pub fn web_api_rate_limit(mut self, requests_per_second: u32) -> Self {
        self.companion::<WebCompanion>().publishes_per_second = Some(requests_per_second.max(1));
        self
    }
}

impl Running {
    /// Where the web server listens (the port actually bound, when the address asked for port 0); `None` when it
    /// is off.
    #[cfg_attr(docsrs, doc(cfg(feature = "web")))]
    pub fn web_address(&self) -> Option<SocketAddr> {
        self.address_of(WEB_SERVER)
    }
}
