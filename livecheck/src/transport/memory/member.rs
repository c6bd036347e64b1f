//! A member of a consumer group on the memory log. Partitions are handed over as Kafka's are: a member that should
//! give one up is told (`Revoked`) and lets go at its next call, and only then may another member take it,
//! continuing from the group's committed offset. A commit is kept only while the committer holds the partition.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::Notify;

use super::log::{StreamLog, Watchers};
use crate::{
    sync::lock,
    transport::{owned_partitions, Assignment, BoxFuture, Committed, Event, Received, Subscription},
    Result,
};

/// Groups by name and subscribed streams.
pub(super) type Groups = Mutex<HashMap<(String, Vec<String>), Arc<Group>>>;

/// Committed positions by (group, stream, partition): next offset and metadata.
pub(super) type Commits = Mutex<HashMap<(String, String, u32), (u64, String)>>;

/// The members of one group and who holds which partition.
pub(super) struct Group {
    state: Mutex<GroupState>,
    watchers: Watchers,
}

struct GroupState {
    /// Live members, in joining order of their ids.
    members: Vec<u64>,
    /// The member holding each partition.
    owner: Vec<Option<u64>>,
}

/// Joins `group` as member `member`, reading `logs` (co-partitioned, `partitions` each) and committing to
/// `commits`; the group is created in `groups` on first use. Its members are woken: one may have partitions to
/// give up.
pub(super) fn join(
    groups: &Groups,
    commits: &Arc<Commits>,
    group: &str,
    logs: Vec<(Arc<str>, Arc<StreamLog>)>,
    partitions: u32,
    member: u64,
) -> MemorySubscription {
    let key = (group.to_owned(), logs.iter().map(|(name, _)| name.to_string()).collect::<Vec<_>>());
    let group_state = lock(groups)
        .entry(key)
        .or_insert_with(|| {
            Arc::new(Group {
                state: Mutex::new(GroupState { members: Vec::new(), owner: vec![None; partitions as usize] }),
                watchers: Watchers::default(),
            })
        })
        .clone();
    let wake = Arc::new(Notify::new());
    for (_, log) in &logs {
        log.watchers.add(&wake);
    }
    group_state.watchers.add(&wake);
    lock(&group_state.state).members.push(member);
    group_state.watchers.wake();
    MemorySubscription {
        member,
        group_name: group.to_owned(),
        group: group_state,
        commits: commits.clone(),
        streams: logs.into_iter().map(|(name, log)| ReadStream { name, log, paused: false }).collect(),
        partitions,
        owned: Vec::new(),
        cursors: HashMap::new(),
        releasing: Vec::new(),
        next: 0,
        wake,
    }
}

/// A stream a member reads, and whether the app paused it.
struct ReadStream {
    name: Arc<str>,
    log: Arc<StreamLog>,
    paused: bool,
}

/// One member of a group: the partitions it holds and where it is in each.
pub(super) struct MemorySubscription {
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

#[cfg(test)]
mod tests {
    use std::{collections::HashMap, time::Duration};

    use super::super::tests::{msg, next_event, recv};
    use crate::transport::{Event, MemoryTransport, Transport};

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
}
