//! Where LiveCheck's streams live: a small set of traits and the backends that implement them.
//!
//! The model is Kafka's, so every backend fits it: a *stream* has partitions; a message is published with a key
//! (the test id) and lands in the partition its key hashes to, so the pending-tests and bus streams are
//! co-partitioned. A consumer joins its *group* once for several co-partitioned streams, and partition *p* of all
//! of them is assigned to the same member. Assignment changes are events: a member is told which partitions it
//! gets and which it loses, and a partition moves to its new owner only after the old one let go of it (or was
//! taken for dead). Members *commit* the offset up to which they have processed, with metadata, after processing;
//! a new owner continues from the group's committed offsets. A member can pause one stream (at its capacity) and
//! keep reading the others; its liveness never depends on how often it reads.

mod assignment;
#[cfg(any(feature = "sqlite", feature = "kafka"))]
mod drop_deadline;
#[cfg(feature = "kafka")]
mod kafka;
mod memory;
mod partitioner;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(any(feature = "sqlite", feature = "kafka"))]
mod threaded;
mod url;

use std::{future::Future, pin::Pin, sync::Arc};

pub(crate) use assignment::{check_co_partitioned, owned_partitions};
#[cfg(feature = "kafka")]
#[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
pub use kafka::KafkaTransport;
pub use memory::MemoryTransport;
pub use partitioner::partition_for_key;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::{PoisonCause, SqliteTransport};
pub use url::{from_env, from_url, BROKER_ENV, DEFAULT_BROKER};

use crate::{context::Headers, Result};

/// A boxed future, as the transport traits return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A message to publish or one received.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Message {
    /// The key; messages with the same key go to the same partition.
    pub key: Option<String>,
    /// The payload (JSON for LiveCheck's own streams).
    pub value: Vec<u8>,
    /// Headers, in order.
    pub headers: Headers,
}

impl Message {
    /// The bytes it holds: its key, value and headers' names and values.
    pub fn byte_len(&self) -> usize {
        let headers: usize = self.headers.iter().map(|(name, value)| name.len() + value.len()).sum();
        self.key.as_ref().map_or(0, String::len) + self.value.len() + headers
    }
}

/// A message received from a subscription, with its position.
#[derive(Clone, Debug)]
pub struct Received {
    /// The stream it was read from.
    pub stream: Arc<str>,
    /// The partition it was read from.
    pub partition: u32,
    /// Its offset in that partition.
    pub offset: u64,
    /// The message.
    pub message: Arc<Message>,
}

/// Where a published message landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The partition.
    pub partition: u32,
    /// The offset.
    pub offset: u64,
}

/// A group's committed position in one partition of a stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Committed {
    /// The stream.
    pub stream: Arc<str>,
    /// The next offset to read: everything before it was processed.
    pub offset: u64,
    /// What the committer stored with it (Kafka's commit metadata); empty when nothing was.
    pub metadata: String,
}

/// A partition assigned to a member, with where the group left off in each of the subscribed streams.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// The partition (of every subscribed stream).
    pub partition: u32,
    /// The group's committed position in this partition of each subscribed stream, in subscription order.
    pub committed: Vec<Committed>,
}

impl Assignment {
    /// The committed position in `stream`.
    pub fn committed(&self, stream: &str) -> Option<&Committed> {
        self.committed.iter().find(|c| &*c.stream == stream)
    }
}

/// How a member sees its group: partitions nobody consumes, and what it did about them (see
/// [`Subscription::group_health`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct GroupHealth {
    /// Partitions that have messages after the group's committed offset and, for longer than the group's session
    /// timeout, no member consuming them; empty when all is well. A partition leaves the list once a member holds
    /// it again.
    pub unowned_partitions: Vec<u32>,
    /// How many times this member left and joined its group again to have such partitions assigned.
    pub rejoins: u64,
}

/// What a member of a consumer group receives: changes to its assignment, and messages.
#[derive(Clone, Debug)]
pub enum Event {
    /// These partitions (of every subscribed stream) are now this member's; their messages follow, from the
    /// group's committed offsets.
    Assigned(Vec<Assignment>),
    /// These partitions are taken from this member, to be given to another (or were lost, when this member was
    /// taken for dead). The member still holds them until it next calls `recv` or `try_recv`: before that, it
    /// stops their work and commits what it finished. No message of them follows.
    Revoked(Vec<u32>),
    /// A message of an assigned partition.
    Message(Received),
}

