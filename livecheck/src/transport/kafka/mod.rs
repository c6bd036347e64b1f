//! The Kafka transport: LiveCheck's streams as Kafka topics, through librdkafka (built from source, bundled).
//!
//! A translation of the transport model: keys are partitioned with murmur2 (as Kafka's Java client and Faust do,
//! so Python and Rust producers put a test id in the same partition); a subscription is one consumer-group member
//! with the range assignor, so partition *p* of equally partitioned topics is co-located; librdkafka's rebalance
//! callbacks become `Revoked` / `Assigned` events, and a revocation completes only once the app let go; offsets are
//! committed with metadata; `pause` / `resume` are Kafka's; the leader of a group is the member assigned the one
//! partition of a leader topic. Every blocking librdkafka call runs off the async threads.
//!
//! Broker URL: `kafka://host:port[,host:port…][?name=value&…]`; the query and `LIVECHECK_KAFKA_*` environment
//! variables (`LIVECHECK_KAFKA_SASL_USERNAME=…` → `sasl.username`) pass settings to librdkafka.

mod leader;
mod member;
mod owners;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    consumer::{BaseConsumer, Consumer},
    error::KafkaError,
    message::{Header, Headers as _, OwnedHeaders},
    producer::{FutureProducer, FutureRecord, Producer},
    types::RDKafkaErrorCode,
    ClientConfig, Message as _, Offset, TopicPartitionList,
};

use super::{
    check_co_partitioned, drop_deadline::DropDeadline, BoxFuture, Delivery, Leadership, Message, Received,
    Subscription, Transport,
};
use crate::{context::Headers, sync::lock, Error, Result};

/// How long a metadata or watermark request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a publish may wait for the broker: to find or create its stream, then to store the message.
const PUBLISH_WITHIN: Duration = Duration::from_secs(30);

/// LiveCheck's streams on a Kafka cluster.
#[derive(Clone)]
pub struct KafkaTransport {
    inner: Arc<Inner>,
}

struct Inner {
    config: ClientConfig,
    producer: FutureProducer,
    default_partitions: u32,
    /// Each stream's partition count once known; the first caller looks it up (or creates the stream), the others
    /// wait for its answer.
    partitions: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<u32>>>>,
    /// How long dropping the producer (its flush), a member or a leadership waits.
    drop_deadline: DropDeadline,
}

/// A Kafka error while doing `context`. Librdkafka retries what it can by itself; what reaches here is retriable
/// unless it is about the client's own configuration.
fn kafka(context: &str, error: impl Into<KafkaFailure>) -> Error {
    let failure = error.into();
    let retriable =
        !matches!(failure, KafkaFailure::Client(KafkaError::ClientConfig(..) | KafkaError::ClientCreation(_)));
    Error::transport(format!("kafka: {context}"), retriable, failure)
}

/// What a Kafka operation failed with.
#[derive(Debug, thiserror::Error)]
enum KafkaFailure {
    #[error(transparent)]
    Client(#[from] KafkaError),
    #[error("{0}")]
    Broker(RDKafkaErrorCode),
    #[error("{0}")]
    Other(&'static str),
}

impl From<RDKafkaErrorCode> for KafkaFailure {
    fn from(code: RDKafkaErrorCode) -> Self {
        KafkaFailure::Broker(code)
    }
}

impl From<&'static str> for KafkaFailure {
    fn from(what: &'static str) -> Self {
        KafkaFailure::Other(what)
    }
}

/// The librdkafka settings a `kafka://` URL and the environment name.
fn client_config(url: &str) -> Result<ClientConfig> {
    let rest = url.strip_prefix("kafka://").ok_or_else(|| Error::Config(format!("not a kafka:// URL: `{url}`")))?;
    let (brokers, query) = rest.split_once('?').unwrap_or((rest, ""));
    let brokers = brokers.trim_end_matches('/');
    if brokers.is_empty() {
        return Err(Error::Config(format!("no broker in `{url}` (kafka://host:port[,host:port])")));
    }
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    for (name, value) in std::env::vars() {
        if let Some(setting) = name.strip_prefix("LIVECHECK_KAFKA_") {
            config.set(setting.to_lowercase().replace('_', "."), value);
        }
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| Error::Config(format!("`{pair}` in `{url}` is not a name=value setting")))?;
        config.set(name, value);
    }
    Ok(config)
}

