//! Streams in this process's memory: for tests, benchmarks and single-process use.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex, Weak,
    },
};

use tokio::sync::Notify;

use super::{
    check_co_partitioned, owned_partitions, partition_for_key, Assignment, BoxFuture, Committed, Delivery, Event,
    Leadership, Message, Received, Subscription, Transport,
};
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

/// Groups by name and subscribed streams.
type Groups = Mutex<HashMap<(String, Vec<String>), Arc<Group>>>;

/// Committed positions by (group, stream, partition): next offset and metadata.
type Commits = Mutex<HashMap<(String, String, u32), (u64, String)>>;

struct Inner {
    default_partitions: u32,
    retention: AtomicUsize,
    streams: Mutex<HashMap<String, Arc<StreamLog>>>,
    groups: Groups,
    commits: Arc<Commits>,
    elections: Arc<Mutex<HashMap<String, Vec<u64>>>>,
    next_member: AtomicU64,
}

struct StreamLog {
    partitions: Vec<Mutex<PartitionLog>>,
    /// The wake-ups of the subscriptions reading this stream.
    watchers: Watchers,
}

/// Wake-ups of subscriptions; each keeps a permit until its subscription next waits, so none is lost.
#[derive(Default)]
struct Watchers(Mutex<Vec<Weak<Notify>>>);

impl Watchers {
    fn add(&self, wake: &Arc<Notify>) {
        lock(&self.0).push(Arc::downgrade(wake));
    }

    fn wake(&self) {
        lock(&self.0).retain(|w| match w.upgrade() {
            Some(wake) => {
                wake.notify_one();
                true
            }
            None => false,
        });
    }
}

#[derive(Default)]
struct PartitionLog {
    /// Offset of `messages[0]`.
    base: u64,
    messages: VecDeque<Arc<Message>>,
}

struct Group {
    state: Mutex<GroupState>,
    watchers: Watchers,
}

