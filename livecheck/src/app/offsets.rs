//! Which offsets may be committed when messages finish out of order.

use std::collections::{BTreeSet, HashMap, VecDeque};

/// Per partition: offsets being processed, and the next one to read. The committable point is the lowest offset
/// still in flight (or the next to read when none is), so nothing unprocessed is ever committed. An interrupted
/// message stays in flight: it is read again by whoever holds the partition next.
///
/// Each commit carries a mark (see `reported.rs`): the mark of the message at the commit point. Marks never
/// decrease along a partition, so only the offsets where the mark changed are kept.
#[derive(Default)]
pub(crate) struct OffsetTracker {
    partitions: HashMap<u32, PartitionOffsets>,
}

#[derive(Default)]
struct PartitionOffsets {
    in_flight: BTreeSet<u64>,
    /// (first offset, mark) where the mark changed, in order.
    marks: VecDeque<(u64, u64)>,
    next: u64,
    committed: Option<(u64, u64)>,
}

impl PartitionOffsets {
    /// The mark of `offset`: that of the last change at or before it.
    fn mark_of(&self, offset: u64) -> Option<u64> {
        self.marks.iter().rev().find(|(from, _)| *from <= offset).map(|(_, mark)| *mark)
    }
}

impl OffsetTracker {
    /// The partition is assigned; reading starts at `offset`.
    pub(crate) fn assigned(&mut self, partition: u32, offset: u64) {
        self.partitions.insert(partition, PartitionOffsets { next: offset, ..Default::default() });
    }

    /// The partition is gone: everything about it is forgotten.
    pub(crate) fn forget(&mut self, partition: u32) {
        self.partitions.remove(&partition);
    }

    pub(crate) fn started(&mut self, partition: u32, offset: u64, mark: u64) {
        let p = self.partitions.entry(partition).or_default();
        p.in_flight.insert(offset);
        p.next = p.next.max(offset + 1);
        if p.marks.back().is_none_or(|(_, last)| *last != mark) {
            p.marks.push_back((offset, mark));
        }
    }

    /// Marks `offset` processed.
    pub(crate) fn finished(&mut self, partition: u32, offset: u64) {
        let Some(p) = self.partitions.get_mut(&partition) else { return };
        p.in_flight.remove(&offset);
        // Changes of mark below the lowest offset in flight are no longer needed (but the one it falls under).
        let lowest = p.in_flight.first().copied().unwrap_or(p.next);
        while p.marks.len() > 1 && p.marks[1].0 <= lowest {
            p.marks.pop_front();
        }
    }

    /// The commit point of `partition` and its mark (`mark_now` when nothing is in flight), if it changed since
    /// last asked.
    pub(crate) fn commit_point(&mut self, partition: u32, mark_now: u64) -> Option<(u64, u64)> {
        let p = self.partitions.get_mut(&partition)?;
        let point = match p.in_flight.first() {
            Some(offset) => (*offset, p.mark_of(*offset).unwrap_or(mark_now)),
            None => (p.next, mark_now),
        };
        (p.committed != Some(point)).then(|| {
            p.committed = Some(point);
            point
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_the_processed_prefix_with_the_mark_of_the_lowest_in_flight() {
        let mut t = OffsetTracker::default();
        t.assigned(0, 0);
        for o in 0..3 {
            t.started(0, o, 10 + o);
        }
        t.finished(0, 1);
        assert_eq!(t.commit_point(0, 99), Some((0, 10)), "0 still in flight");
        assert_eq!(t.commit_point(0, 99), None, "unchanged");
        t.finished(0, 0);
        assert_eq!(t.commit_point(0, 99), Some((2, 12)));
        t.finished(0, 2);
        assert_eq!(t.commit_point(0, 99), Some((3, 99)));
        t.assigned(1, 10);
        assert_eq!(t.commit_point(1, 5), Some((10, 5)));
        t.forget(1);
        assert_eq!(t.commit_point(1, 5), None);
    }
}
