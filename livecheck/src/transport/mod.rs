//! Where LiveCheck's streams live: a small set of traits and the backends that implement them.
//!
//! The model is Kafka's, so every backend fits it: a *stream* has partitions; a message is published with a key
//! (the test id) and lands in the partition its key hashes to, so the pending-tests and bus streams are
//! co-partitioned; consumers in a *group* share the partitions and *commit* the offset up to which they have
//! processed, after processing; a restarted consumer continues from its group's committed offsets.

mod memory;
mod partitioner;
#[cfg(feature = "sqlite")]
mod sqlite;
mod url;

use std::{future::Future, pin::Pin, sync::Arc};

pub use memory::MemoryTransport;
pub use partitioner::partition_for_key;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteTransport;
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

/// A message received from a subscription, with its position.
#[derive(Clone, Debug)]
pub struct Received {
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

/// A log of streams that several producers and consumer groups share.
pub trait Transport: Send + Sync + 'static {
    /// Creates `stream` with `partitions` partitions if it does not exist; an existing stream is left as it is.
    fn create_stream<'a>(&'a self, stream: &'a str, partitions: u32) -> BoxFuture<'a, Result<()>>;

    /// Publishes `message` and resolves once the log has stored it.
    fn publish<'a>(&'a self, stream: &'a str, message: Message) -> BoxFuture<'a, Result<Delivery>>;

    /// Joins consumer group `group` on `stream`. Partitions are shared among the group's members; each member
    /// starts a partition at the group's committed offset.
    fn subscribe<'a>(&'a self, stream: &'a str, group: &'a str) -> BoxFuture<'a, Result<Box<dyn Subscription>>>;

    /// The next offset of each partition of `stream` (what a consumer has read everything before); creates the
    /// stream if needed.
    fn end_offsets<'a>(&'a self, stream: &'a str) -> BoxFuture<'a, Result<Vec<u64>>>;

    /// Enters the election for leader of `group`: exactly one live candidate per group is leader at a time.
    fn elect_leader<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<Box<dyn Leadership>>>;
}

/// One member's view of a stream in a consumer group.
pub trait Subscription: Send {
    /// The next message from the partitions assigned to this member.
    ///
    /// Cancellation safe: if the future is dropped before it resolves, no message is lost.
    fn recv(&mut self) -> BoxFuture<'_, Result<Received>>;

    /// The next message if one is ready now, without waiting. The default says none is.
    fn try_recv(&mut self) -> Result<Option<Received>> {
        Ok(None)
    }

    /// Records that every message of `partition` below `next_offset` has been processed.
    fn commit(&mut self, partition: u32, next_offset: u64) -> Result<()>;
}

/// A candidacy for leadership of a group, given up when dropped.
pub trait Leadership: Send + Sync {
    /// Whether this candidate is the leader now.
    fn is_leader(&self) -> bool;
}
