//! Signals that came before their test started executing, held until it does, up to a count and a byte limit: the
//! oldest go first when either is reached.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::Arc,
};

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use tokio::time::Instant;

use super::{needed::NeededOffsets, Arrival, BusPosition};

/// What an early signal costs besides its value and test id: the struct, its map and queue entries.
const EARLY_OVERHEAD: usize = 160;

/// A signal held for a test that is not executing (yet).
pub(super) struct EarlySignal {
    seq: u64,
    pub(super) position: BusPosition,
    pub(super) case: Arc<str>,
    pub(super) index: usize,
    pub(super) timestamp: Option<DateTime<Utc>>,
    pub(super) value: Box<RawValue>,
    pub(super) version: Option<Arc<str>>,
    pub(super) expires: Instant,
    /// When it was read, for the test's timeline.
    pub(super) arrived: Instant,
}

impl EarlySignal {
    fn bytes(&self, key: &str) -> usize {
        self.value.get().len() + 2 * key.len() + EARLY_OVERHEAD
    }
}

/// The early signals by test id, with their arrival order and what they take.
#[derive(Default)]
pub(super) struct EarlySignals {
    /// Signals for tests that are not executing (yet), by test id.
    by_test: HashMap<String, Vec<EarlySignal>>,
    /// Arrival order of early signals, for eviction at the limit: (test id, sequence number).
    order: VecDeque<(String, u64)>,
    len: usize,
    bytes: usize,
    next_seq: u64,
}

impl EarlySignals {
    /// How many are held.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The bytes they take (their values and test ids, plus a fixed cost each).
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Holds `signal` (read at `arrived`) until its test starts, making room by evicting the oldest when
    /// `limit` signals or `byte_limit` bytes are held; its position is needed meanwhile. Returns how many were
    /// evicted — 1 for a signal bigger than all the room there is, which is not held and makes no room.
    pub(super) fn hold(
        &mut self,
        signal: Arrival<'_>,
        arrived: Instant,
        (limit, byte_limit): (usize, usize),
        needed: &mut NeededOffsets,
    ) -> usize {
        let Arrival { key, timestamp, case, index, value, expires, position, version } = signal;
        let seq = self.next_seq;
        let signal =
            EarlySignal { seq, position, case: case.clone(), index, timestamp, value, version, expires, arrived };
        let bytes = signal.bytes(key);
        if bytes > byte_limit {
            // Bigger than all the room there is: not kept, and nothing else makes room for it.
            return 1;
        }
        let mut evicted = 0;
        // The oldest go first, by count and by bytes.
        while self.len > 0 && (self.len >= limit || self.bytes + bytes > byte_limit) {
            if self.evict_oldest(needed) {
                evicted += 1;
            }
        }
        self.next_seq += 1;
        self.order.push_back((key.to_owned(), seq));
        self.len += 1;
        self.bytes += bytes;
        needed.need(position);
        self.by_test.entry(key.to_owned()).or_default().push(signal);
        evicted
    }

    /// Takes the signals held for test `id` out, to be sorted; those to hold on go back with
    /// [`EarlySignals::restore`].
    pub(super) fn take(&mut self, id: &str) -> Option<Vec<EarlySignal>> {
        let signals = self.by_test.remove(id)?;
        self.len -= signals.len();
        self.bytes -= signals.iter().map(|s| s.bytes(id)).sum::<usize>();
        Some(signals)
    }

    /// Holds `kept` again for test `id`, in the place in the arrival order they had, after [`EarlySignals::take`].
    pub(super) fn restore(&mut self, id: &str, kept: Vec<EarlySignal>) {
        self.len += kept.len();
        self.bytes += kept.iter().map(|s| s.bytes(id)).sum::<usize>();
        if !kept.is_empty() {
            self.by_test.insert(id.to_owned(), kept);
        }
        self.compact_order();
    }

    /// Keeps only the signals `keep` says to, whatever their test.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&EarlySignal) -> bool) {
        self.by_test.retain(|_, signals| {
            signals.retain(&mut keep);
            !signals.is_empty()
        });
        self.recount();
    }

    /// Removes the oldest early signal still held; false if that one was already gone.
    fn evict_oldest(&mut self, needed: &mut NeededOffsets) -> bool {
        let Some((key, seq)) = self.order.pop_front() else {
            self.len = 0;
            self.bytes = 0;
            return false;
        };
        let Some(signals) = self.by_test.get_mut(&key) else {
            return false;
        };
        let Some(i) = signals.iter().position(|s| s.seq == seq) else {
            return false;
        };
        let signal = signals.remove(i);
        if signals.is_empty() {
            self.by_test.remove(&key);
        }
        needed.release(signal.position);
        self.len -= 1;
        self.bytes -= signal.bytes(&key);
        true
    }

    fn recount(&mut self) {
        self.len = self.by_test.values().map(Vec::len).sum();
        self.bytes = self.by_test.iter().flat_map(|(key, signals)| signals.iter().map(|s| s.bytes(key))).sum();
        self.compact_order();
    }

    /// Drops order entries of signals no longer held, once they outnumber the held ones (amortized O(1)).
    fn compact_order(&mut self) {
        if self.len == 0 {
            self.order.clear();
        } else if self.order.len() > 2 * self.len + 1024 {
            let live: HashSet<u64> = self.by_test.values().flatten().map(|s| s.seq).collect();
            self.order.retain(|(_, seq)| live.contains(seq));
        }
    }
}
