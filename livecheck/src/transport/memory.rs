//! Streams in this process's memory: for tests, benchmarks and single-process use.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex,
    },
};

use tokio::sync::Notify;

use super::{partition_for_key, BoxFuture, Delivery, Leadership, Message, Received, Subscription, Transport};
use crate::{sync::lock, Result};

/// Streams kept in memory, shared by every clone (so several LiveCheck apps in one process can use one log).
///
/// Streams are created on first use with the default number of partitions (8). By default every message is kept;
/// [`MemoryTransport::with_retention`] keeps only the newest messages of each partition.
#[derive(Clone)]
pub struct MemoryTransport {
    inner: Arc<Inner>,
}

struct Inner {
    default_partitions: u32,
    retention: AtomicUsize,
    streams: Mutex<HashMap<String, Arc<StreamLog>>>,
    groups: Mutex<HashMap<(String, String), Arc<Group>>>,
    elections: Arc<Mutex<HashMap<String, Vec<u64>>>>,
    next_member: AtomicU64,
}

struct StreamLog {
    partitions: Vec<Mutex<PartitionLog>>,
    /// Woken when a message is appended or the group membership changes.
    changed: Notify,
}

#[derive(Default)]
struct PartitionLog {
    /// Offset of `messages[0]`.
    base: u64,
    messages: VecDeque<Arc<Message>>,
}

struct Group {
    state: Mutex<GroupState>,
}

struct GroupState {
    members: Vec<u64>,
    committed: Vec<u64>,
    generation: u64,
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
        let mut all = Vec::new();
        for (p, partition) in log.partitions.iter().enumerate() {
            let partition = lock(partition);
            for (i, message) in partition.messages.iter().enumerate() {
                all.push(Received { partition: p as u32, offset: partition.base + i as u64, message: message.clone() });
            }
        }
        all
    }

    fn stream(&self, name: &str, partitions: u32) -> Arc<StreamLog> {
        let mut streams = lock(&self.inner.streams);
        if let Some(log) = streams.get(name) {
            return log.clone();
        }
        streams
            .entry(name.to_owned())
            .or_insert_with(|| {
                Arc::new(StreamLog {
                    partitions: (0..partitions.max(1)).map(|_| Mutex::default()).collect(),
                    changed: Notify::new(),
                })
            })
            .clone()
    }
}

impl Transport for MemoryTransport {
    fn create_stream<'a>(&'a self, stream: &'a str, partitions: u32) -> BoxFuture<'a, Result<()>> {
        self.stream(stream, partitions);
        Box::pin(async { Ok(()) })
    }

    fn publish<'a>(&'a self, stream: &'a str, message: Message) -> BoxFuture<'a, Result<Delivery>> {
        let log = self.stream(stream, self.inner.default_partitions);
        let partition = match &message.key {
            Some(key) => partition_for_key(key.as_bytes(), log.partitions.len() as u32),
            None => fastrand::u32(..log.partitions.len() as u32),
        };
        let mut evicted = Vec::new();
        let offset = {
            let mut part = lock(&log.partitions[partition as usize]);
            part.messages.push_back(Arc::new(message));
            let retention = self.inner.retention.load(Ordering::Relaxed);
            while part.messages.len() > retention {
                evicted.extend(part.messages.pop_front());
                part.base += 1;
            }
            part.base + part.messages.len() as u64 - 1
        };
        // Freed after the lock is released: consumers of the partition need not wait for it.
        drop(evicted);
        log.changed.notify_waiters();
        Box::pin(async move { Ok(Delivery { partition, offset }) })
    }

