//! Delivers each signal to the one test waiting for it.

use std::{
    collections::{BTreeMap, HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use tokio::{sync::Notify, time::Instant};

use super::TestRun;
use crate::sync::lock;

/// Tests that are executing and the signals that came before their test did.
///
/// Cost per signal: one hash lookup and a wake-up of that test's waiter alone, however many tests wait.
///
/// It also knows which bus messages are still needed — held for a test not started yet, or given to a test that
/// has no report yet — so that the bus is committed only below them, and a restart or a new owner of the
/// partition reads them again.
pub(crate) struct SignalRouter {
    state: Mutex<RouterState>,
    early_limit: usize,
    /// The most bytes early signals may take (their values and test ids, plus a fixed cost each).
    early_byte_limit: usize,
}

/// Where a signal was read: its bus partition and offset, and the report stream's mark at that moment (see
/// `app::member`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BusPosition {
    pub(crate) partition: u32,
    pub(crate) offset: u64,
    pub(crate) mark: u64,
}

/// An executing test and where the bus messages it was given were read (boxed: most waiting tests have none).
struct ActiveTest {
    run: Arc<TestRun>,
    // One pointer rather than a vector's three words: there is one of these per waiting test.
    #[allow(clippy::box_collection)]
    positions: Option<Box<Vec<BusPosition>>>,
}

#[derive(Default)]
struct RouterState {
    active: HashMap<String, ActiveTest>,
    /// Bus messages still needed, by partition: offset → mark.
    needed: HashMap<u32, BTreeMap<u64, u64>>,
    /// Signals for tests that are not executing (yet), by test id.
    early: HashMap<String, Vec<EarlySignal>>,
    /// Arrival order of early signals, for eviction at the limit: (test id, sequence number).
    early_order: VecDeque<(String, u64)>,
    early_len: usize,
    early_bytes: usize,
    next_seq: u64,
    /// Recently finished executions, to recognise signals that come after their test ended.
    finished: HashSet<(String, DateTime<Utc>)>,
    finished_order: VecDeque<(String, DateTime<Utc>)>,
}

struct EarlySignal {
    seq: u64,
    position: BusPosition,
    case: Arc<str>,
    index: usize,
    timestamp: Option<DateTime<Utc>>,
    value: Box<RawValue>,
    expires: Instant,
    /// When it was read, for the test's timeline.
    arrived: Instant,
}

/// What an early signal costs besides its value and test id: the struct, its map and queue entries.
const EARLY_OVERHEAD: usize = 160;

impl EarlySignal {
    fn bytes(&self, key: &str) -> usize {
        self.value.get().len() + 2 * key.len() + EARLY_OVERHEAD
    }
}

/// The signals received so far by one executing test, and the wake-up of its waiter.
pub(crate) struct SignalSlots {
    /// Per declared signal, once it arrived (a signal that came before the test started arrived at a negative
    /// time).
    slots: Mutex<Vec<Option<Arrived>>>,
    arrived: Notify,
}

/// A signal's value and when it first arrived, in seconds since its test started executing.
type Arrived = (Box<RawValue>, f64);

/// What became of a signal.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Routed {
    /// Given to the executing test.
    Delivered,
    /// Kept until its test starts executing.
    Early { evicted: usize },
    /// Belongs to an older execution of a reused test id.
    Stale,
    /// Its test already finished.
    Late,
}

/// Why a test could not be registered: its id is executing already.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Occupied {
    /// By this very execution (same id, issue time and case): this one is a copy.
    SameExecution,
    /// By another execution reusing the id.
    OtherExecution,
}

const FINISHED_REMEMBERED: usize = 10_000;

impl SignalRouter {
    pub(crate) fn new(early_limit: usize, early_byte_limit: usize) -> Self {
        SignalRouter { state: Mutex::default(), early_limit: early_limit.max(1), early_byte_limit }
    }