impl KafkaTransport {
    /// Connects to the cluster a `kafka://` URL names (see the module's documentation).
    pub fn connect(url: &str) -> Result<Self> {
        let config = client_config(url)?;
        let producer: FutureProducer = config
            .clone()
            // Kafka's own partitioner (murmur2), as the Java client and Faust use, and the other transports.
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "1")
            .set("acks", "all")
            .create()
            .map_err(|e| kafka("creating the producer", e))?;
        Ok(KafkaTransport {
            inner: Arc::new(Inner {
                config,
                producer,
                default_partitions: 8,
                partitions: Mutex::default(),
                drop_deadline: DropDeadline::default(),
            }),
        })
    }

    /// Partitions of the streams this transport creates (default 8). Call before sharing the transport.
    #[must_use]
    pub fn with_partitions(self, partitions: u32) -> Self {
        match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                inner.default_partitions = partitions.max(1);
                KafkaTransport { inner: Arc::new(inner) }
            }
            Err(shared) => {
                tracing::warn!("KafkaTransport options must be set before the transport is shared; ignored");
                KafkaTransport { inner: shared }
            }
        }
    }

    /// A consumer outside any group, for metadata and reading; it tells when it reached a partition's end.
    fn plain_consumer(&self) -> Result<BaseConsumer> {
        self.inner
            .config
            .clone()
            .set("group.id", format!("livecheck-reader-{:016x}", fastrand::u64(..)))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "10")
            .create()
            .map_err(|e| kafka("creating a consumer", e))
    }

    /// The stream's partition count, creating it with `partitions` when it does not exist. Asked once per stream:
    /// concurrent callers wait for the first one's answer (a burst of publishes does not make a burst of lookups).
    ///
    /// Cancellation safe: a caller dropped while it looks the stream up leaves the lookup to the next caller.
    async fn ensure_stream(&self, stream: &str, partitions: u32) -> Result<u32> {
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

/// Sets `name` unless the URL or the environment did.
fn set_if_absent(config: &mut ClientConfig, name: &str, value: &str) {
    if config.get(name).is_none() {
        config.set(name, value);
    }
}

/// Runs blocking librdkafka work off the async threads.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(|e| Error::transport("a kafka task", false, e))?
}

/// LiveCheck headers from a Kafka message's headers.
fn headers_of(message: &impl rdkafka::Message) -> Headers {
    let mut headers = Headers::new();
    if let Some(kafka_headers) = message.headers() {
        for header in kafka_headers.iter() {
            headers.push(header.key.to_owned(), header.value.unwrap_or_default().to_vec());
        }
    }
    headers
}

/// A received Kafka message as a transport message.
fn received(stream: Arc<str>, message: &impl rdkafka::Message) -> Received {
    let key = message.key().map(|k| String::from_utf8_lossy(k).into_owned());
    let value = message.payload().unwrap_or_default().to_vec();
    let message_out = Message { key, value, headers: headers_of(message) };
    Received {
        stream,
        partition: message.partition() as u32,
        offset: message.offset().max(0) as u64,
        message: Arc::new(message_out),
    }
}

impl Transport for KafkaTransport {
    fn describe(&self) -> String {
        format!("kafka://{}", self.inner.config.get("bootstrap.servers").unwrap_or_default())
    }

    fn set_drop_deadline(&self, deadline: std::time::Instant) {
        self.inner.drop_deadline.set(deadline);
    }