struct GroupState {
    /// Live members, in joining order of their ids.
    members: Vec<u64>,
    /// The member holding each partition.
    owner: Vec<Option<u64>>,
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
        let name: Arc<str> = stream.into();
        let mut all = Vec::new();
        for (p, partition) in log.partitions.iter().enumerate() {
            let partition = lock(partition);
            for (i, message) in partition.messages.iter().enumerate() {
                all.push(Received {
                    stream: name.clone(),
                    partition: p as u32,
                    offset: partition.base + i as u64,
                    message: message.clone(),
                });
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
                    watchers: Watchers::default(),
                })
            })
            .clone()
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
        log.watchers.wake();
        Box::pin(async move { Ok(Delivery { partition, offset }) })
    }

    fn subscribe<'a>(&'a self, streams: &'a [&'a str], group: &'a str) -> BoxFuture<'a, Result<Box<dyn Subscription>>> {
        Box::pin(async move {
            let logs: Vec<(Arc<str>, Arc<StreamLog>)> = streams
                .iter()
                .map(|name| (Arc::<str>::from(*name), self.stream(name, self.inner.default_partitions)))
                .collect();
            let counts: Vec<(&str, u32)> = logs.iter().map(|(n, l)| (&**n, l.partitions.len() as u32)).collect();
            let partitions = check_co_partitioned(&counts)?;
            let key = (group.to_owned(), streams.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
            let group_state = lock(&self.inner.groups)
                .entry(key)
                .or_insert_with(|| {
                    Arc::new(Group {
                        state: Mutex::new(GroupState { members: Vec::new(), owner: vec![None; partitions as usize] }),
                        watchers: Watchers::default(),
                    })
                })
                .clone();
            let member = self.inner.next_member.fetch_add(1, Ordering::Relaxed);
            let wake = Arc::new(Notify::new());
            for (_, log) in &logs {
                log.watchers.add(&wake);
            }
            group_state.watchers.add(&wake);
            lock(&group_state.state).members.push(member);
            group_state.watchers.wake();
            let subscription = MemorySubscription {
                member,
                group_name: group.to_owned(),
                group: group_state,
                commits: self.inner.commits.clone(),
                streams: logs.into_iter().map(|(name, log)| ReadStream { name, log, paused: false }).collect(),
                partitions,
                owned: Vec::new(),
                cursors: HashMap::new(),
                releasing: Vec::new(),
                next: 0,
                wake,
            };
            Ok(Box::new(subscription) as Box<dyn Subscription>)
        })
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

    fn read<'a>(
        &'a self,
        stream: &'a str,
        partition: u32,
        from: u64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Received>>> {
        let log = self.stream(stream, self.inner.default_partitions);
        let name: Arc<str> = stream.into();
        let read = match log.partitions.get(partition as usize) {
            None => Vec::new(),
            Some(part) => {
                let part = lock(part);
                let first = from.max(part.base);
                let skip = (first - part.base) as usize;
                part.messages
                    .iter()
                    .skip(skip)
                    .take(limit)
                    .enumerate()
                    .map(|(i, message)| Received {
                        stream: name.clone(),
                        partition,
                        offset: first + i as u64,
                        message: message.clone(),
                    })
                    .collect()
            }
        };
        Box::pin(async move { Ok(read) })
    }

    fn elect_leader<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<Box<dyn Leadership>>> {
        let candidate = self.inner.next_member.fetch_add(1, Ordering::Relaxed);
        lock(&self.inner.elections).entry(group.to_owned()).or_default().push(candidate);
        let leadership =
            MemoryLeadership { candidate, group: group.to_owned(), elections: self.inner.elections.clone() };
        Box::pin(async move { Ok(Box::new(leadership) as Box<dyn Leadership>) })
    }
}

struct ReadStream {
    name: Arc<str>,
    log: Arc<StreamLog>,
    paused: bool,
}

struct MemorySubscription {
    member: u64,
    group_name: String,
    group: Arc<Group>,
    commits: Arc<Commits>,
    streams: Vec<ReadStream>,
    partitions: u32,
    /// Partitions held, in order.
    owned: Vec<u32>,
    /// Next offset to read by (stream index, partition).
    cursors: HashMap<(usize, u32), u64>,
    /// Partitions revoked by the last event, let go of at the next call.
    releasing: Vec<u32>,
    /// Round-robin position over (stream, partition) pairs.
    next: usize,
    wake: Arc<Notify>,
}

impl MemorySubscription {
    fn poll_event(&mut self) -> Option<Event> {
        if !self.releasing.is_empty() {
            let mut state = lock(&self.group.state);
            for p in self.releasing.drain(..) {
                if state.owner[p as usize] == Some(self.member) {
                    state.owner[p as usize] = None;
                }
            }
            drop(state);
            self.group.watchers.wake();
        }
        if let Some(event) = self.rebalance() {
            return Some(event);
        }
        self.next_message().map(Event::Message)
    }

    /// Gives up the partitions another member should have, or takes the free ones this member should have.
    fn rebalance(&mut self) -> Option<Event> {
        let mut state = lock(&self.group.state);
        let index = state.members.iter().position(|m| *m == self.member)?;
        let desired = owned_partitions(self.partitions, state.members.len(), index);
        let revoked: Vec<u32> = self.owned.iter().copied().filter(|p| !desired.contains(p)).collect();
        if !revoked.is_empty() {
            self.owned.retain(|p| desired.contains(p));
            self.cursors.retain(|(_, p), _| desired.contains(p));
            self.releasing = revoked.clone();
            return Some(Event::Revoked(revoked));
        }
        let taken: Vec<u32> =
            desired.filter(|p| state.owner[*p as usize].is_none() && !self.owned.contains(p)).collect();
        if taken.is_empty() {
            return None;
        }
        let commits = lock(&self.commits);
        let mut assignments = Vec::new();
        for &partition in &taken {
            state.owner[partition as usize] = Some(self.member);
            let mut committed = Vec::new();
            for (i, stream) in self.streams.iter().enumerate() {
                let key = (self.group_name.clone(), stream.name.to_string(), partition);
                let (offset, metadata) = commits.get(&key).cloned().unwrap_or_default();
                self.cursors.insert((i, partition), offset);
                committed.push(Committed { stream: stream.name.clone(), offset, metadata });
            }
            assignments.push(Assignment { partition, committed });
        }
        self.owned.extend(taken);
        self.owned.sort_unstable();
        Some(Event::Assigned(assignments))
    }

    fn next_message(&mut self) -> Option<Received> {
        let pairs = self.streams.len() * self.owned.len();
        for _ in 0..pairs {
            let i = self.next % pairs;
            self.next = self.next.wrapping_add(1);
            let (s, partition) = (i % self.streams.len(), self.owned[i / self.streams.len()]);
            let stream = &self.streams[s];
            if stream.paused {
                continue;
            }
            let cursor = self.cursors.entry((s, partition)).or_default();
            let log = lock(&stream.log.partitions[partition as usize]);
            if *cursor < log.base {
                tracing::warn!(skipped = log.base - *cursor, "consumer fell behind the retention of the memory log");
                *cursor = log.base;
            }
            if let Some(message) = log.messages.get((*cursor - log.base) as usize) {
                let received =
                    Received { stream: stream.name.clone(), partition, offset: *cursor, message: message.clone() };
                *cursor += 1;
                return Some(received);
            }
        }
        None
    }

    fn set_paused(&mut self, stream: &str, paused: bool) {
        for s in self.streams.iter_mut().filter(|s| &*s.name == stream) {
            s.paused = paused;
        }
        if !paused {
            self.wake.notify_one();
        }
    }
}

impl Subscription for MemorySubscription {
    fn recv(&mut self) -> BoxFuture<'_, Result<Event>> {
        Box::pin(async move {
            loop {
                if let Some(event) = self.poll_event() {
                    return Ok(event);
                }
                // A wake-up that came since the poll is kept as a permit: none is lost.
                self.wake.notified().await;
            }
        })
    }

    fn try_recv(&mut self) -> Result<Option<Event>> {
        Ok(self.poll_event())
    }

    fn commit(&mut self, stream: &str, partition: u32, next_offset: u64, metadata: &str) -> Result<()> {
        // The owner check and the write under the group's lock: a member that lost the partition cannot commit.
        let state = lock(&self.group.state);
        if state.owner.get(partition as usize) != Some(&Some(self.member)) {
            tracing::debug!(stream, partition, "ignoring a commit for a partition this member does not hold");
            return Ok(());
        }
        let key = (self.group_name.clone(), stream.to_owned(), partition);
        lock(&self.commits).insert(key, (next_offset, metadata.to_owned()));
        Ok(())
    }

    fn pause(&mut self, stream: &str) {
        self.set_paused(stream, true);
    }

    fn resume(&mut self, stream: &str) {
        self.set_paused(stream, false);
    }
}