/// A log of streams that several producers and consumer groups share.
pub trait Transport: Send + Sync + 'static {
    /// Creates `stream` with `partitions` partitions if it does not exist; an existing stream is left as it is.
    fn create_stream<'a>(&'a self, stream: &'a str, partitions: u32) -> BoxFuture<'a, Result<()>>;

    /// Publishes `message` and resolves once the log has stored it.
    fn publish<'a>(&'a self, stream: &'a str, message: Message) -> BoxFuture<'a, Result<Delivery>>;

    /// Joins consumer group `group` as one member for all of `streams` together. The streams must have the same
    /// number of partitions (else [`Error::Config`](crate::Error::Config) naming them): partition *p* of every
    /// stream is assigned to the same member, so streams keyed alike (co-partitioned) are processed together.
    /// Assignments come as [`Event`]s; each partition starts at the group's committed offset.
    fn subscribe<'a>(&'a self, streams: &'a [&'a str], group: &'a str) -> BoxFuture<'a, Result<Box<dyn Subscription>>>;

    /// The next offset of each partition of `stream` (what a consumer has read everything before); creates the
    /// stream if needed. Its length is the stream's partition count.
    fn end_offsets<'a>(&'a self, stream: &'a str) -> BoxFuture<'a, Result<Vec<u64>>>;

    /// Up to `limit` messages of one partition from offset `from` on, outside any group (empty at the end).
    fn read<'a>(
        &'a self,
        stream: &'a str,
        partition: u32,
        from: u64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Received>>>;

    /// Enters the election for leader of `group`: exactly one live candidate per group is leader at a time.
    fn elect_leader<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<Box<dyn Leadership>>>;

    /// Where the streams live, as a broker URL without credentials or settings (`sqlite://PATH`,
    /// `kafka://HOST:PORT`, `memory://`), for status pages and logs.
    fn describe(&self) -> String {
        "custom".to_owned()
    }

    /// A stopping LiveCheck instance's deadline (`shutdown_timeout` after [`crate::Running::shutdown`] began):
    /// from then on, the threads of this transport and of the subscriptions and leaderships it made — writing what
    /// is queued, the last commits, leaving the group — are waited for ([`Transport::flush`],
    /// [`Subscription::close`], or a drop) until `deadline` at most, then left to finish in the background, with a
    /// warning. Until a deadline is set, such a wait lasts 5 s at most. A drop never blocks an async runtime's
    /// thread: there a thread of its own waits. The transport stays usable. The default does nothing (nothing of
    /// this transport waits when dropped).
    fn set_drop_deadline(&self, deadline: std::time::Instant) {
        let _ = deadline;
    }

    /// Waits until every message given to [`Transport::publish`] so far is stored — also those whose publisher
    /// stopped waiting — or failed: until the drop deadline at most (5 s while none is set; see
    /// [`Transport::set_drop_deadline`]), then fails with a retriable error. Dropping a transport does not wait for
    /// this on an async runtime's thread: a stopping instance flushes it instead
    /// ([`crate::Running::shutdown`]). The transport stays usable. The default does nothing (every publish is
    /// stored once it resolves).
    ///
    /// Cancellation safe: dropping the future stops only the wait.
    fn flush(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// One member of a consumer group.
pub trait Subscription: Send {
    /// The next event. Membership is kept alive whether or not this is called often (heartbeats do not depend
    /// on it), but a revocation completes only when it is called again.
    ///
    /// Cancellation safe: if the future is dropped before it resolves, no event is lost.
    fn recv(&mut self) -> BoxFuture<'_, Result<Event>>;

    /// The next event if one is ready now, without waiting.
    fn try_recv(&mut self) -> Result<Option<Event>>;

    /// Records that every message of `partition` of `stream` below `next_offset` has been processed, with
    /// `metadata` stored alongside. Takes effect soon after, not necessarily before this returns; a commit for a
    /// partition this member no longer holds is ignored.
    fn commit(&mut self, stream: &str, partition: u32, next_offset: u64, metadata: &str) -> Result<()>;

    /// Stops delivering messages of `stream` (its assigned partitions stay this member's) until
    /// [`Subscription::resume`]; messages of the other streams and assignment events keep coming.
    fn pause(&mut self, stream: &str);

    /// Delivers messages of `stream` again, from where it paused.
    fn resume(&mut self, stream: &str);

    /// Why this member stopped for good — it delivers no more events and no retry brings it back (the embedded
    /// log's file was deleted, a fatal Kafka error, its thread ended) — or `None` while it works. A member waiting
    /// for a broker that is away has not stopped. A consumer whose `recv` fails asks this to know whether to retry
    /// or to end; the instance's `/healthz` is 503 once one ended. The default: never stops.
    fn stopped(&self) -> Option<Arc<crate::Error>> {
        None
    }

    /// The group's health as this member watches it — readable from anywhere, updated as it changes — or `None`
    /// when the backend does not watch (the default). The Kafka backend watches for partitions left without a
    /// consumer by a misbehaving group coordinator, and rejoins the group to heal it.
    fn group_health(&self) -> Option<tokio::sync::watch::Receiver<GroupHealth>> {
        None
    }

    /// Leaves the group and resolves once this member is gone: the commits made so far stored, the group left —
    /// until the drop deadline at most (see [`Transport::set_drop_deadline`]), waited for off the async threads.
    /// Dropping a subscription starts the same without waiting for it (an async runtime's thread must not block):
    /// a consumer that stops closes its subscription, so that its last commits are stored when it has stopped. The
    /// default drops it (a member that stores its commits at once).
    fn close(self: Box<Self>) -> BoxFuture<'static, ()> {
        drop(self);
        Box::pin(std::future::ready(()))
    }
}

/// A candidacy for leadership of a group, given up when dropped.
pub trait Leadership: Send + Sync {
    /// Whether this candidate is the leader now.
    fn is_leader(&self) -> bool;
}
