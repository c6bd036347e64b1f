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
//!
//! Here: the transport, its producer and its errors. The settings are in `config`, the streams' lookup and
//! creation in `admin`, reading outside a group (partition ends, a partition from an offset) in `offsets`, Kafka
//! messages as transport messages in `message`, a group member in `member` (its group's owners watch in
//! `owners`), leader election in `leader`.

mod admin;
mod config;
mod leader;
mod member;
mod message;
mod offsets;
mod owners;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use rdkafka::{
    error::KafkaError,
    message::{Header, OwnedHeaders},
    producer::{FutureProducer, FutureRecord, Producer},
    types::RDKafkaErrorCode,
    ClientConfig,
};

use super::{
    check_co_partitioned,
    drop_deadline::{off_runtime, DropDeadline},
    BoxFuture, Delivery, Leadership, Message, Received, Subscription, Transport,
};
use crate::{Error, Result};
use config::{client_config, set_if_absent};
use message::received;

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
    /// How long flushing the producer (`flush`, or a drop), closing a member or dropping a leadership waits.
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
}

/// Sends what `producer` still holds, waiting `within` at most. Blocks: for a blocking task or a thread of its own.
fn flush(producer: &FutureProducer, within: Duration) -> Result<()> {
    producer.flush(within).map_err(|e| {
        let queued = producer.in_flight_count();
        kafka(&format!("flushing the producer: {queued} messages still queued after {within:?}"), e)
    })
}

/// Runs blocking librdkafka work off the async threads.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(|e| Error::transport("a kafka task", false, e))?
}

impl Transport for KafkaTransport {
    fn describe(&self) -> String {
        format!("kafka://{}", self.inner.config.get("bootstrap.servers").unwrap_or_default())
    }

    fn set_drop_deadline(&self, deadline: std::time::Instant) {
        self.inner.drop_deadline.set(deadline);
    }

    fn flush(&self) -> BoxFuture<'_, Result<()>> {
        let (producer, within) = (self.inner.producer.clone(), self.inner.drop_deadline.wait());
        Box::pin(blocking(move || flush(&producer, within)))
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
            blocking(move || transport.partition_ends(&stream, partitions)).await
        })
    }

    fn read<'a>(
        &'a self,
        stream: &'a str,
        partition: u32,
        from: u64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Received>>> {
        let (transport, stream) = (self.clone(), Arc::<str>::from(stream));
        Box::pin(blocking(move || transport.read_partition(stream, partition, from, limit)))
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
        // What the producer still holds gets until the drop deadline to go out — sent by a thread of its own when
        // this is an async runtime's thread, which must not block (a stopping instance flushed already, waiting for
        // it: `Transport::flush`).
        let (producer, within) = (self.producer.clone(), self.drop_deadline.wait());
        off_runtime(move || {
            if let Err(error) = flush(&producer, within) {
                let error = crate::error::with_causes(&error);
                tracing::warn!(%error, "kafka: messages still queued in the producer are dropped");
            }
        });
    }
}
