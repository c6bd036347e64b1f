//! Streams in this process's memory: for tests, benchmarks and single-process use.
//!
//! Laid out as the other backends are: the streams' partitions in `log`, a consumer group's member in `member`,
//! leader election in `leader`; the transport itself, which creates streams on first use and hands out members and
//! candidacies, here.

mod leader;
mod log;
mod member;

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex,
    },
};

use log::StreamLog;

use super::{check_co_partitioned, BoxFuture, Delivery, Leadership, Message, Received, Subscription, Transport};
use crate::{sync::lock, Result};

/// Streams kept in memory, shared by every clone (so several LiveCheck apps in one process can use one log).
///
/// Streams are created on first use with the default number of partitions (8). By default every message is kept;
/// [`MemoryTransport::with_retention`] keeps only the newest messages of each partition. Group members hand
/// partitions over as Kafka's do: the old owner lets go (at its next `recv`) before the new one gets them.
#[derive(Clone)]
pub struct MemoryTransport {
    inner: Arc<Inner>,
}

struct Inner {
    default_partitions: u32,
    retention: AtomicUsize,
    streams: Mutex<HashMap<String, Arc<StreamLog>>>,
    groups: member::Groups,
    commits: Arc<member::Commits>,
    elections: leader::Elections,
    next_member: AtomicU64,
}

impl Default for MemoryTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryTransport {
    /// An empty log; streams get 8 partitions.
    pub fn new() -> Self {
        Self::with_partitions(8)
    }

    /// An empty log whose streams get `partitions` partitions when created on first use.
    pub fn with_partitions(partitions: u32) -> Self {
        MemoryTransport {
            inner: Arc::new(Inner {
                default_partitions: partitions.max(1),
                retention: AtomicUsize::new(usize::MAX),
                streams: Mutex::default(),
                groups: Mutex::default(),
                commits: Arc::default(),
                elections: Arc::default(),
                next_member: AtomicU64::new(1),
            }),
        }
    }

    /// Keeps only the newest `messages` of each partition; a consumer that falls further behind skips ahead.
    #[must_use]
    pub fn with_retention(self, messages: usize) -> Self {
        self.inner.retention.store(messages.max(1), Ordering::Relaxed);
        self
    }

    /// Every message of `stream` still retained, in partition then offset order (for tests and tools).
    pub fn messages(&self, stream: &str) -> Vec<Received> {
        let Some(log) = lock(&self.inner.streams).get(stream).cloned() else {
            return Vec::new();
        };
        log.retained(&stream.into())
    }

    fn stream(&self, name: &str, partitions: u32) -> Arc<StreamLog> {
        let mut streams = lock(&self.inner.streams);
        if let Some(log) = streams.get(name) {
            return log.clone();
        }
        streams.entry(name.to_owned()).or_insert_with(|| Arc::new(StreamLog::new(partitions))).clone()
    }
}

impl Transport for MemoryTransport {
    fn describe(&self) -> String {
        "memory://".to_owned()
    }

    fn create_stream<'a>(&'a self, stream: &'a str, partitions: u32) -> BoxFuture<'a, Result<()>> {
        self.stream(stream, partitions);
        Box::pin(async { Ok(()) })
    }

    fn publish<'a>(&'a self, stream: &'a str, message: Message) -> BoxFuture<'a, Result<Delivery>> {
        let log = self.stream(stream, self.inner.default_partitions);
        let delivery = log.append(message, self.inner.retention.load(Ordering::Relaxed));
        Box::pin(async move { Ok(delivery) })
    }

    fn subscribe<'a>(&'a self, streams: &'a [&'a str], group: &'a str) -> BoxFuture<'a, Result<Box<dyn Subscription>>> {
        Box::pin(async move {
            let logs: Vec<(Arc<str>, Arc<StreamLog>)> = streams
                .iter()
                .map(|name| (Arc::<str>::from(*name), self.stream(name, self.inner.default_partitions)))
                .collect();
            let counts: Vec<(&str, u32)> = logs.iter().map(|(n, l)| (&**n, l.partition_count())).collect();
            let partitions = check_co_partitioned(&counts)?;
            let member = self.inner.next_member.fetch_add(1, Ordering::Relaxed);
            let subscription = member::join(&self.inner.groups, &self.inner.commits, group, logs, partitions, member);
            Ok(Box::new(subscription) as Box<dyn Subscription>)
        })
    }

    fn end_offsets<'a>(&'a self, stream: &'a str) -> BoxFuture<'a, Result<Vec<u64>>> {
        let ends = self.stream(stream, self.inner.default_partitions).end_offsets();
        Box::pin(async move { Ok(ends) })
    }

    fn read<'a>(
        &'a self,
        stream: &'a str,
        partition: u32,
        from: u64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Received>>> {
        let read = self.stream(stream, self.inner.default_partitions).read(&stream.into(), partition, from, limit);
        Box::pin(async move { Ok(read) })
    }

    fn elect_leader<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<Box<dyn Leadership>>> {
        let candidate = self.inner.next_member.fetch_add(1, Ordering::Relaxed);
        let leadership = leader::candidacy(&self.inner.elections, group, candidate);
        Box::pin(async move { Ok(Box::new(leadership) as Box<dyn Leadership>) })
    }
}

/// What the tests of the memory log share.
#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::transport::{Event, Message, Received, Subscription};

    pub(super) fn msg(key: &str, value: &str) -> Message {
        Message { key: Some(key.into()), value: value.as_bytes().to_vec(), headers: Default::default() }
    }

    pub(super) async fn next_event(sub: &mut Box<dyn Subscription>) -> Event {
        tokio::time::timeout(Duration::from_secs(5), sub.recv()).await.expect("an event").unwrap()
    }

    /// The next message, passing over assignment events.
    pub(super) async fn recv(sub: &mut Box<dyn Subscription>) -> Received {
        loop {
            if let Event::Message(received) = next_event(sub).await {
                return received;
            }
        }
    }
}
