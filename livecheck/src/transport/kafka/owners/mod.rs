//! A group that stops consuming, noticed and healed.
//!
//! Kafka's coordinator gives every partition of a stable group to one of its members. tansu 0.6's does not always:
//! when the group leader dies while the group forms, it takes a follower's (empty) assignment as the group's and
//! every member holds nothing; and a member evicted while the group is stable is not replaced (the survivors
//! rejoin and get their old shares back), so its partitions stay with a member that is gone. Either way nothing
//! makes the group rebalance again, and the messages of those partitions are never processed.
//!
//! Nothing the broker answers tells who holds a partition (tansu's DescribeGroups returns no assignments; it keeps
//! no commit metadata; and an owner busy with a long test commits nothing for a while), so the members say it
//! themselves, and each watches what the others say:
//!
//! - every quarter of the session timeout, a member stamps each partition it holds: it commits the time, as an
//!   offset, for that partition of its first stream in a side group `{group}.owners` that no one joins;
//! - every half session timeout, it reads the stamps and the group's committed offsets. A partition it does not
//!   hold whose stamp and commits have not changed for two session timeouts, and that has messages after the
//!   group's committed offset in one of its streams, has no owner: an ERROR is logged, [`GroupHealth`] lists it,
//!   and the member leaves its group and joins again as a new member — which makes the coordinator form the group
//!   anew and assign every partition. After a rejoin it waits another two session timeouts before it judges again.
//!
//! Only stamps and commits that change count, never their values: clocks of different hosts need not agree. A
//! member that does not stamp (another client, an older LiveCheck) counts as an owner while it commits.
//!
//! Here: the watch's thread, which stamps and reads; the judgment of what it read, with the time passed in, is in
//! `ledger`.

mod ledger;

use std::{
    collections::HashSet,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use rdkafka::{
    consumer::{BaseConsumer, CommitMode, Consumer},
    ClientConfig, Offset, TopicPartitionList,
};
use tokio::sync::watch;

use super::{kafka, REQUEST_TIMEOUT};
use crate::{sync::lock, transport::GroupHealth, Error, Result};
use ledger::{Marks, StampLedger};

/// What a member holds, shared by the member's thread and its watch.
#[derive(Debug, Default)]
pub(super) struct Holdings {
    partitions: Mutex<HashSet<u32>>,
    /// The watch asks the member to leave its group and join again.
    rejoin: AtomicBool,
    /// The member is gone: so is its watch.
    ended: AtomicBool,
}

impl Holdings {
    /// The member holds `partitions` now.
    pub(super) fn set(&self, partitions: &HashSet<u32>) {
        lock(&self.partitions).clone_from(partitions);
    }

    /// Whether the watch asked for a rejoin since the last call.
    pub(super) fn take_rejoin(&self) -> bool {
        self.rejoin.swap(false, Ordering::SeqCst)
    }

    /// The member ended.
    pub(super) fn end(&self) {
        self.ended.store(true, Ordering::SeqCst);
    }

    fn held(&self) -> HashSet<u32> {
        lock(&self.partitions).clone()
    }
}

/// How often a member stamps, checks, and how long a stamp may stay unchanged, from the session timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Periods {
    stamp_every: Duration,
    check_every: Duration,
    stale_after: Duration,
}

impl Periods {
    fn of(session_timeout: Duration) -> Self {
        Periods { stamp_every: session_timeout / 4, check_every: session_timeout / 2, stale_after: session_timeout * 2 }
    }
}

/// The group's session timeout, as the member's settings have it.
fn session_timeout(config: &ClientConfig) -> Duration {
    let ms = config.get("session.timeout.ms").and_then(|ms| ms.parse::<u64>().ok()).unwrap_or(10_000);
    Duration::from_millis(ms.max(1_000))
}

