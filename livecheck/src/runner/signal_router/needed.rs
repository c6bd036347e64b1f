//! Which bus messages are still needed — held for a test not started yet, or given to a test that has no report
//! yet — so that the bus is committed only below them, and a restart or a new owner of the partition reads them
//! again.

use std::collections::{BTreeMap, HashMap};

/// Where a signal was read: its bus partition and offset, and the report stream's mark at that moment (see
/// `app::member`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BusPosition {
    pub(crate) partition: u32,
    pub(crate) offset: u64,
    pub(crate) mark: u64,
}

/// Bus messages still needed, by partition: offset → mark.
#[derive(Default)]
pub(super) struct NeededOffsets(HashMap<u32, BTreeMap<u64, u64>>);

impl NeededOffsets {
    /// The message at `position` is needed.
    pub(super) fn need(&mut self, position: BusPosition) {
        self.0.entry(position.partition).or_default().insert(position.offset, position.mark);
    }

    /// The message at `position` is no longer needed.
    pub(super) fn release(&mut self, position: BusPosition) {
        if let Some(needed) = self.0.get_mut(&position.partition) {
            needed.remove(&position.offset);
        }
    }

    /// None of `partition`'s messages is needed here any more (another member has it).
    pub(super) fn forget(&mut self, partition: u32) {
        self.0.remove(&partition);
    }

    /// The lowest offset of `partition` still needed, with its mark.
    pub(super) fn lowest(&self, partition: u32) -> Option<(u64, u64)> {
        self.0.get(&partition).and_then(|n| n.first_key_value()).map(|(o, m)| (*o, *m))
    }
}
