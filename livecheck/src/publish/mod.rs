//! What the case side sends out: a service's signals and test executions, published within a bounded wait for
//! the broker, signed when the app signs. The layer between the transport and the cases: a case holds a
//! [`Publisher`], never the app.

mod stream_creation;
mod stream_names;

use std::{sync::Arc, time::Duration};

use serde::Serialize;

pub(crate) use stream_creation::StreamCreation;
pub use stream_names::StreamNames;

use crate::{
    clock::Clock,
    context::{current_test_ref, Carriers, Headers, Signer, TestContext, HEADER_EXECUTION_SIGNATURE},
    error::with_causes,
    metrics::{Counter, Metrics},
    transport::{Message, Transport},
    wire::TestExecution,
    Error, Result,
};

/// Publishes of services' messages that may wait for the broker after the service's request went on.
pub(crate) const MAX_UNCONFIRMED: usize = 10_000;

/// The handles a case needs to send what it sends: the transport, the stream names, the signer and the carriers of
/// test context, the clock, the counters, and the bound on publishes waiting for the broker.
pub(crate) struct Publisher {
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) streams: StreamNames,
    pub(crate) clock: Clock,
    /// Signs what is published; `None` when signing is off.
    pub(crate) signer: Option<Signer>,
    /// Where the test context goes on what is published: headers, baggage or both.
    carriers: Carriers,
    pub(crate) metrics: Arc<Metrics>,
    /// Draws a number in `0..1` for a case's sampling probability.
    pub(crate) draw: Box<dyn Fn() -> f64 + Send + Sync>,
    /// Creates the streams before a service's first publish, as an instance does when it starts.
    pub(crate) stream_creation: StreamCreation,
    /// Permits for publishes of services' messages still waiting for the broker (see `publish_bounded`).
    unconfirmed: Arc<tokio::sync::Semaphore>,
    /// How long a service's request waits for the broker to take its message.
    signal_send_timeout: Duration,
    /// The version of this service, written on the executions it samples and the signals it sends.
    pub(crate) service_version: Option<Arc<str>>,
}

/// What a [`Publisher`] is made of.
pub(crate) struct PublisherParts {
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) streams: StreamNames,
    pub(crate) partitions: Option<u32>,
    pub(crate) clock: Clock,
    pub(crate) signer: Option<Signer>,
    pub(crate) carriers: Carriers,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) draw: Box<dyn Fn() -> f64 + Send + Sync>,
    pub(crate) signal_send_timeout: Duration,
    pub(crate) service_version: Option<Arc<str>>,
}

impl Publisher {
    pub(crate) fn new(parts: PublisherParts) -> Self {
        let PublisherParts {
            transport,
            streams,
            partitions,
            clock,
            signer,
            carriers,
            metrics,
            draw,
            signal_send_timeout,
            service_version,
        } = parts;
        Publisher {
            stream_creation: StreamCreation::new(transport.clone(), streams.clone(), partitions),
            transport,
            streams,
            clock,
            signer,
            carriers,
            metrics,
            draw,
            unconfirmed: Arc::new(tokio::sync::Semaphore::new(MAX_UNCONFIRMED)),
            signal_send_timeout,
            service_version,
        }
    }

    /// Writes `test` on the headers of a message this app publishes: signed when the app signs, on the carriers it
    /// was built with (see [`TestContext::append_to`]). Baggage with no room left for our members is counted
    /// (`baggage_over_limits`) and logged once.
    pub(crate) fn append_context(&self, test: &TestContext, headers: &mut Headers) {
        if test.append_with(headers, self.signer.as_ref(), self.carriers).is_err() {
            self.metrics.baggage_over_limits.inc();
            if self.metrics.first_time("baggage over limits") {
                tracing::warn!(
                    test_id = test.id(),
                    carriers = ?self.carriers,
                    "a message's baggage has no room for the test (8192 bytes, 64 members at most): the test is \
                     not in its baggage (logged once; counted in baggage_over_limits)"
                );
            }
        }
    }

    /// [`Publisher::append_context`] for the current test; with none the headers are left untouched.
    pub(crate) fn append_current_test(&self, headers: &mut Headers) {
        current_test_ref(|test| {
            if let Some(test) = test {
                self.append_context(test, headers);
            }
        });
    }

