//! The streams as topics: each one's partition count, looked up once, and the topic created when it is missing —
//! retried with backoff while the cluster does not answer.

use std::time::Duration;

use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    consumer::Consumer,
    types::RDKafkaErrorCode,
};

use super::{blocking, kafka, KafkaTransport, REQUEST_TIMEOUT};
use crate::{sync::lock, Result};

impl KafkaTransport {
    /// The stream's partition count, creating it with `partitions` when it does not exist. Asked once per stream:
    /// concurrent callers wait for the first one's answer (a burst of publishes does not make a burst of lookups).
    ///
    /// Cancellation safe: a caller dropped while it looks the stream up leaves the lookup to the next caller.
    pub(super) async fn ensure_stream(&self, stream: &str, partitions: u32) -> Result<u32> {
        let known = lock(&self.inner.partitions).entry(stream.to_owned()).or_default().clone();
        let what = format!("looking up `{stream}`");
        let n = known
            .get_or_try_init(|| {
                retrying(&what, || async {
                    match self.existing_partitions(stream).await? {
                        Some(n) => Ok(n),
                        None => {
                            self.create_topic(stream, partitions).await?;
                            Ok(self.existing_partitions(stream).await?.unwrap_or(partitions))
                        }
                    }
                })
            })
            .await?;
        Ok(*n)
    }

    async fn existing_partitions(&self, stream: &str) -> Result<Option<u32>> {
        let transport = self.clone();
        let stream = stream.to_owned();
        blocking(move || {
            let consumer = transport.plain_consumer()?;
            let metadata = consumer
                .fetch_metadata(Some(&stream), REQUEST_TIMEOUT)
                .map_err(|e| kafka(&format!("metadata of `{stream}`"), e))?;
            let topic = metadata.topics().iter().find(|t| t.name() == stream);
            Ok(topic.filter(|t| t.error().is_none() && !t.partitions().is_empty()).map(|t| t.partitions().len() as u32))
        })
        .await
    }

    async fn create_topic(&self, stream: &str, partitions: u32) -> Result<()> {
        let admin: AdminClient<DefaultClientContext> =
            self.inner.config.create().map_err(|e| kafka("creating the admin client", e))?;
        let mut topic = NewTopic::new(stream, partitions as i32, TopicReplication::Fixed(1));
        if stream.ends_with("-changelog") {
            // A table's changelog (`stream::Table`): the latest value of each key is what matters.
            topic = topic.set("cleanup.policy", "compact");
        }
        let results = admin
            .create_topics([&topic], &AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT)))
            .await
            .map_err(|e| kafka(&format!("creating `{stream}`"), e))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => return Err(kafka(&format!("creating `{topic}`"), code)),
            }
        }
        Ok(())
    }
}

/// Runs `attempt` until it succeeds or fails for good: while the cluster does not answer (a retriable error), tries
/// again with a growing delay (up to 30 s), logging once when it stops answering and once when it answers again.
async fn retrying<T, F, Fut>(what: &str, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut backoff = crate::backoff::Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
    let mut failing = false;
    loop {
        match attempt().await {
            Ok(value) => {
                if failing {
                    tracing::info!(what, "the Kafka cluster answers again");
                }
                return Ok(value);
            }
            Err(error) if error.is_retriable() => {
                if !failing {
                    tracing::warn!(%error, what, "the Kafka cluster does not answer; retrying with backoff until it does");
                    failing = true;
                }
                tokio::time::sleep(backoff.next()).await;
            }
            Err(error) => return Err(error),
        }
    }
}
