//! Which offsets may be committed when messages finish out of order.

use std::collections::{BTreeSet, HashMap};

/// Per partition: offsets being processed, and the highest seen. The committable point is the lowest offset still
/// in flight (or one past the highest seen when none is), so nothing unprocessed is ever committed.
#[derive(Default)]
pub(crate) struct OffsetTracker {
    partitions: HashMap<u32, PartitionOffsets>,
}

#[derive(Default)]
struct PartitionOffsets {
    in_flight: BTreeSet<u64>,
    next: u64,
    committed: u64,
}

impl OffsetTracker {
    pub(crate) fn started(&mut self, partition: u32, offset: u64) {
        let p = self.partitions.entry(partition).or_default();
        p.in_flight.insert(offset);
        p.next = p.next.max(offset + 1);
    }

    /// Marks `offset` processed; returns the new commit point of its partition if it moved.
    pub(crate) fn finished(&mut self, partition: u32, offset: u64) -> Option<u64> {
        let p = self.partitions.get_mut(&partition)?;
        p.in_flight.remove(&offset);
        let point = p.in_flight.first().copied().unwrap_or(p.next);
        (point > p.committed).then(|| {
            p.committed = point;
            point
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_the_processed_prefix() {
        let mut t = OffsetTracker::default();
        for o in 0..3 {
            t.started(0, o);
        }
        assert_eq!(t.finished(0, 1), None, "0 still in flight");
        assert_eq!(t.finished(0, 0), Some(2));
        assert_eq!(t.finished(0, 2), Some(3));
        t.started(1, 10);
        assert_eq!(t.finished(1, 10), Some(11));
    }
}
