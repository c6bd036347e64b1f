//! Delivers each signal to the one test waiting for it.

use std::{
    collections::{HashMap, HashSet, VecDeque},
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
pub(crate) struct SignalRouter {
    state: Mutex<RouterState>,
    early_limit: usize,
}

#[derive(Default)]
struct RouterState {
    active: HashMap<String, Arc<TestRun>>,
    /// Signals for tests that are not executing (yet), by test id.
    early: HashMap<String, Vec<EarlySignal>>,
    /// Arrival order of early signals, for eviction at the limit: (test id, sequence number).
    early_order: VecDeque<(String, u64)>,
    early_len: usize,
    next_seq: u64,
    /// Recently finished executions, to recognise signals that come after their test ended.
    finished: HashSet<(String, DateTime<Utc>)>,
    finished_order: VecDeque<(String, DateTime<Utc>)>,
}

struct EarlySignal {
    seq: u64,
    case: Arc<str>,
    index: usize,
    timestamp: Option<DateTime<Utc>>,
    value: Box<RawValue>,
    expires: Instant,
}

/// The signals received so far by one executing test, and the wake-up of its waiter.
pub(crate) struct SignalSlots {
    slots: Mutex<Vec<Option<Box<RawValue>>>>,
    arrived: Notify,
}

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

const FINISHED_REMEMBERED: usize = 10_000;

impl SignalRouter {
    pub(crate) fn new(early_limit: usize) -> Self {
        SignalRouter { state: Mutex::default(), early_limit: early_limit.max(1) }
    }

    /// Routes the signal `index` of `case` for test `key`, issued at `timestamp` (from the message headers, when it
    /// carried them). A signal kept early is dropped at `expires`.
    pub(crate) fn route(
        &self,
        key: &str,
        timestamp: Option<DateTime<Utc>>,
        case: &Arc<str>,
        index: usize,
        value: Box<RawValue>,
        expires: Instant,
    ) -> Routed {
        let mut state = lock(&self.state);
        if let Some(test) = state.active.get(key) {
            let issued = test.context().timestamp();
            match timestamp {
                Some(t) if t < issued => return Routed::Stale,
                Some(t) if t > issued => {}
                _ if test.case.name != *case => {}
                _ => {
                    let test = test.clone();
                    drop(state);
                    test.signals.arrive(index, value);
                    return Routed::Delivered;
                }
            }
        }
        if let Some(t) = timestamp {
            if state.finished.contains(&(key.to_owned(), t)) {
                return Routed::Late;
            }
        }
        let mut evicted = 0;
        while state.early_len >= self.early_limit {
            if state.evict_oldest() {
                evicted += 1;
            }
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        state.early_order.push_back((key.to_owned(), seq));
        state.early_len += 1;
        state.early.entry(key.to_owned()).or_default().push(EarlySignal {
            seq,
            case: case.clone(),
            index,
            timestamp,
            value,
            expires,
        });
        Routed::Early { evicted }
    }

    /// Starts routing signals to `test`, handing it the early signals that are its own. Returns `None` when an
    /// execution with the same id is executing already; otherwise how many stale signals were dropped.
    pub(crate) fn register(&self, test: &Arc<TestRun>) -> Option<usize> {
        let (id, issued) = (test.id(), test.context().timestamp());
        let case = &test.case.name;
        let mut state = lock(&self.state);
        if state.active.contains_key(id) {
            return None;
        }
        let mut stale = 0;
        if let Some(early) = state.early.remove(id) {
            let held = early.len();
            let mut kept = Vec::new();
            for signal in early {
                match signal.timestamp {
                    Some(t) if t > issued => kept.push(signal),
                    Some(t) if t < issued => stale += 1,
                    _ if signal.case != *case => kept.push(signal),
                    _ => test.signals.arrive(signal.index, signal.value),
                }
            }
            state.early_len -= held - kept.len();
            if !kept.is_empty() {
                state.early.insert(id.to_owned(), kept);
            }
            state.compact_early_order();
        }
        state.active.insert(id.to_owned(), test.clone());
        Some(stale)
    }

    /// Stops routing to the test: its signals are released.
    pub(crate) fn release(&self, test: &TestRun) {
        let mut state = lock(&self.state);
        state.active.remove(test.id());
        let key = (test.id().to_owned(), test.context().timestamp());
        if state.finished.insert(key.clone()) {
            state.finished_order.push_back(key);
            if state.finished_order.len() > FINISHED_REMEMBERED {
                if let Some(old) = state.finished_order.pop_front() {
                    state.finished.remove(&old);
                }
            }
        }
    }

    /// Drops early signals whose time is up; returns how many.
    pub(crate) fn sweep(&self, now: Instant) -> usize {
        let mut state = lock(&self.state);
        let before = state.early_len;
        state.early.retain(|_, signals| {
            signals.retain(|s| s.expires > now);
            !signals.is_empty()
        });
        state.recount_early();
        before - state.early_len
    }

    /// Executing tests and early signals held.
    pub(crate) fn sizes(&self) -> (usize, usize) {
        let state = lock(&self.state);
        (state.active.len(), state.early_len)
    }
}

impl RouterState {
    /// Removes the oldest early signal still held; false if that one was already gone.
    fn evict_oldest(&mut self) -> bool {
        let Some((key, seq)) = self.early_order.pop_front() else {
            self.early_len = 0;
            return false;
        };
        let Some(signals) = self.early.get_mut(&key) else {
            return false;
        };
        let before = signals.len();
        signals.retain(|s| s.seq != seq);
        let removed = before != signals.len();
        if signals.is_empty() {
            self.early.remove(&key);
        }
        if removed {
            self.early_len -= 1;
        }
        removed
    }

    fn recount_early(&mut self) {
        self.early_len = self.early.values().map(Vec::len).sum();
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

    fn arrive(&self, index: usize, value: Box<RawValue>) {
        if let Some(slot) = lock(&self.slots).get_mut(index) {
            *slot = Some(value);
        }
        self.arrived.notify_waiters();
    }

    /// The value of signal `index`, at once if it arrived already, otherwise when it arrives.
    ///
    /// Cancellation safe.
    pub(crate) async fn wait_for(&self, index: usize) -> Box<RawValue> {
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if let Some(Some(value)) = lock(&self.slots).get(index) {
                return value.clone();
            }
            arrived.await;
        }
    }
}