impl Drop for MemorySubscription {
    fn drop(&mut self) {
        let mut state = lock(&self.group.state);
        state.members.retain(|m| *m != self.member);
        for owner in state.owner.iter_mut().filter(|o| **o == Some(self.member)) {
            *owner = None;
        }
        drop(state);
        self.group.watchers.wake();
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

    async fn next_event(sub: &mut Box<dyn Subscription>) -> Event {
        tokio::time::timeout(Duration::from_secs(5), sub.recv()).await.expect("an event").unwrap()
    }

    /// The next message, passing over assignment events.
    async fn recv(sub: &mut Box<dyn Subscription>) -> Received {
        loop {
            if let Event::Message(received) = next_event(sub).await {
                return received;
            }
        }
    }

    #[tokio::test]
    async fn same_key_same_partition_in_order() {
        let t = MemoryTransport::new();
        let a = t.publish("s", msg("k", "1")).await.unwrap();
        let b = t.publish("s", msg("k", "2")).await.unwrap();
        assert_eq!(a.partition, b.partition);
        assert_eq!(b.offset, a.offset + 1);
        let mut sub = t.subscribe(&["s"], "g").await.unwrap();
        assert_eq!(recv(&mut sub).await.message.value, b"1");
        assert_eq!(recv(&mut sub).await.message.value, b"2");
    }

    #[tokio::test]
    async fn a_new_member_of_the_group_continues_from_committed_offsets_with_their_metadata() {
        let t = MemoryTransport::with_partitions(1);
        for i in 0..3 {
            t.publish("s", msg("k", &i.to_string())).await.unwrap();
        }
        let mut sub = t.subscribe(&["s"], "g").await.unwrap();
        let first = recv(&mut sub).await;
        sub.commit("s", first.partition, first.offset + 1, "mark=7").unwrap();
        let _uncommitted = recv(&mut sub).await;
        drop(sub);
        let mut again = t.subscribe(&["s"], "g").await.unwrap();
        let Event::Assigned(assigned) = next_event(&mut again).await else { panic!("assigned first") };
        assert_eq!(assigned[0].committed("s").unwrap().metadata, "mark=7");
        assert_eq!(recv(&mut again).await.message.value, b"1", "the uncommitted message is delivered again");
        let mut other_group = t.subscribe(&["s"], "other").await.unwrap();
        assert_eq!(recv(&mut other_group).await.message.value, b"0");
    }

    #[tokio::test]
    async fn co_partitioned_streams_go_to_one_member_and_must_agree_on_partitions() {
        let t = MemoryTransport::with_partitions(4);
        let mut a = t.subscribe(&["tests", "signals"], "g").await.unwrap();
        let mut b = t.subscribe(&["tests", "signals"], "g").await.unwrap();
        for i in 0..40 {
            t.publish("tests", msg(&format!("key-{i}"), "t")).await.unwrap();
            t.publish("signals", msg(&format!("key-{i}"), "s")).await.unwrap();
        }
        let mut seen: HashMap<String, Vec<(usize, String)>> = HashMap::new();
        for _ in 0..80 {
            let (who, received) = tokio::select! {
                r = recv(&mut a) => (0, r),
                r = recv(&mut b) => (1, r),
            };
            seen.entry(received.message.key.clone().unwrap()).or_default().push((who, received.stream.to_string()));
        }
        for (key, by) in &seen {
            assert_eq!(by.len(), 2, "{key}: {by:?}");
            assert_eq!(by[0].0, by[1].0, "{key}: both streams of a key go to one member: {by:?}");
        }
        let owners: std::collections::HashSet<usize> = seen.values().map(|by| by[0].0).collect();
        assert_eq!(owners.len(), 2, "both members got partitions");

        t.create_stream("other", 2).await.unwrap();
        let error = t.subscribe(&["tests", "other"], "g").await.err().unwrap();
        assert!(error.to_string().contains("`other` (2 partitions)"), "{error}");
    }

    #[tokio::test]
    async fn a_partition_moves_only_after_its_owner_let_go() {
        let t = MemoryTransport::with_partitions(2);
        let mut a = t.subscribe(&["s"], "g").await.unwrap();
        let Event::Assigned(all) = next_event(&mut a).await else { panic!() };
        assert_eq!(all.iter().map(|a| a.partition).collect::<Vec<_>>(), vec![0, 1]);
        let mut b = t.subscribe(&["s"], "g").await.unwrap();
        assert!(b.try_recv().unwrap().is_none(), "partition 1 is still a's");
        let Event::Revoked(revoked) = next_event(&mut a).await else { panic!("a gives up a partition") };
        assert_eq!(revoked, vec![1]);
        assert!(b.try_recv().unwrap().is_none(), "a still holds it until its next call");
        assert!(a.try_recv().unwrap().is_none());
        let Event::Assigned(taken) = next_event(&mut b).await else { panic!("b takes it") };
        assert_eq!(taken[0].partition, 1);
        // A commit by a member for a partition it gave up is ignored.
        a.commit("s", 1, 99, "").unwrap();
        drop(b);
        let Event::Assigned(back) = next_event(&mut a).await else { panic!("a takes it back") };
        assert_eq!(back[0].committed("s").unwrap().offset, 0);
    }

    #[tokio::test]
    async fn a_paused_stream_waits_while_the_others_flow() {
        let t = MemoryTransport::with_partitions(1);
        let mut sub = t.subscribe(&["tests", "signals"], "g").await.unwrap();
        sub.pause("tests");
        t.publish("tests", msg("k", "t")).await.unwrap();
        t.publish("signals", msg("k", "s")).await.unwrap();
        assert_eq!(&*recv(&mut sub).await.stream, "signals");
        assert!(sub.try_recv().unwrap().is_none());
        sub.resume("tests");
        assert_eq!(&*recv(&mut sub).await.stream, "tests");
    }

    #[tokio::test]
    async fn recv_wakes_on_publish() {
        let t = MemoryTransport::new();
        let mut sub = t.subscribe(&["s"], "g").await.unwrap();
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
        let mut sub = t.subscribe(&["s"], "g").await.unwrap();
        assert_eq!(recv(&mut sub).await.offset, 3);
        let read = t.read("s", 0, 0, 10).await.unwrap();
        assert_eq!(read.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![3, 4]);
        assert!(t.read("s", 0, 5, 10).await.unwrap().is_empty());
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