    /// Routes the signal `index` of `case` for test `key`, issued at `timestamp` (from the message headers, when it
    /// carried them), read at `position`. A signal kept early is dropped at `expires`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn route(
        &self,
        key: &str,
        timestamp: Option<DateTime<Utc>>,
        case: &Arc<str>,
        index: usize,
        value: Box<RawValue>,
        expires: Instant,
        position: BusPosition,
    ) -> Routed {
        let mut state = lock(&self.state);
        if let Some(test) = state.active.get_mut(key) {
            let issued = test.run.context().timestamp();
            match timestamp {
                Some(t) if t < issued => return Routed::Stale,
                Some(t) if t > issued => {}
                _ if test.run.case.name != *case => {}
                _ => {
                    test.positions.get_or_insert_default().push(position);
                    let run = test.run.clone();
                    state.need(position);
                    drop(state);
                    run.signals.arrive(index, value, run.elapsed().as_secs_f64());
                    return Routed::Delivered;
                }
            }
        }
        if let Some(t) = timestamp {
            if state.finished.contains(&(key.to_owned(), t)) {
                return Routed::Late;
            }
        }
        let seq = state.next_seq;
        let arrived = Instant::now();
        let signal = EarlySignal { seq, position, case: case.clone(), index, timestamp, value, expires, arrived };
        let bytes = signal.bytes(key);
        if bytes > self.early_byte_limit {
            // Bigger than all the room there is: not kept, and nothing else makes room for it.
            return Routed::Early { evicted: 1 };
        }
        let mut evicted = 0;
        // The oldest go first, by count and by bytes.
        while state.early_len > 0
            && (state.early_len >= self.early_limit || state.early_bytes + bytes > self.early_byte_limit)
        {
            if state.evict_oldest() {
                evicted += 1;
            }
        }
        state.next_seq += 1;
        state.early_order.push_back((key.to_owned(), seq));
        state.early_len += 1;
        state.early_bytes += bytes;
        state.need(position);
        state.early.entry(key.to_owned()).or_default().push(signal);
        Routed::Early { evicted }
    }

    /// Starts routing signals to `test`, handing it the early signals that are its own, and returns how many stale
    /// signals were dropped; or, when an execution with the same id is executing already, whether it is this same
    /// execution (same issue time: a copy) or another one.
    pub(crate) fn register(&self, test: &Arc<TestRun>) -> Result<usize, Occupied> {
        let (id, issued) = (test.id(), test.context().timestamp());
        let case = &test.case.name;
        let mut state = lock(&self.state);
        if let Some(running) = state.active.get(id) {
            let same = running.run.context().timestamp() == issued && running.run.case.name == *case;
            return Err(if same { Occupied::SameExecution } else { Occupied::OtherExecution });
        }
        let mut stale = 0;
        let mut positions = Vec::new();
        if let Some(early) = state.early.remove(id) {
            let held = early.len();
            let held_bytes: usize = early.iter().map(|s| s.bytes(id)).sum();
            let mut kept = Vec::new();
            for signal in early {
                match signal.timestamp {
                    Some(t) if t > issued => kept.push(signal),
                    Some(t) if t < issued => {
                        stale += 1;
                        state.release_position(signal.position);
                    }
                    _ if signal.case != *case => kept.push(signal),
                    _ => {
                        positions.push(signal.position);
                        let before_start = test.started().saturating_duration_since(signal.arrived);
                        test.signals.arrive(signal.index, signal.value, -before_start.as_secs_f64());
                    }
                }
            }
            state.early_len -= held - kept.len();
            state.early_bytes -= held_bytes - kept.iter().map(|s| s.bytes(id)).sum::<usize>();
            if !kept.is_empty() {
                state.early.insert(id.to_owned(), kept);
            }
            state.compact_early_order();
        }
        let positions = (!positions.is_empty()).then(|| Box::new(positions));
        state.active.insert(id.to_owned(), ActiveTest { run: test.clone(), positions });
        Ok(stale)
    }

    /// Whether the execution `id` of `case` issued at `issued` is executing now.
    pub(crate) fn is_executing(&self, id: &str, issued: DateTime<Utc>, case: &str) -> bool {
        let state = lock(&self.state);
        state
            .active
            .get(id)
            .is_some_and(|test| test.run.context().timestamp() == issued && *test.run.case.name == *case)
    }

    /// Stops routing to the test: its signals are released from memory. Returns where they were read: they stay
    /// needed until [`SignalRouter::settle`] (once the test's report is out), or for good if the test was
    /// interrupted, so that its signals are read again when it runs again.
    ///
    /// A test that `finished` makes its later signals late; an interrupted one does not: it runs again (here, if
    /// its partition comes back) and its signals, read again, must count.
    pub(crate) fn release(&self, test: &TestRun, finished: bool) -> Vec<BusPosition> {
        let mut state = lock(&self.state);
        let positions = state.active.remove(test.id()).and_then(|t| t.positions).map_or_else(Vec::new, |p| *p);
        if finished {
            state.remember_finished(test.id().to_owned(), test.context().timestamp());
        }
        positions
    }

    /// The bus messages at `positions` are no longer needed.
    pub(crate) fn settle(&self, positions: &[BusPosition]) {
        let mut state = lock(&self.state);
        for position in positions {
            state.release_position(*position);
        }
    }

    /// The execution `id` issued at `issued` has a report already: signals held for it are dropped and later ones
    /// are recognised as late.
    pub(crate) fn already_reported(&self, id: &str, issued: DateTime<Utc>) {
        let mut state = lock(&self.state);
        if let Some(early) = state.early.remove(id) {
            let (theirs, others): (Vec<_>, Vec<_>) = early.into_iter().partition(|s| s.timestamp == Some(issued));
            for signal in &theirs {
                state.release_position(signal.position);
            }
            if !others.is_empty() {
                state.early.insert(id.to_owned(), others);
            }
            state.recount_early();
        }
        state.remember_finished(id.to_owned(), issued);
    }

    /// The partition was given to another member: signals held for its tests are dropped, and none of its bus
    /// messages counts as needed here any more.
    pub(crate) fn forget_partition(&self, partition: u32) {
        let mut state = lock(&self.state);
        state.early.retain(|_, signals| {
            signals.retain(|s| s.position.partition != partition);
            !signals.is_empty()
        });
        state.recount_early();
        state.needed.remove(&partition);
    }

    /// The lowest bus offset of `partition` still needed, with its mark.
    pub(crate) fn lowest_needed(&self, partition: u32) -> Option<(u64, u64)> {
        lock(&self.state).needed.get(&partition).and_then(|n| n.first_key_value()).map(|(o, m)| (*o, *m))
    }

    /// Drops early signals whose time is up; returns how many.
    pub(crate) fn sweep(&self, now: Instant) -> usize {
        let mut state = lock(&self.state);
        let before = state.early_len;
        let mut expired = Vec::new();
        state.early.retain(|_, signals| {
            signals.retain(|s| {
                let keep = s.expires > now;
                if !keep {
                    expired.push(s.position);
                }
                keep
            });
            !signals.is_empty()
        });
        for position in expired {
            state.release_position(position);
        }
        state.recount_early();
        before - state.early_len
    }

    /// The tests executing now (a copy of their handles: the router is not held while they are looked at).
    pub(crate) fn executing(&self) -> Vec<Arc<TestRun>> {
        lock(&self.state).active.values().map(|test| test.run.clone()).collect()
    }

    /// The executing test with id `id`, if any.
    pub(crate) fn executing_test(&self, id: &str) -> Option<Arc<TestRun>> {
        lock(&self.state).active.get(id).map(|test| test.run.clone())
    }

    /// Executing tests and early signals held.
    pub(crate) fn sizes(&self) -> (usize, usize) {
        let state = lock(&self.state);
        (state.active.len(), state.early_len)
    }

    /// The bytes early signals take.
    pub(crate) fn early_bytes(&self) -> usize {
        lock(&self.state).early_bytes
    }
}

