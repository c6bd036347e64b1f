//! The signals one executing test received so far, and the wake-up of its waiter: one slot per declared signal and
//! one `Notify` per test, enabled before the slots are looked at, so no wake-up is lost.

use std::sync::{Arc, Mutex};

use serde_json::value::RawValue;
use tokio::sync::Notify;

use crate::sync::lock;

/// The signals received so far by one executing test, and the wake-up of its waiter.
pub(crate) struct SignalSlots {
    /// Per declared signal, once it arrived (a signal that came before the test started arrived at a negative
    /// time).
    slots: Mutex<Vec<Option<Arrived>>>,
    arrived: Notify,
}

/// A signal's value, when it first arrived (in seconds since its test started executing) and the version of the
/// service that sent it.
type Arrived = (Box<RawValue>, f64, Option<Arc<str>>);

impl SignalSlots {
    pub(crate) fn new(signals: usize) -> Self {
        SignalSlots { slots: Mutex::new(vec![None; signals]), arrived: Notify::new() }
    }

    /// Signal `index` arrived with `value`, `at` seconds after the test started, from a service of `version` (a
    /// later copy replaces the value and keeps the first arrival time and version). Returns whether it had arrived
    /// before: a duplicate.
    pub(super) fn arrive(&self, index: usize, value: Box<RawValue>, at: f64, version: Option<Arc<str>>) -> bool {
        let mut duplicate = false;
        if let Some(slot) = lock(&self.slots).get_mut(index) {
            let (at, version) = match slot.take() {
                Some((_, first, first_version)) => {
                    duplicate = true;
                    (first, first_version)
                }
                None => (at, version),
            };
            *slot = Some((value, at, version));
        }
        self.arrived.notify_waiters();
        duplicate
    }

    /// When each signal first arrived, in seconds since the test started executing; `None` for those that did not.
    pub(crate) fn arrivals(&self) -> Vec<Option<f64>> {
        lock(&self.slots).iter().map(|slot| slot.as_ref().map(|(_, at, _)| *at)).collect()
    }

    /// The version of the service that sent each signal, for those that arrived from one that said.
    pub(crate) fn versions(&self) -> Vec<Option<Arc<str>>> {
        lock(&self.slots).iter().map(|slot| slot.as_ref().and_then(|(_, _, version)| version.clone())).collect()
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
            if let Some(Some((value, _, _))) = lock(&self.slots).get(index) {
                return value.clone();
            }
            arrived.await;
            woken();
        }
    }
}
