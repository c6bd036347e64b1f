//! The owners watch's judgment, with the time passed in (no I/O, so it is exact to test): which partitions have had
//! no sign of an owner — a stamp or a commit that changes — for too long.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

/// A partition's signs of an owner: its stamp, then the group's committed offset in each stream (`None`: none).
pub(super) type Marks = Vec<Option<i64>>;

/// What the marks said and when, judged with the time passed in.
#[derive(Debug)]
pub(super) struct StampLedger {
    stale_after: Duration,
    /// Per partition: its marks as last read, and when they last changed (or were first read).
    seen: HashMap<u32, (Marks, Instant)>,
    /// No partition is judged before `stale_after` from this (the watch's start, the last flag).
    judge_from: Instant,
    /// The last read failed: at the next one, every stamp counts as fresh (a silent broker is not a silent owner).
    silent: bool,
    /// When the partitions listed as unowned were flagged.
    flagged_at: Option<Instant>,
}

impl StampLedger {
    pub(super) fn new(stale_after: Duration, now: Instant) -> Self {
        StampLedger { stale_after, seen: HashMap::new(), judge_from: now, silent: false, flagged_at: None }
    }

    /// The marks read at `now`.
    pub(super) fn read(&mut self, marks: &[(u32, Marks)], now: Instant) {
        let fresh = std::mem::replace(&mut self.silent, false);
        for (partition, marks) in marks {
            let seen = self.seen.entry(*partition).or_insert_with(|| (marks.clone(), now));
            if seen.0 != *marks || fresh {
                *seen = (marks.clone(), now);
            }
        }
    }

    /// The stamps could not be read.
    pub(super) fn silence(&mut self) {
        self.silent = true;
    }

    /// Forgets every stamp: the next ones read start fresh.
    pub(super) fn forget(&mut self) {
        self.seen.clear();
    }

    /// The partitions among `0..partitions`, not `held`, whose marks have not changed for longer than
    /// `stale_after` — none before `stale_after` has passed since the start or the last flag.
    pub(super) fn stale(&self, partitions: u32, held: &HashSet<u32>, now: Instant) -> Vec<u32> {
        if now < self.judge_from + self.stale_after {
            return Vec::new();
        }
        (0..partitions)
            .filter(|p| !held.contains(p))
            .filter(|p| self.seen.get(p).is_some_and(|(_, changed)| now - *changed > self.stale_after))
            .collect()
    }

    /// Partitions were flagged at `now`.
    pub(super) fn flagged(&mut self, now: Instant) {
        self.flagged_at = Some(now);
        self.judge_from = now;
    }

    /// Keeps in `listed` the flagged partitions that no one holds yet: not `held`, and no new marks since.
    pub(super) fn still_unowned(&self, listed: &mut Vec<u32>, held: &HashSet<u32>) {
        let Some(flagged_at) = self.flagged_at else {
            listed.clear();
            return;
        };
        listed.retain(|p| !held.contains(p) && self.seen.get(p).is_none_or(|(_, changed)| *changed <= flagged_at));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALE: Duration = Duration::from_secs(20);

    fn secs(start: Instant, s: u64) -> Instant {
        start + Duration::from_secs(s)
    }

    #[test]
    fn a_partition_is_stale_when_its_stamp_stops_changing_and_nobody_here_holds_it() {
        let start = Instant::now();
        let mut ledger = StampLedger::new(STALE, start);
        let held: HashSet<u32> = [0].into();
        // Partition 1 stamped by a live owner; 2 stamped once, then its owner died; 3 never stamped.
        for t in (0..=40).step_by(5) {
            let marks = [(0, one(None)), (1, one(Some(1000 + t as i64))), (2, one(Some(7))), (3, one(None))];
            ledger.read(&marks, secs(start, t));
            let stale = ledger.stale(4, &held, secs(start, t));
            if t <= 20 {
                assert!(stale.is_empty(), "nothing judged within the first {STALE:?}: {stale:?} at {t} s");
            } else {
                assert_eq!(stale, [2, 3], "at {t} s: 0 is held here, 1 keeps being stamped");
            }
        }
    }

    /// Marks of a stamp alone (a group with no commits).
    fn one(stamp: Option<i64>) -> Marks {
        vec![stamp, None]
    }

    #[test]
    fn a_member_that_commits_counts_as_an_owner_even_if_it_does_not_stamp() {
        let start = Instant::now();
        let mut ledger = StampLedger::new(STALE, start);
        for t in (0..=60).step_by(5) {
            ledger.read(&[(0, vec![None, Some(t as i64)])], secs(start, t));
            assert!(ledger.stale(1, &HashSet::new(), secs(start, t)).is_empty(), "at {t} s");
        }
    }

    #[test]
    fn a_broker_that_does_not_answer_is_not_an_owner_that_does_not_stamp() {
        let start = Instant::now();
        let mut ledger = StampLedger::new(STALE, start);
        ledger.read(&[(0, one(Some(1)))], start);
        ledger.silence();
        // The broker was away for 30 s; the owner's stamps did not get through either.
        ledger.read(&[(0, one(Some(1)))], secs(start, 30));
        assert!(ledger.stale(1, &HashSet::new(), secs(start, 30)).is_empty());
        ledger.read(&[(0, one(Some(1)))], secs(start, 51));
        assert_eq!(ledger.stale(1, &HashSet::new(), secs(start, 51)), [0], "silent for 21 s since it answered");
    }

    #[test]
    fn a_flagged_partition_stays_listed_until_someone_holds_it_and_judging_waits_again() {
        let start = Instant::now();
        let mut ledger = StampLedger::new(STALE, start);
        ledger.read(&[(0, one(None)), (1, one(None))], start);
        let at = secs(start, 25);
        ledger.read(&[(0, one(None)), (1, one(None))], at);
        let mut listed = ledger.stale(2, &HashSet::new(), at);
        assert_eq!(listed, [0, 1]);
        ledger.flagged(at);
        // After the rejoin: partition 0 is stamped by its new owner, 1 is held here.
        ledger.read(&[(0, one(Some(5))), (1, one(None))], secs(start, 30));
        ledger.still_unowned(&mut listed, &HashSet::new());
        assert_eq!(listed, [1]);
        ledger.still_unowned(&mut listed, &[1].into());
        assert!(listed.is_empty());
        assert!(ledger.stale(2, &HashSet::new(), secs(start, 44)).is_empty(), "{STALE:?} to settle after a flag");
        assert_eq!(ledger.stale(2, &HashSet::new(), secs(start, 46)), [1], "1 is still not stamped");
    }
}