    fn subscribe<'a>(&'a self, stream: &'a str, group: &'a str) -> BoxFuture<'a, Result<Box<dyn Subscription>>> {
        let log = self.stream(stream, self.inner.default_partitions);
        let group = lock(&self.inner.groups)
            .entry((stream.to_owned(), group.to_owned()))
            .or_insert_with(|| {
                Arc::new(Group {
                    state: Mutex::new(GroupState {
                        members: Vec::new(),
                        committed: vec![0; log.partitions.len()],
                        generation: 0,
                    }),
                })
            })
            .clone();
        let member = self.inner.next_member.fetch_add(1, Ordering::Relaxed);
        {
            let mut state = lock(&group.state);
            state.members.push(member);
            state.generation += 1;
        }
        log.changed.notify_waiters();
        let subscription =
            MemorySubscription { member, group, log, generation: u64::MAX, assigned: Vec::new(), next: 0 };
        Box::pin(async move { Ok(Box::new(subscription) as Box<dyn Subscription>) })
    }

    fn end_offsets<'a>(&'a self, stream: &'a str) -> BoxFuture<'a, Result<Vec<u64>>> {
        let log = self.stream(stream, self.inner.default_partitions);
        let ends = log.partitions.iter().map(|p| {
            let p = lock(p);
            p.base + p.messages.len() as u64
        });
        let ends: Vec<u64> = ends.collect();
        Box::pin(async move { Ok(ends) })
    }

    fn elect_leader<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<Box<dyn Leadership>>> {
        let candidate = self.inner.next_member.fetch_add(1, Ordering::Relaxed);
        lock(&self.inner.elections).entry(group.to_owned()).or_default().push(candidate);
        let leadership =
            MemoryLeadership { candidate, group: group.to_owned(), elections: self.inner.elections.clone() };
        Box::pin(async move { Ok(Box::new(leadership) as Box<dyn Leadership>) })
    }
}

struct MemorySubscription {
    member: u64,
    group: Arc<Group>,
    log: Arc<StreamLog>,
    generation: u64,
    /// (partition, next offset to read)
    assigned: Vec<(u32, u64)>,
    /// Round-robin position in `assigned`.
    next: usize,
}

impl MemorySubscription {
    /// Re-reads the assignment after the group changed: partition `p` belongs to member `p % members`.
    fn refresh_assignment(&mut self) {
        let state = lock(&self.group.state);
        if state.generation == self.generation {
            return;
        }
        self.generation = state.generation;
        let n = state.members.len();
        let me = state.members.iter().position(|m| *m == self.member).unwrap_or(usize::MAX);
        self.assigned =
            (0..self.log.partitions.len()).filter(|p| p % n == me).map(|p| (p as u32, state.committed[p])).collect();
        self.next = 0;
    }

    fn try_next(&mut self) -> Option<Received> {
        self.refresh_assignment();
        for _ in 0..self.assigned.len() {
            let i = self.next % self.assigned.len();
            self.next = self.next.wrapping_add(1);
            let (partition, cursor) = &mut self.assigned[i];
            let log = lock(&self.log.partitions[*partition as usize]);
            if *cursor < log.base {
                tracing::warn!(skipped = log.base - *cursor, "consumer fell behind the retention of the memory log");
                *cursor = log.base;
            }
            if let Some(message) = log.messages.get((*cursor - log.base) as usize) {
                let received = Received { partition: *partition, offset: *cursor, message: message.clone() };
                *cursor += 1;
                return Some(received);
            }
        }
        None
    }
}

impl Subscription for MemorySubscription {
    fn recv(&mut self) -> BoxFuture<'_, Result<Received>> {
        Box::pin(async move {
            loop {
                let log = self.log.clone();
                let changed = log.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if let Some(received) = self.try_next() {
                    return Ok(received);
                }
                changed.await;
            }
        })
    }

    fn try_recv(&mut self) -> Result<Option<Received>> {
        Ok(self.try_next())
    }

    fn commit(&mut self, partition: u32, next_offset: u64) -> Result<()> {
        let mut state = lock(&self.group.state);
        if let Some(committed) = state.committed.get_mut(partition as usize) {
            *committed = (*committed).max(next_offset);
        }
        Ok(())
    }
}

impl Drop for MemorySubscription {
    fn drop(&mut self) {
        let mut state = lock(&self.group.state);
        state.members.retain(|m| *m != self.member);
        state.generation += 1;
        drop(state);
        self.log.changed.notify_waiters();
    }
}

struct MemoryLeadership {
    candidate: u64,
    group: String,
    elections: Arc<Mutex<HashMap<String, Vec<u64>>>>,
}

impl Leadership for MemoryLeadership {
    fn is_leader(&self) -> bool {
        lock(&self.elections).get(&self.group).and_then(|c| c.first()) == Some(&self.candidate)
    }
}

