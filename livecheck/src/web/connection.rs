//! One connection of the web server, served by hyper's HTTP/1 within the server's limits: a request's headers must
//! arrive within `header_read_timeout` — from the connection's opening for its first request, from its first byte
//! for the next ones — and a kept-alive connection may wait at most `idle_timeout` for its next request. So idle,
//! slow (slowloris) and half-open connections are closed, and counted, instead of being held for ever. (hyper's own
//! header-read timeout also runs while a kept-alive connection waits idle, so it cannot tell the two apart.)
//! Over HTTPS the TLS handshake comes first, within the first request's header-read timeout.

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use axum::{body::Body, Router};
use hyper::{body::Incoming, server::conn::http1, Request};
use hyper_util::rt::TokioIo;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    sync::{Notify, OwnedSemaphorePermit},
    time::Instant,
};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::sync::lock;

/// How long the web server waits for a request's headers, by default.
pub(crate) const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a kept-alive connection may wait for its next request, by default.
pub(crate) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How many connections the web server holds at once, by default.
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// The web server's limits on its connections (see the `web_*` methods of [`crate::LiveCheckBuilder`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConnectionLimits {
    /// How long a request's headers may take to arrive.
    pub(crate) header_read_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    pub(crate) idle_timeout: Duration,
    /// How many connections are served at once; beyond, new ones are closed at once.
    pub(crate) max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct TimeoutLabels {
    timeout: &'static str,
}

/// What the web server counts of its connections, exported by `/metrics`.
#[derive(Clone, Debug, Default)]
pub(crate) struct ConnectionCounts {
    /// Connections open now.
    pub(super) open: Gauge,
    /// Connections closed at once because the server held its limit of them.
    pub(super) refused: Counter,
    /// Connections closed by a timeout: `header_read` (the TLS handshake included) or `idle`.
    pub(super) timed_out: Family<TimeoutLabels, Counter>,
    /// Connections closed because their TLS handshake failed (a client that does not trust the certificate, one
    /// that speaks plain HTTP to the HTTPS server).
    pub(super) tls_failed: Counter,
}

/// Which timeout a connection is under now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Waiting {
    /// For a request's headers, until then.
    Headers(Instant),
    /// Idle, kept alive, for the next request, until then.
    Idle(Instant),
    /// For the app to answer: no timeout.
    Answer,
}

/// What a connection is doing, told by its reads and its requests, read by its task for its timeouts.
#[derive(Debug)]
struct Activity {
    opened: Instant,
    phase: Mutex<Phase>,
    /// The timeout changed (a request ended, or the next one's first byte came): look again.
    changed: Notify,
}

#[derive(Debug, Default)]
struct Phase {
    /// Requests being answered now.
    answering: usize,
    /// When the last answer ended (`None` before the first).
    idle_since: Option<Instant>,
    /// The first byte read since then: a request's headers are arriving.
    reading_since: Option<Instant>,
}

impl Activity {
    fn new(opened: Instant) -> Self {
        Activity { opened, phase: Mutex::default(), changed: Notify::new() }
    }

    fn waiting(&self, limits: &ConnectionLimits) -> Waiting {
        let phase = lock(&self.phase);
        if phase.answering > 0 {
            return Waiting::Answer;
        }
        match (phase.idle_since, phase.reading_since) {
            (None, _) => Waiting::Headers(self.opened + limits.header_read_timeout),
            (Some(_), Some(first_byte)) => Waiting::Headers(first_byte + limits.header_read_timeout),
            (Some(idle_since), None) => Waiting::Idle(idle_since + limits.idle_timeout),
        }
    }

    /// Bytes came in.
    fn read(&self) {
        let mut phase = lock(&self.phase);
        if phase.answering == 0 && phase.idle_since.is_some() && phase.reading_since.is_none() {
            phase.reading_since = Some(Instant::now());
            drop(phase);
            // From the idle timeout to the (shorter) header-read one.
            self.changed.notify_one();
        }
    }

    /// A request's headers were read: it is being answered until the returned guard is dropped.
    fn answering(self: &Arc<Self>) -> Answering {
        let mut phase = lock(&self.phase);
        phase.answering += 1;
        phase.reading_since = None;
        Answering(self.clone())
    }
}

/// A request being answered; its answer is done when this is dropped (however the handler ended).
struct Answering(Arc<Activity>);

impl Drop for Answering {
    fn drop(&mut self) {
        let mut phase = lock(&self.0.phase);
        phase.answering = phase.answering.saturating_sub(1);
        phase.idle_since = Some(Instant::now());
        phase.reading_since = None;
        drop(phase);
        self.0.changed.notify_one();
    }
}