/// Starts the watch of the member of `group` that holds `holdings`, for its co-partitioned `streams` of
/// `partitions` partitions each; it ends with the member ([`Holdings::end`]).
pub(super) fn watch(
    config: &ClientConfig,
    group: &str,
    streams: Vec<Arc<str>>,
    partitions: u32,
    holdings: Arc<Holdings>,
) -> Result<watch::Receiver<GroupHealth>> {
    let helper = |group_id: String| -> Result<BaseConsumer> {
        config
            .clone()
            .set("group.id", group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .create()
            .map_err(|e| kafka("creating the group's owners watch", e))
    };
    let (health, receiver) = watch::channel(GroupHealth::default());
    if streams.is_empty() || partitions == 0 {
        return Ok(receiver);
    }
    let periods = Periods::of(session_timeout(config));
    let watch = OwnersWatch {
        group: group.to_owned(),
        // Reads the group's committed offsets; never joins the group.
        group_reader: helper(group.to_owned())?,
        // Writes and reads the stamps.
        stamps: helper(owners_group(group))?,
        streams,
        partitions,
        periods,
        holdings,
        ledger: StampLedger::new(periods.stale_after, Instant::now()),
        health: GroupHealth::default(),
    };
    std::thread::Builder::new()
        .name("livecheck-kafka-owners".into())
        .spawn(move || watch.run(&health))
        .map_err(|e| Error::transport("starting the group's owners watch", false, e))?;
    Ok(receiver)
}

/// The side group the members' stamps are committed in.
fn owners_group(group: &str) -> String {
    format!("{group}.owners")
}

struct OwnersWatch {
    group: String,
    group_reader: BaseConsumer,
    stamps: BaseConsumer,
    streams: Vec<Arc<str>>,
    partitions: u32,
    periods: Periods,
    holdings: Arc<Holdings>,
    ledger: StampLedger,
    health: GroupHealth,
}

impl OwnersWatch {
    fn run(mut self, health: &watch::Sender<GroupHealth>) {
        let (mut stamped, mut checked) = (None::<Instant>, Instant::now());
        while !self.holdings.ended.load(Ordering::SeqCst) {
            if stamped.is_none_or(|at| at.elapsed() >= self.periods.stamp_every) {
                self.stamp();
                stamped = Some(Instant::now());
            }
            if checked.elapsed() >= self.periods.check_every {
                self.check();
                checked = Instant::now();
                health.send_if_modified(|shown| {
                    let changed = *shown != self.health;
                    shown.clone_from(&self.health);
                    changed
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Commits the time now as the stamp of each partition the member holds.
    fn stamp(&self) {
        let held = self.holdings.held();
        if held.is_empty() {
            return;
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64;
        let mut list = TopicPartitionList::new();
        for partition in held {
            let _ = list.add_partition_offset(&self.streams[0], partition as i32, Offset::Offset(now));
        }
        if let Err(error) = self.stamps.commit(&list, CommitMode::Sync) {
            tracing::debug!(%error, group = %self.group, "stamping the partitions held failed; the next stamp retries");
        }
    }

    /// Reads the stamps; flags the partitions without an owner and asks the member to rejoin when there are.
    fn check(&mut self) {
        let held = self.holdings.held();
        if held.len() as u32 >= self.partitions {
            // Everything is ours: nothing to judge.
            self.ledger.forget();
            self.health.unowned_partitions.clear();
            return;
        }
        let now = Instant::now();
        let committed = match self.read_marks() {
            Ok((marks, committed)) => {
                self.ledger.read(&marks, now);
                committed
            }
            Err(error) => {
                tracing::debug!(%error, group = %self.group, "reading the owners' stamps or the group's commits failed");
                self.ledger.silence();
                return;
            }
        };
        self.ledger.still_unowned(&mut self.health.unowned_partitions, &held);
        let stale = self.ledger.stale(self.partitions, &held, now);
        if stale.is_empty() {
            return;
        }
        let unowned = match self.lagging(&stale, &committed) {
            Ok(lagging) => lagging,
            Err(error) => {
                tracing::debug!(%error, group = %self.group, "reading the group's offsets failed");
                return;
            }
        };
        if unowned.is_empty() {
            return;
        }
        self.health.rejoins += 1;
        tracing::error!(
            group = %self.group,
            partitions = ?unowned,
            held = ?sorted(&held),
            no_owner_for = ?self.periods.stale_after,
            rejoins = self.health.rejoins,
            "partitions with messages waiting have had no consumer in the group (a group coordinator fault); \
             rejoining the group to have them assigned"
        );
        self.health.unowned_partitions = unowned;
        self.ledger.flagged(now);
        self.holdings.rejoin.store(true, Ordering::SeqCst);
    }

    /// Every partition's marks — its stamp, then the group's committed offset in each stream — and the group's
    /// committed offsets as read.
    fn read_marks(&self) -> Result<(Vec<(u32, Marks)>, TopicPartitionList)> {
        let mut stamps = TopicPartitionList::new();
        let mut commits = TopicPartitionList::new();
        for partition in 0..self.partitions as i32 {
            stamps.add_partition(&self.streams[0], partition);
            for stream in &self.streams {
                commits.add_partition(stream, partition);
            }
        }
        let stamps =
            self.stamps.committed_offsets(stamps, REQUEST_TIMEOUT).map_err(|e| kafka("reading the stamps", e))?;
        let committed =
            self.group_reader.committed_offsets(commits, REQUEST_TIMEOUT).map_err(|e| kafka("reading commits", e))?;
        let offset = |list: &TopicPartitionList, stream: &str, partition: i32| {
            let element = list.find_partition(stream, partition);
            if let Some(Offset::Offset(offset)) = element.map(|e| e.offset()) {
                Some(offset)
            } else {
                None
            }
        };
        let marks = (0..self.partitions as i32)
            .map(|p| {
                let mut marks = vec![offset(&stamps, &self.streams[0], p)];
                marks.extend(self.streams.iter().map(|stream| offset(&committed, stream, p)));
                (p as u32, marks)
            })
            .collect();
        Ok((marks, committed))
    }

    /// Those of `partitions` with messages after the group's `committed` offset in one of the streams.
    fn lagging(&self, partitions: &[u32], committed: &TopicPartitionList) -> Result<Vec<u32>> {
        let mut lagging = Vec::new();
        for &partition in partitions {
            for stream in &self.streams {
                let (low, high) = self
                    .group_reader
                    .fetch_watermarks(stream, partition as i32, REQUEST_TIMEOUT)
                    .map_err(|e| kafka("reading the end of a partition", e))?;
                let next = match committed.find_partition(stream, partition as i32).map(|e| e.offset()) {
                    Some(Offset::Offset(offset)) => offset.max(low),
                    _ => low,
                };
                if high > next {
                    lagging.push(partition);
                    break;
                }
            }
        }
        Ok(lagging)
    }
}

fn sorted(partitions: &HashSet<u32>) -> Vec<u32> {
    let mut sorted: Vec<u32> = partitions.iter().copied().collect();
    sorted.sort_unstable();
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_follow_the_session_timeout() {
        let periods = Periods::of(Duration::from_secs(10));
        assert_eq!(periods.stamp_every, Duration::from_millis(2500));
        assert_eq!(periods.check_every, Duration::from_secs(5));
        assert_eq!(periods.stale_after, Duration::from_secs(20));
        let mut config = ClientConfig::new();
        assert_eq!(session_timeout(&config), Duration::from_secs(10));
        config.set("session.timeout.ms", "6000");
        assert_eq!(session_timeout(&config), Duration::from_secs(6));
    }
}
