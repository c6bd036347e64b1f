use std::{future::Future, marker::PhantomData, sync::Arc, time::Duration};

use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::{
    app::{consume, Handled},
    backoff::Backoff,
    LiveCheck, Result,
};

/// One message as an agent sees it.
#[derive(Debug, Clone)]
pub struct Event<V> {
    /// The message key.
    pub key: Option<String>,
    /// The decoded value.
    pub value: V,
    /// Where it was read.
    pub partition: u32,
    /// Its offset.
    pub offset: u64,
}

/// A running consumer of a topic; stops when shut down or dropped.
#[must_use = "the agent stops when this is dropped"]
pub struct Agent {
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Agent {
    pub(super) async fn start<V, F, Fut>(
        app: LiveCheck,
        topic: Arc<str>,
        group: &str,
        concurrency: usize,
        handler: F,
    ) -> Result<Agent>
    where
        V: DeserializeOwned + Send + 'static,
        F: Fn(Event<V>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let subscription = app.shared.transport.subscribe(&[&topic], group).await?;
        let consumer =
            crate::app::Consumer { consumer: "agent", group: group.to_owned(), streams: vec![topic.to_string()] };
        let runs = app.shared.consumers.run(consumer);
        let concurrency = concurrency.max(1);
        let shutdown = CancellationToken::new();
        let handler = Arc::new(handler);
        let _value = PhantomData::<V>;
        let task = tokio::spawn(consume("agent", topic.clone(), subscription, concurrency, runs, shutdown.clone(), {
            let shutdown = shutdown.clone();
            move |received| {
                let (app, handler, topic, shutdown) = (app.clone(), handler.clone(), topic.clone(), shutdown.clone());
                async move {
                    let message = &received.message;
                    let give_up = tokio::time::Instant::now() + RETRY_FOR;
                    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
                    loop {
                        let value: V = match serde_json::from_slice(&message.value) {
                            Ok(value) => value,
                            Err(error) => {
                                app.shared.metrics.stream_messages_malformed.inc();
                                if app.shared.metrics.first_time(&format!("malformed message on {topic}")) {
                                    tracing::warn!(%topic, %error, "dropping a message that does not decode (logged once per topic)");
                                }
                                let cause = crate::app::dead_letter::MALFORMED;
                                crate::app::dead_letter::copy(&app, &received, cause, &error.to_string());
                                return Handled::Done;
                            }
                        };
                        let test = app.test_from_headers(&message.headers);
                        let event = Event {
                            key: message.key.clone(),
                            value,
                            partition: received.partition,
                            offset: received.offset,
                        };
                        let Err(error) = crate::context::scope(test, handler(event)).await else {
                            return Handled::Done;
                        };
                        let error_text = format!("{error:#}");
                        if !is_transient(&error) {
                            tracing::warn!(%topic, error = %error_text, "agent failed to handle a message");
                            return Handled::Done;
                        }
                        if tokio::time::Instant::now() + backoff.peek() > give_up {
                            app.shared.metrics.stream_messages_failed.inc();
                            tracing::error!(%topic, error = %error_text, offset = received.offset,
                                    "agent kept failing on a transient error; the message is left uncommitted and \
                                     is delivered again after a restart");
                            return Handled::Abandoned;
                        }
                        app.shared.metrics.stream_messages_retried.inc();
                        let delay = backoff.next();
                        tracing::warn!(%topic, error = %error_text, retry_in = ?delay,
                                "agent failed on a transient error; retrying the message");
                        tokio::select! {
                            _ = shutdown.cancelled() => return Handled::Abandoned,
                            _ = tokio::time::sleep(delay) => {}
                        }
                    }
                }
            }
        }));
        Ok(Agent { shutdown, task: Some(task) })
    }

    /// Stops consuming and waits for the messages in flight.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// How long a message whose handler fails on a transient error is retried before it is left uncommitted.
const RETRY_FOR: Duration = Duration::from_secs(300);

/// Whether a handler's error is transient: it comes from a retriable LiveCheck error (a full disk, a broker away).
fn is_transient(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| cause.downcast_ref::<crate::Error>().is_some_and(crate::Error::is_retriable))
}