    /// Publishes a service's message (`what`: "a signal", "a test execution"), waiting at most
    /// `signal_send_timeout` for the broker. The publish runs as a task of its own: past the timeout the service's
    /// request goes on while the publish keeps trying (counted in `unconfirmed`, logged once; a publish that fails
    /// later is counted in `unconfirmed_failed`). At most [`MAX_UNCONFIRMED`] wait so; beyond, a message is dropped
    /// at once (`unconfirmed_dropped`): memory stays bounded while the broker is away.
    pub(crate) async fn publish_bounded(
        &self,
        stream: &str,
        message: Message,
        unconfirmed: &Counter,
        what: &'static str,
    ) -> Result<()> {
        let Ok(permit) = self.unconfirmed.clone().try_acquire_owned() else {
            self.metrics.unconfirmed_dropped.inc();
            if self.metrics.first_time("unconfirmed dropped") {
                tracing::warn!(%stream, "{MAX_UNCONFIRMED} messages already wait for the broker; dropping {what} (logged once; counted in unconfirmed_dropped)");
            }
            return Ok(());
        };
        let (transport, stream_name, creation) =
            (self.transport.clone(), stream.to_owned(), self.stream_creation.clone());
        let mut publish = tokio::spawn(async move {
            let published = match creation.ensure().await {
                Ok(()) => transport.publish(&stream_name, message).await,
                Err(error) => Err(error),
            };
            drop(permit);
            published
        });
        let timeout = self.signal_send_timeout;
        match tokio::time::timeout(timeout, &mut publish).await {
            Ok(Ok(published)) => published.map(|_| ()),
            Ok(Err(join)) => Err(Error::transport("publishing", false, join)),
            Err(_) => {
                unconfirmed.inc();
                if self.metrics.first_time(what) {
                    tracing::warn!(
                        %stream,
                        ?timeout,
                        "the broker did not take {what} in time; the request goes on while it is still being \
                         published (logged once; counted in the metrics' *_unconfirmed)"
                    );
                }
                let (metrics, stream) = (self.metrics.clone(), stream.to_owned());
                tokio::spawn(async move {
                    if let Ok(Err(error)) = publish.await {
                        metrics.unconfirmed_failed.inc();
                        tracing::warn!(%stream, error = %with_causes(&error), "{what} sent without confirmation could not be published");
                    }
                });
                Ok(())
            }
        }
    }

    /// How long a service's request waits for the broker to take its message (`signal_send_timeout`).
    #[cfg_attr(not(feature = "web"), allow(dead_code))]
    pub(crate) fn send_timeout(&self) -> Duration {
        self.signal_send_timeout
    }

    /// An execution of `case_name` issued now: its context (signed when the app signs) and the message that publishes
    /// it on the pending-tests stream (with the execution's own signature when the app signs, see
    /// [`HEADER_EXECUTION_SIGNATURE`]). `by_hand` marks a test started by hand rather than sampled from traffic.
    pub(crate) fn execution_message<A: Serialize + ?Sized>(
        &self,
        case_name: &str,
        id: Option<&str>,
        args: &A,
        expires_after: Duration,
        by_hand: bool,
    ) -> Result<(TestContext, Message)> {
        let now = self.clock.now();
        let expires = chrono::Duration::from_std(expires_after)
            .ok()
            .and_then(|ttl| now.checked_add_signed(ttl))
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
        let id = id.map_or_else(crate::sync::random_uuid, str::to_owned);
        let mut execution = TestExecution::new(id, case_name, now, expires, args)?;
        execution.trace_id = crate::context::current_trace_id();
        execution.by_hand = by_hand;
        execution.service_version = self.service_version.as_deref().map(str::to_owned);
        let context = TestContext::of(&execution).signed_by(self.signer.as_ref());
        let mut headers = Headers::new();
        self.append_context(&context, &mut headers);
        let value = serde_json::to_vec(&execution)?;
        if let Some(signer) = &self.signer {
            headers.push(HEADER_EXECUTION_SIGNATURE, signer.sign_execution(&value));
        }
        let message = Message { key: Some(execution.id.clone()), value, headers };
        Ok((context, message))
    }
}
