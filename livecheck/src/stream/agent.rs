use std::{future::Future, marker::PhantomData, sync::Arc};

use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::{
    app::{consume, Handled},
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
        let shutdown = CancellationToken::new();
        let handler = Arc::new(handler);
        let _value = PhantomData::<V>;
        let task = tokio::spawn(consume(
            "agent",
            topic.clone(),
            subscription,
            concurrency.max(1),
            shutdown.clone(),
            move |received| {
                let (app, handler, topic) = (app.clone(), handler.clone(), topic.clone());
                async move {
                    let message = &received.message;
                    let value: V = match serde_json::from_slice(&message.value) {
                        Ok(value) => value,
                        Err(error) => {
                            app.shared.metrics.stream_messages_malformed.inc();
                            if app.shared.metrics.first_time(&format!("malformed message on {topic}")) {
                                tracing::warn!(%topic, %error, "dropping a message that does not decode (logged once per topic)");
                            }
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
                    if let Err(error) = crate::context::scope(test, handler(event)).await {
                        tracing::warn!(%topic, error = %format!("{error:#}"), "agent failed to handle a message");
                    }
                    Handled::Done
                }
            },
        ));
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
