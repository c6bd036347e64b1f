use std::{future::Future, marker::PhantomData, sync::Arc};

use serde::{de::DeserializeOwned, Serialize};

use super::{Agent, Event};
use crate::{
    context::Headers,
    transport::{Delivery, Message},
    LiveCheck, Result,
};

/// A stream of `V` values keyed by strings, on the app's transport.
pub struct Topic<V> {
    app: LiveCheck,
    name: Arc<str>,
    _value: PhantomData<fn() -> V>,
}

impl<V> Clone for Topic<V> {
    fn clone(&self) -> Self {
        Topic { app: self.app.clone(), name: self.name.clone(), _value: PhantomData }
    }
}

impl<V: Serialize + DeserializeOwned + Send + 'static> Topic<V> {
    /// The topic `name` of `app`'s transport (created on first use).
    pub fn new(app: &LiveCheck, name: impl Into<String>) -> Self {
        Topic { app: app.clone(), name: name.into().into(), _value: PhantomData }
    }

    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Publishes `value` under `key`, carrying the current test (once, signed when the app signs test context, on
    /// the app's [carriers](crate::LiveCheckBuilder::context_carriers)); resolves when the log has stored it — the acknowledgement — with where it landed.
    pub async fn send(&self, key: &str, value: &V) -> Result<Delivery> {
        let mut headers = Headers::new();
        self.app.shared.publisher.append_current_test(&mut headers);
        let message = Message { key: Some(key.to_owned()), value: serde_json::to_vec(value)?, headers };
        self.app.shared.transport.publish(&self.name, message).await
    }

    /// Starts an agent: `handler` runs for every message, up to `concurrency` at once, with the message's test
    /// current while it handles it. Members of the same `group` share the messages. Values that do not decode
    /// are logged and counted (`metrics().stream_messages_malformed`); a handler's error is logged.
    pub async fn agent<F, Fut>(&self, group: &str, concurrency: usize, handler: F) -> Result<Agent>
    where
        F: Fn(Event<V>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        Agent::start(self.app.clone(), self.name.clone(), group, concurrency, handler).await
    }
}
