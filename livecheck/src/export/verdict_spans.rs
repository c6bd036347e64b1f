//! The exporter: an observer that queues each finished execution's span, and a companion of the instance that
//! sends them in batches to the OTLP endpoint while it runs.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use prost::Message as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::verdict_span::verdict_span;
use crate::{
    app::{BoundCompanion, Companion, StartedInstance},
    backoff::Backoff,
    metrics::Metrics,
    observe::{ExecutionFinished, Observer},
    spans::otlp::proto::{ExportTraceServiceRequest, KeyValue, Resource, ResourceSpans, ScopeSpans, Span},
    transport::BoxFuture,
    LiveCheck, LiveCheckBuilder, Result,
};

/// Spans waiting to be sent, at most; beyond, a verdict's span is dropped (counted in `verdict_spans_failed`).
const QUEUED: usize = 2048;
/// Spans sent in one request, at most.
const BATCH: usize = 512;
/// How long a span may wait for others to fill its batch.
const LINGER: Duration = Duration::from_millis(500);
/// Attempts per batch (answers 429 and 5xx, and connection failures, are tried again).
const ATTEMPTS: u32 = 3;
/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the spans still queued when the instance stops may take to be sent (once each).
const AT_STOP: Duration = Duration::from_secs(2);

impl LiveCheckBuilder {
    /// Exports each finished execution as a span over OTLP/HTTP (protobuf) to `endpoint` — a collector's or a
    /// backend's traces URL, e.g. `http://127.0.0.1:4318/v1/traces` (`/v1/traces` is added to a URL without a
    /// path) — in the trace of the request the test was sampled from: `livecheck <case>`, with `livecheck.state`,
    /// `livecheck.runtime_seconds`, `livecheck.error` and `livecheck.verdict.test_id`, status ERROR for FAIL,
    /// ERROR and TIMEOUT. Sent in batches while the instance runs; what cannot be sent is counted
    /// (`verdict_spans_failed`). Off by default.
    #[cfg_attr(docsrs, doc(cfg(all(feature = "http", feature = "web"))))]
    pub fn otlp_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.companion::<VerdictExport>().endpoint = Some(endpoint.into());
        self
    }
}

/// The exporter's configuration on the builder: off until an endpoint is set.
#[derive(Default)]
pub(crate) struct VerdictExport {
    endpoint: Option<String>,
}

impl Companion for VerdictExport {
    fn bind<'a>(&'a self, app: &'a LiveCheck) -> BoxFuture<'a, Result<Option<Box<dyn BoundCompanion>>>> {
        Box::pin(async move {
            let Some(endpoint) = &self.endpoint else { return Ok(None) };
            let url = traces_url(endpoint)?;
            let client = reqwest::Client::builder()
                .timeout(ATTEMPT_TIMEOUT)
                .build()
                .map_err(|e| crate::Error::setup("the OTLP verdict exporter's HTTP client", e))?;
            let metrics = app.shared.metrics.clone();
            Ok(Some(Box::new(Sender { url, client, metrics }) as Box<dyn BoundCompanion>))
        })
    }
}

/// `endpoint`, with `/v1/traces` when it has no path.
fn traces_url(endpoint: &str) -> Result<reqwest::Url> {
    let mut url = reqwest::Url::parse(endpoint)
        .map_err(|e| crate::Error::setup(format!("otlp_endpoint `{endpoint}` is not a URL"), e))?;
    if url.path() == "/" || url.path().is_empty() {
        url.set_path("/v1/traces");
    }
    Ok(url)
}

/// The observer: a span per finished execution, queued.
struct Queue {
    queue: mpsc::Sender<Span>,
    metrics: Arc<Metrics>,
}

impl Observer for Queue {
    fn execution_finished(&self, execution: &ExecutionFinished<'_>) {
        if self.queue.try_send(verdict_span(execution)).is_err() {
            self.metrics.verdict_spans_failed.inc();
        }
    }
}