    fn create_stream<'a>(&'a self, stream: &'a str, partitions: u32) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { self.ensure_stream(stream, partitions.max(1)).await.map(|_| ()) })
    }

    fn publish<'a>(&'a self, stream: &'a str, message: Message) -> BoxFuture<'a, Result<Delivery>> {
        Box::pin(async move {
            // The stream first, created when missing as a subscriber or an instance creates it: a broker that does
            // not create topics on first use (tansu; Kafka with `auto.create.topics.enable=false`) would otherwise
            // fail the message after holding it for `topic.metadata.propagation.max.ms`, and one that does would
            // create it with its own default partition count, not the co-partitioned streams' one.
            let found = self.ensure_stream(stream, self.inner.default_partitions);
            tokio::time::timeout(PUBLISH_WITHIN, found).await.map_err(|_| {
                kafka(&format!("publishing to `{stream}`"), "the broker did not answer (looking up the stream)")
            })??;
            let mut headers = OwnedHeaders::new_with_capacity(message.headers.len());
            for (name, value) in message.headers.iter() {
                headers = headers.insert(Header { key: name, value: Some(value) });
            }
            let mut record = FutureRecord::to(stream).payload(&message.value).headers(headers);
            if let Some(key) = &message.key {
                record = record.key(key);
            }
            let delivery = self
                .inner
                .producer
                .send(record, PUBLISH_WITHIN)
                .await
                .map_err(|(e, _)| kafka(&format!("publishing to `{stream}`"), e))?;
            Ok(Delivery { partition: delivery.partition as u32, offset: delivery.offset as u64 })
        })
    }

    fn subscribe<'a>(&'a self, streams: &'a [&'a str], group: &'a str) -> BoxFuture<'a, Result<Box<dyn Subscription>>> {
        Box::pin(async move {
            let mut counts = Vec::new();
            for stream in streams {
                counts.push((*stream, self.ensure_stream(stream, self.inner.default_partitions).await?));
            }
            check_co_partitioned(&counts)?;
            let partitions = counts.first().map_or(0, |(_, n)| *n);
            let config = self.inner.config.clone();
            let (streams, group): (Vec<Arc<str>>, String) =
                (streams.iter().map(|s| (*s).into()).collect(), group.into());
            let subscription = blocking(move || member::join(config, streams, &group, partitions)).await?;
            Ok(Box::new(subscription.with_drop_deadline(self.inner.drop_deadline.clone())) as Box<dyn Subscription>)
        })
    }

    fn end_offsets<'a>(&'a self, stream: &'a str) -> BoxFuture<'a, Result<Vec<u64>>> {
        Box::pin(async move {
            let partitions = self.ensure_stream(stream, self.inner.default_partitions).await?;
            let (transport, stream) = (self.clone(), stream.to_owned());
            // The watermark a ListOffsets request answers, then read on to each partition's end: some
            // Kafka-compatible brokers (tansu 0.6) answer too low for batched messages, and what follows corrects
            // it (on Kafka the end is reached at once).
            blocking(move || {
                let consumer = transport.plain_consumer()?;
                let mut ends = Vec::with_capacity(partitions as usize);
                let mut assignment = TopicPartitionList::new();
                for p in 0..partitions {
                    let (_, high) = consumer
                        .fetch_watermarks(&stream, p as i32, REQUEST_TIMEOUT)
                        .map_err(|e| kafka(&format!("end of `{stream}` partition {p}"), e))?;
                    ends.push(high.max(0) as u64);
                    assignment
                        .add_partition_offset(&stream, p as i32, Offset::Offset(high.max(0)))
                        .map_err(|e| kafka("assigning a partition", e))?;
                }
                consumer.assign(&assignment).map_err(|e| kafka("assigning partitions", e))?;
                let mut unknown: std::collections::HashSet<u32> = (0..partitions).collect();
                let started = std::time::Instant::now();
                let mut progress = vec![started; partitions as usize];
                let mut rescanned = vec![false; partitions as usize];
                while !unknown.is_empty() {
                    if started.elapsed() >= 3 * REQUEST_TIMEOUT {
                        return Err(kafka(&format!("the end of `{stream}`"), "timed out"));
                    }
                    match consumer.poll(Duration::from_millis(50)) {
                        Some(Ok(message)) => {
                            let p = message.partition() as usize;
                            ends[p] = ends[p].max(message.offset() as u64 + 1);
                            progress[p] = std::time::Instant::now();
                        }
                        Some(Err(KafkaError::PartitionEOF(p))) => {
                            unknown.remove(&(p as u32));
                        }
                        // A broker restarting or away for a moment: librdkafka reconnects; the deadline bounds it.
                        Some(Err(error)) => tracing::debug!(%error, %stream, "reading to the end: retrying"),
                        None => {}
                    }
                    // A broker that cannot serve a fetch from inside a record batch (tansu 0.6, after its low
                    // answer) makes no progress there: that partition is read from its beginning instead.
                    for &p in &unknown {
                        let i = p as usize;
                        if !rescanned[i] && progress[i].elapsed() > Duration::from_secs(1) {
                            rescanned[i] = true;
                            progress[i] = std::time::Instant::now();
                            consumer
                                .seek(&stream, p as i32, Offset::Beginning, REQUEST_TIMEOUT)
                                .map_err(|e| kafka(&format!("reading `{stream}` from its start"), e))?;
                        }
                    }
                }
                Ok(ends)
            })
            .await
        })
    }

    fn read<'a>(
        &'a self,
        stream: &'a str,
        partition: u32,
        from: u64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Received>>> {
        let (transport, name) = (self.clone(), Arc::<str>::from(stream));
        Box::pin(blocking(move || {
            let consumer = transport.plain_consumer()?;
            let mut assignment = TopicPartitionList::new();
            assignment
                .add_partition_offset(&name, partition as i32, Offset::Offset(from as i64))
                .map_err(|e| kafka("assigning a partition", e))?;
            consumer.assign(&assignment).map_err(|e| kafka("assigning a partition", e))?;
            let mut read = Vec::new();
            // A long read on a slow broker is fine as long as it moves: the timeout is for no progress.
            let mut deadline = std::time::Instant::now() + REQUEST_TIMEOUT;
            while read.len() < limit {
                if std::time::Instant::now() >= deadline {
                    return Err(kafka(&format!("reading `{name}` partition {partition}"), "timed out"));
                }
                match consumer.poll(Duration::from_millis(100)) {
                    Some(Ok(message)) => {
                        read.push(received(name.clone(), &message));
                        deadline = std::time::Instant::now() + REQUEST_TIMEOUT;
                    }
                    Some(Err(KafkaError::PartitionEOF(_))) => break,
                    // A broker restarting or away for a moment: librdkafka reconnects; the deadline bounds it.
                    Some(Err(error)) => tracing::debug!(%error, stream = %name, "reading: retrying"),
                    None => {}
                }
            }
            Ok(read)
        }))
    }

    fn elect_leader<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<Box<dyn Leadership>>> {
        Box::pin(async move {
            let topic = format!("{group}-leader");
            self.ensure_stream(&topic, 1).await?;
            let (config, group) = (self.inner.config.clone(), group.to_owned());
            let candidacy = blocking(move || leader::candidacy(config, &topic, &group)).await?;
            Ok(Box::new(candidacy.with_drop_deadline(self.inner.drop_deadline.clone())) as Box<dyn Leadership>)
        })
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // What is still queued gets until the drop deadline to go out.
        let within = self.drop_deadline.wait();
        if let Err(error) = self.producer.flush(within) {
            let queued = self.producer.in_flight_count();
            tracing::warn!(%error, queued, ?within, "kafka: messages still queued in the producer are dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_names_brokers_and_passes_settings_through() {
        let config = client_config("kafka://a:9092,b:9093?security.protocol=SASL_SSL&sasl.mechanism=PLAIN").unwrap();
        assert_eq!(config.get("bootstrap.servers"), Some("a:9092,b:9093"));
        assert_eq!(config.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(config.get("sasl.mechanism"), Some("PLAIN"));
        assert!(client_config("kafka://").is_err());
        assert!(client_config("kafka://a:1?oops").is_err());
    }
}