impl RouterState {
    fn need(&mut self, position: BusPosition) {
        self.needed.entry(position.partition).or_default().insert(position.offset, position.mark);
    }

    fn release_position(&mut self, position: BusPosition) {
        if let Some(needed) = self.needed.get_mut(&position.partition) {
            needed.remove(&position.offset);
        }
    }

    fn remember_finished(&mut self, id: String, issued: DateTime<Utc>) {
        let key = (id, issued);
        if self.finished.insert(key.clone()) {
            self.finished_order.push_back(key);
            if self.finished_order.len() > FINISHED_REMEMBERED {
                if let Some(old) = self.finished_order.pop_front() {
                    self.finished.remove(&old);
                }
            }
        }
    }

    /// Removes the oldest early signal still held; false if that one was already gone.
    fn evict_oldest(&mut self) -> bool {
        let Some((key, seq)) = self.early_order.pop_front() else {
            self.early_len = 0;
            self.early_bytes = 0;
            return false;
        };
        let Some(signals) = self.early.get_mut(&key) else {
            return false;
        };
        let Some(i) = signals.iter().position(|s| s.seq == seq) else {
            return false;
        };
        let signal = signals.remove(i);
        if signals.is_empty() {
            self.early.remove(&key);
        }
        self.release_position(signal.position);
        self.early_len -= 1;
        self.early_bytes -= signal.bytes(&key);
        true
    }

    fn recount_early(&mut self) {
        self.early_len = self.early.values().map(Vec::len).sum();
        self.early_bytes = self.early.iter().flat_map(|(key, signals)| signals.iter().map(|s| s.bytes(key))).sum();
        self.compact_early_order();
    }

    /// Drops order entries of signals no longer held, once they outnumber the held ones (amortized O(1)).
    fn compact_early_order(&mut self) {
        if self.early_len == 0 {
            self.early_order.clear();
        } else if self.early_order.len() > 2 * self.early_len + 1024 {
            let live: HashSet<u64> = self.early.values().flatten().map(|s| s.seq).collect();
            self.early_order.retain(|(_, seq)| live.contains(seq));
        }
    }
}

impl SignalSlots {
    pub(crate) fn new(signals: usize) -> Self {
        SignalSlots { slots: Mutex::new(vec![None; signals]), arrived: Notify::new() }
    }

    /// Signal `index` arrived with `value`, `at` seconds after the test started (a later copy replaces the value
    /// and keeps the first arrival time).
    fn arrive(&self, index: usize, value: Box<RawValue>, at: f64) {
        if let Some(slot) = lock(&self.slots).get_mut(index) {
            let at = slot.as_ref().map_or(at, |(_, first)| *first);
            *slot = Some((value, at));
        }
        self.arrived.notify_waiters();
    }

    /// When each signal first arrived, in seconds since the test started executing; `None` for those that did not.
    pub(crate) fn arrivals(&self) -> Vec<Option<f64>> {
        lock(&self.slots).iter().map(|slot| slot.as_ref().map(|(_, at)| *at)).collect()
    }

    /// The value of signal `index`, at once if it arrived already, otherwise when it arrives; `woken` is called
    /// each time the waiter is woken.
    ///
    /// Cancellation safe.
    pub(crate) async fn wait_for(&self, index: usize, woken: impl Fn()) -> Box<RawValue> {
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if let Some(Some((value, _))) = lock(&self.slots).get(index) {
                return value.clone();
            }
            arrived.await;
            woken();
        }
    }
}
