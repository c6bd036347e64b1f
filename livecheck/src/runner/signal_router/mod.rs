//! Delivers each signal to the one test waiting for it.
//!
//! Here: the router, which tests execute, and which finished recently. Signals that came before their test are
//! held in `early`; the bus messages still needed (so the bus is committed only below them) are counted in
//! `needed`; an executing test's received signals and its waiter's wake-up are its `slots`.

mod early;
mod needed;
mod slots;
#[cfg(test)]
mod tests;

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use tokio::time::Instant;

use early::EarlySignals;
pub(crate) use needed::BusPosition;
use needed::NeededOffsets;
pub(crate) use slots::SignalSlots;

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

/// A signal read from the bus, to route: signal `index` of `case` for test `key`, issued at `timestamp` (from the
/// message headers, when it carried them), read at `position`. Kept early, it is dropped at `expires`.
pub(crate) struct Arrival<'a> {
    pub(crate) key: &'a str,
    pub(crate) timestamp: Option<DateTime<Utc>>,
    pub(crate) case: &'a Arc<str>,
    pub(crate) index: usize,
    pub(crate) value: Box<RawValue>,
    pub(crate) expires: Instant,
    pub(crate) position: BusPosition,
    /// The version of the service that sent it, when it said.
    pub(crate) version: Option<Arc<str>>,
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
    needed: NeededOffsets,
    early: EarlySignals,
    finished: RecentlyFinished,
}

/// Recently finished executions, to recognise signals that come after their test ended.
#[derive(Default)]
struct RecentlyFinished {
    set: HashSet<(String, DateTime<Utc>)>,
    order: VecDeque<(String, DateTime<Utc>)>,
}

const FINISHED_REMEMBERED: usize = 10_000;

impl RecentlyFinished {
    fn remember(&mut self, id: String, issued: DateTime<Utc>) {
        let key = (id, issued);
        if self.set.insert(key.clone()) {
            self.order.push_back(key);
            if self.order.len() > FINISHED_REMEMBERED {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }

    fn contains(&self, id: &str, issued: DateTime<Utc>) -> bool {
        self.set.contains(&(id.to_owned(), issued))
    }

    /// Forgets it (its place in `order` goes when it comes first; a key remembered again meanwhile is kept).
    fn forget(&mut self, id: &str, issued: DateTime<Utc>) {
        self.set.remove(&(id.to_owned(), issued));
    }
}

/// What became of a signal.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Routed {
    /// Given to the executing test; `duplicate` when it had this signal already (the service sent it twice).
    Delivered { duplicate: bool },
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

impl SignalRouter {
    pub(crate) fn new(early_limit: usize, early_byte_limit: usize) -> Self {
        SignalRouter { state: Mutex::default(), early_limit: early_limit.max(1), early_byte_limit }
    }

    /// Routes `signal`: to its test if it is executing, else held until it starts (unless it is stale or late).
    pub(crate) fn route(&self, signal: Arrival<'_>) -> Routed {
        let mut state = lock(&self.state);
        if let Some(test) = state.active.get_mut(signal.key) {
            let issued = test.run.context().timestamp();
            match signal.timestamp {
                Some(t) if t < issued => return Routed::Stale,
                Some(t) if t > issued => {}
                _ if test.run.case.name != *signal.case => {}
                _ => {
                    test.positions.get_or_insert_default().push(signal.position);
                    let run = test.run.clone();
                    state.needed.need(signal.position);
                    drop(state);
                    let duplicate =
                        run.signals.arrive(signal.index, signal.value, run.elapsed().as_secs_f64(), signal.version);
                    return Routed::Delivered { duplicate };
                }
            }
        }
        if let Some(t) = signal.timestamp {
            if state.finished.contains(signal.key, t) {
                return Routed::Late;
            }
        }
        let RouterState { early, needed, .. } = &mut *state;
        let evicted = early.hold(signal, Instant::now(), (self.early_limit, self.early_byte_limit), needed);
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
        if let Some(early) = state.early.take(id) {
            let mut kept = Vec::new();
            for signal in early {
                match signal.timestamp {
                    Some(t) if t > issued => kept.push(signal),
                    Some(t) if t < issued => {
                        stale += 1;
                        state.needed.release(signal.position);
                    }
                    _ if signal.case != *case => kept.push(signal),
                    _ => {
                        positions.push(signal.position);
                        let before_start = test.started().saturating_duration_since(signal.arrived);
                        let _duplicate = test.signals.arrive(
                            signal.index,
                            signal.value,
                            -before_start.as_secs_f64(),
                            signal.version,
                        );
                    }
                }
            }
            state.early.restore(id, kept);
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
            state.finished.remember(test.id().to_owned(), test.context().timestamp());
        }
        positions
    }

    /// The execution `id` issued at `issued` finished but its report could not be published: it runs again, and
    /// its signals, read again, must count (not be taken for late ones).
    pub(crate) fn forget_finished(&self, id: &str, issued: DateTime<Utc>) {
        lock(&self.state).finished.forget(id, issued);
    }

    /// The bus messages at `positions` are no longer needed.
    pub(crate) fn settle(&self, positions: &[BusPosition]) {
        let mut state = lock(&self.state);
        for position in positions {
            state.needed.release(*position);
        }
    }

    /// The execution `id` issued at `issued` has a report already: signals held for it are dropped and later ones
    /// are recognised as late.
    pub(crate) fn already_reported(&self, id: &str, issued: DateTime<Utc>) {
        let mut state = lock(&self.state);
        if let Some(early) = state.early.take(id) {
            let (theirs, others): (Vec<_>, Vec<_>) = early.into_iter().partition(|s| s.timestamp == Some(issued));
            for signal in &theirs {
                state.needed.release(signal.position);
            }
            state.early.restore(id, others);
        }
        state.finished.remember(id.to_owned(), issued);
    }

    /// The partition was given to another member: signals held for its tests are dropped, and none of its bus
    /// messages counts as needed here any more.
    pub(crate) fn forget_partition(&self, partition: u32) {
        let mut state = lock(&self.state);
        state.early.retain(|s| s.position.partition != partition);
        state.needed.forget(partition);
    }

    /// The lowest bus offset of `partition` still needed, with its mark.
    pub(crate) fn lowest_needed(&self, partition: u32) -> Option<(u64, u64)> {
        lock(&self.state).needed.lowest(partition)
    }

    /// Drops early signals whose time is up; returns how many.
    pub(crate) fn sweep(&self, now: Instant) -> usize {
        let mut state = lock(&self.state);
        let before = state.early.len();
        let mut expired = Vec::new();
        state.early.retain(|s| {
            let keep = s.expires > now;
            if !keep {
                expired.push(s.position);
            }
            keep
        });
        for position in expired {
            state.needed.release(position);
        }
        before - state.early.len()
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
        (state.active.len(), state.early.len())
    }

    /// The bytes early signals take.
    pub(crate) fn early_bytes(&self) -> usize {
        lock(&self.state).early.bytes()
    }
}