impl Drop for MemoryLeadership {
    fn drop(&mut self) {
        if let Some(candidates) = lock(&self.elections).get_mut(&self.group) {
            candidates.retain(|c| *c != self.candidate);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn msg(key: &str, value: &str) -> Message {
        Message { key: Some(key.into()), value: value.as_bytes().to_vec(), headers: Default::default() }
    }

    async fn recv(sub: &mut Box<dyn Subscription>) -> Received {
        tokio::time::timeout(Duration::from_secs(5), sub.recv()).await.expect("a message").unwrap()
    }

    #[tokio::test]
    async fn same_key_same_partition_in_order() {
        let t = MemoryTransport::new();
        let a = t.publish("s", msg("k", "1")).await.unwrap();
        let b = t.publish("s", msg("k", "2")).await.unwrap();
        assert_eq!(a.partition, b.partition);
        assert_eq!(b.offset, a.offset + 1);
        let mut sub = t.subscribe("s", "g").await.unwrap();
        assert_eq!(recv(&mut sub).await.message.value, b"1");
        assert_eq!(recv(&mut sub).await.message.value, b"2");
    }

    #[tokio::test]
    async fn a_new_member_of_the_group_continues_from_committed_offsets() {
        let t = MemoryTransport::with_partitions(1);
        for i in 0..3 {
            t.publish("s", msg("k", &i.to_string())).await.unwrap();
        }
        let mut sub = t.subscribe("s", "g").await.unwrap();
        let first = recv(&mut sub).await;
        sub.commit(first.partition, first.offset + 1).unwrap();
        let _uncommitted = recv(&mut sub).await;
        drop(sub);
        let mut again = t.subscribe("s", "g").await.unwrap();
        assert_eq!(recv(&mut again).await.message.value, b"1", "the uncommitted message is delivered again");
        let mut other_group = t.subscribe("s", "other").await.unwrap();
        assert_eq!(recv(&mut other_group).await.message.value, b"0");
    }

    #[tokio::test]
    async fn members_of_a_group_share_partitions() {
        let t = MemoryTransport::with_partitions(4);
        let mut a = t.subscribe("s", "g").await.unwrap();
        let mut b = t.subscribe("s", "g").await.unwrap();
        for i in 0..40 {
            t.publish("s", msg(&format!("key-{i}"), "x")).await.unwrap();
        }
        let mut partitions_a = std::collections::HashSet::new();
        let mut partitions_b = std::collections::HashSet::new();
        for _ in 0..20 {
            tokio::select! {
                r = a.recv() => { partitions_a.insert(r.unwrap().partition); }
                r = b.recv() => { partitions_b.insert(r.unwrap().partition); }
            }
        }
        assert!(partitions_a.is_disjoint(&partitions_b));
    }

    #[tokio::test]
    async fn recv_wakes_on_publish() {
        let t = MemoryTransport::new();
        let mut sub = t.subscribe("s", "g").await.unwrap();
        let publisher = t.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            publisher.publish("s", msg("k", "late")).await.unwrap();
        });
        assert_eq!(recv(&mut sub).await.message.value, b"late");
    }

    #[tokio::test]
    async fn retention_drops_the_oldest_messages() {
        let t = MemoryTransport::with_partitions(1).with_retention(2);
        for i in 0..5 {
            t.publish("s", msg("k", &i.to_string())).await.unwrap();
        }
        let kept: Vec<_> = t.messages("s").into_iter().map(|r| (r.offset, r.message.value.clone())).collect();
        assert_eq!(kept, vec![(3, b"3".to_vec()), (4, b"4".to_vec())]);
        let mut sub = t.subscribe("s", "g").await.unwrap();
        assert_eq!(recv(&mut sub).await.offset, 3);
    }

    #[tokio::test]
    async fn one_leader_per_group_and_the_next_takes_over() {
        let t = MemoryTransport::new();
        let a = t.elect_leader("g").await.unwrap();
        let b = t.elect_leader("g").await.unwrap();
        let other = t.elect_leader("h").await.unwrap();
        assert!(a.is_leader());
        assert!(!b.is_leader());
        assert!(other.is_leader());
        drop(a);
        assert!(b.is_leader());
    }
}