/// The companion: sends the queued spans.
struct Sender {
    url: reqwest::Url,
    client: reqwest::Client,
    metrics: Arc<Metrics>,
}

impl BoundCompanion for Sender {
    fn name(&self) -> &'static str {
        "the OTLP verdict exporter"
    }

    fn address(&self) -> Option<SocketAddr> {
        None
    }

    fn serve(self: Box<Self>, instance: StartedInstance, shutdown: CancellationToken) -> BoxFuture<'static, ()> {
        // Told of verdicts only once it runs: a start that failed leaves no queue behind.
        let (queue, spans) = mpsc::channel(QUEUED);
        instance.app.shared.observers.add(Arc::new(Queue { queue, metrics: self.metrics.clone() }));
        Box::pin(self.run(spans, shutdown))
    }
}

impl Sender {
    async fn run(self, mut spans: mpsc::Receiver<Span>, shutdown: CancellationToken) {
        tracing::info!(endpoint = %self.url, "exporting verdicts as spans");
        loop {
            let first = tokio::select! {
                span = spans.recv() => span,
                () = shutdown.cancelled() => None,
            };
            let Some(first) = first else { break };
            let mut batch = vec![first];
            let linger = tokio::time::sleep(LINGER);
            tokio::pin!(linger);
            while batch.len() < BATCH {
                tokio::select! {
                    Some(span) = spans.recv() => batch.push(span),
                    () = &mut linger => break,
                    () = shutdown.cancelled() => break,
                }
            }
            self.send(batch, ATTEMPTS).await;
        }
        // What finished before the stop: one attempt, within AT_STOP (within the instance's shutdown timeout);
        // what is not sent then is counted.
        spans.close();
        let mut rest = Vec::new();
        while let Ok(span) = spans.try_recv() {
            rest.push(span);
        }
        let unsent = std::sync::atomic::AtomicU64::new(rest.len() as u64);
        let sending = async {
            for batch in rest.chunks(BATCH) {
                self.send(batch.to_vec(), 1).await;
                unsent.fetch_sub(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
            }
        };
        if tokio::time::timeout(AT_STOP, sending).await.is_err() {
            self.metrics.verdict_spans_failed.add(unsent.load(std::sync::atomic::Ordering::Relaxed));
        }
    }

    async fn send(&self, spans: Vec<Span>, attempts: u32) {
        let count = spans.len() as u64;
        let body = export_of(spans).encode_to_vec();
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(2));
        for attempt in 1..=attempts {
            let sent = self
                .client
                .post(self.url.clone())
                .header("content-type", "application/x-protobuf")
                .body(body.clone())
                .send()
                .await;
            let retry = match &sent {
                Ok(answer) if answer.status().is_success() => {
                    self.metrics.verdict_spans_exported.add(count);
                    return;
                }
                Ok(answer) => answer.status().as_u16() == 429 || answer.status().is_server_error(),
                Err(_) => true,
            };
            if !retry || attempt == attempts {
                self.metrics.verdict_spans_failed.add(count);
                if self.metrics.first_time("verdict spans failed") {
                    let outcome = match sent {
                        Ok(answer) => format!("HTTP {}", answer.status()),
                        Err(error) => crate::error::with_causes(&error),
                    };
                    tracing::warn!(endpoint = %self.url, %outcome, "verdict spans could not be exported (logged once; counted in verdict_spans_failed)");
                }
                return;
            }
            tokio::time::sleep(backoff.next()).await;
        }
    }
}

fn export_of(spans: Vec<Span>) -> ExportTraceServiceRequest {
    let service = KeyValue {
        key: "service.name".into(),
        value: Some(crate::spans::otlp::proto::AnyValue {
            value: Some(crate::spans::otlp::proto::any_value::Value::StringValue("livecheck".into())),
        }),
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: vec![service] }),
            scope_spans: vec![ScopeSpans { spans }],
        }],
    }
}