/// A connection's socket (or its TLS stream), telling its [`Activity`] when bytes come in.
struct Watched<S> {
    stream: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Counts a connection open while it lives.
struct Open(Gauge);

impl Open {
    fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        Open(gauge.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A connection accepted, and what serving it needs.
pub(super) struct Accepted {
    pub(super) stream: TcpStream,
    pub(super) peer: SocketAddr,
    /// Its place among the server's connections, given back when it ends.
    pub(super) slot: OwnedSemaphorePermit,
}

/// Serves `accepted` with `router` — over TLS after its handshake with `tls`, when given — until the client closes
/// it, a timeout closes it, or `shutdown`: then at once, unless a request is being answered — it is let finish, and
/// the server bounds that wait.
pub(super) async fn serve(
    accepted: Accepted,
    tls: Option<TlsAcceptor>,
    router: Router,
    limits: ConnectionLimits,
    counts: ConnectionCounts,
    shutdown: CancellationToken,
) {
    let Accepted { stream, peer, slot: _slot } = accepted;
    let _open = Open::new(&counts.open);
    let opened = Instant::now();
    let Some(tls) = tls else {
        return serve_http(stream, opened, peer, router, limits, counts, shutdown).await;
    };
    let handshake = tokio::time::timeout_at(opened + limits.header_read_timeout, tls.accept(stream));
    let stream = tokio::select! {
        () = shutdown.cancelled() => return,
        handshake = handshake => match handshake {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                counts.tls_failed.inc();
                tracing::debug!(%peer, %error, "a web connection's TLS handshake failed");
                return;
            }
            Err(_) => {
                counts.timed_out.get_or_create(&TimeoutLabels { timeout: "header_read" }).inc();
                tracing::debug!(%peer, "closing a web connection whose TLS handshake did not end in time");
                return;
            }
        },
    };
    serve_http(stream, opened, peer, router, limits, counts, shutdown).await;
}

/// Serves HTTP/1 on `stream`, opened at `opened`, within `limits` (see [`serve`]).
async fn serve_http<S>(
    stream: S,
    opened: Instant,
    peer: SocketAddr,
    router: Router,
    limits: ConnectionLimits,
    counts: ConnectionCounts,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new(opened));
    let io = TokioIo::new(Watched { stream, activity: activity.clone() });
    let service = hyper::service::service_fn({
        let activity = activity.clone();
        move |request: Request<Incoming>| {
            let answering = activity.answering();
            let mut router = router.clone();
            async move {
                // A Router is always ready: no `poll_ready` first.
                let response = tower_service::Service::call(&mut router, request.map(Body::new)).await;
                drop(answering);
                response
            }
        }
    });
    let mut builder = http1::Builder::new();
    // Ours instead (see the module's documentation).
    builder.header_read_timeout(None);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let mut draining = false;
    loop {
        let deadline = match activity.waiting(&limits) {
            Waiting::Headers(until) | Waiting::Idle(until) => Some(until),
            Waiting::Answer => None,
        };
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(error) = served {
                    tracing::debug!(%peer, %error, "a web connection ended with an error");
                }
                return;
            }
            () = shutdown.cancelled(), if !draining => {
                // Only a request being answered is let finish; one whose headers are still coming is not.
                if activity.waiting(&limits) != Waiting::Answer {
                    return;
                }
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
            () = activity.changed.notified() => {}
            () = sleep_until(deadline) => {
                let timeout = match activity.waiting(&limits) {
                    Waiting::Headers(until) if until <= Instant::now() => "header_read",
                    Waiting::Idle(until) if until <= Instant::now() => "idle",
                    _ => continue,
                };
                counts.timed_out.get_or_create(&TimeoutLabels { timeout }).inc();
                tracing::debug!(%peer, timeout, "closing a web connection at its timeout");
                // Dropping the connection closes the socket.
                return;
            }
        }
    }
}

/// Sleeps until `deadline`; for ever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn headers_are_waited_for_from_the_opening_then_from_the_first_byte_and_idleness_after_an_answer() {
        let limits = ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1,
        };
        let opened = Instant::now();
        let activity = Arc::new(Activity::new(opened));
        let headers_by = opened + limits.header_read_timeout;
        assert_eq!(activity.waiting(&limits), Waiting::Headers(headers_by));
        tokio::time::advance(Duration::from_secs(3)).await;
        activity.read();
        assert_eq!(activity.waiting(&limits), Waiting::Headers(headers_by), "the first request: from the opening");

        let answering = activity.answering();
        assert_eq!(activity.waiting(&limits), Waiting::Answer, "no timeout while the app answers");
        tokio::time::advance(Duration::from_secs(100)).await;
        drop(answering);
        let answered = Instant::now();
        assert_eq!(activity.waiting(&limits), Waiting::Idle(answered + limits.idle_timeout));

        tokio::time::advance(Duration::from_secs(20)).await;
        activity.read();
        let first_byte = Instant::now();
        assert_eq!(activity.waiting(&limits), Waiting::Headers(first_byte + limits.header_read_timeout));
        tokio::time::advance(Duration::from_secs(1)).await;
        activity.read();
        assert_eq!(
            activity.waiting(&limits),
            Waiting::Headers(first_byte + limits.header_read_timeout),
            "more bytes of the same headers do not extend it"
        );
    }
}
