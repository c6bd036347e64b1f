//! Whether this instance keeps up with its streams: how far behind the end of its partitions of the pending-tests
//! and bus streams it reads, checked every [`LAG_CHECK_EVERY`]. While it is more than `lag_threshold` messages
//! behind, a TIMEOUT may be its own fault (the signal is on the bus, not read yet): such verdicts are marked
//! "unknown", kept out of the case's failure counts and policies, and the case's status says the instance is
//! lagging instead of failing it.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::LiveCheck;
use crate::sync::lock;

/// How often the instance compares what it read with the ends of its partitions.
pub(crate) const LAG_CHECK_EVERY: Duration = Duration::from_secs(2);

/// How far behind the instance is, while it is further than its threshold.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct LagState {
    /// When it was first seen that far behind.
    #[serde(serialize_with = "crate::wire::timestamp::serialize")]
    pub since: DateTime<Utc>,
    /// Pending tests on its partitions not read yet.
    pub pending_tests_behind: u64,
    /// Signals on its partitions of the bus not read yet.
    pub signals_behind: u64,
}

/// The next offset the instance reads in each partition it owns, and whether it is lagging.
#[derive(Default)]
pub(crate) struct Lag {
    /// By partition: the next pending test and the next signal to read.
    next: Mutex<HashMap<u32, (u64, u64)>>,
    state: Mutex<Option<LagState>>,
}

impl Lag {
    /// Partition `partition` was assigned, to be read from these offsets.
    pub(crate) fn assigned(&self, partition: u32, pending_next: u64, bus_next: u64) {
        lock(&self.next).insert(partition, (pending_next, bus_next));
    }

    pub(crate) fn revoked(&self, partition: u32) {
        lock(&self.next).remove(&partition);
    }

    /// A pending test at `offset` of `partition` was read.
    pub(crate) fn read_test(&self, partition: u32, offset: u64) {
        if let Some(next) = lock(&self.next).get_mut(&partition) {
            next.0 = next.0.max(offset + 1);
        }
    }

    /// A signal at `offset` of `partition` was read.
    pub(crate) fn read_signal(&self, partition: u32, offset: u64) {
        if let Some(next) = lock(&self.next).get_mut(&partition) {
            next.1 = next.1.max(offset + 1);
        }
    }

    /// How far behind the instance is, while it is further than its threshold.
    pub(crate) fn lagging(&self) -> Option<LagState> {
        lock(&self.state).clone()
    }

    /// Compares what was read with the ends of the partitions: messages behind on each stream.
    fn behind(&self, pending_ends: &[u64], bus_ends: &[u64]) -> (u64, u64) {
        let next = lock(&self.next);
        next.iter().fold((0, 0), |(tests, signals), (partition, (pending, bus))| {
            let end = |ends: &[u64]| ends.get(*partition as usize).copied().unwrap_or(0);
            (
                tests.saturating_add(end(pending_ends).saturating_sub(*pending)),
                signals.saturating_add(end(bus_ends).saturating_sub(*bus)),
            )
        })
    }

    /// Records a check: lagging when either stream is more than `threshold` messages behind. Returns the change,
    /// if any: `Some(true)` when it starts lagging, `Some(false)` when it caught up.
    fn checked(&self, (tests, signals): (u64, u64), threshold: u64, now: DateTime<Utc>) -> Option<bool> {
        let mut state = lock(&self.state);
        let lagging = tests > threshold || signals > threshold;
        let change = match (&*state, lagging) {
            (None, true) => Some(true),
            (Some(_), false) => Some(false),
            _ => None,
        };
        *state = lagging.then(|| LagState {
            since: state.as_ref().map_or(now, |s| s.since),
            pending_tests_behind: tests,
            signals_behind: signals,
        });
        change
    }
}

/// Checks the instance's lag every [`LAG_CHECK_EVERY`] until `shutdown`; logs when it starts lagging and when it
/// caught up.
pub(crate) async fn watch(app: LiveCheck, shutdown: CancellationToken) {
    let shared = &app.shared;
    let threshold = shared.config.lag_threshold;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(LAG_CHECK_EVERY) => {}
        }
        let ends = async {
            let pending = shared.transport.end_offsets(&shared.streams.pending).await?;
            let bus = shared.transport.end_offsets(&shared.streams.bus).await?;
            Ok::<_, crate::Error>((pending, bus))
        };
        let (pending, bus) = match tokio::time::timeout(LAG_CHECK_EVERY, ends).await {
            Ok(Ok(ends)) => ends,
            // Unknown this time; /healthz tells a transport that does not answer.
            Ok(Err(_)) | Err(_) => continue,
        };
        let behind = shared.lag.behind(&pending, &bus);
        match shared.lag.checked(behind, threshold, shared.clock.now()) {
            Some(true) => tracing::warn!(
                pending_tests_behind = behind.0,
                signals_behind = behind.1,
                threshold,
                "this instance is lagging: TIMEOUTs are marked unknown and kept out of the cases' health until it \
                 catches up"
            ),
            Some(false) => tracing::info!("this instance caught up with its streams"),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lagging_beyond_the_threshold_on_either_stream_until_caught_up() {
        let lag = Lag::default();
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        lag.assigned(0, 10, 100);
        lag.assigned(2, 0, 0);
        lag.read_test(0, 19);
        lag.read_signal(2, 4);
        lag.read_signal(7, 1_000_000); // a partition not owned here
        assert_eq!(lag.behind(&[20, 0, 5], &[150, 0, 1005]), (5, 1050));
        assert_eq!(lag.checked((5, 1050), 1000, now), Some(true));
        let later = now + chrono::Duration::seconds(5);
        assert_eq!(lag.checked((5, 1001), 1000, later), None);
        let state = lag.lagging().unwrap();
        assert_eq!((state.since, state.signals_behind), (now, 1001), "since the first check that far behind");
        assert_eq!(lag.checked((1000, 0), 1000, later), Some(false), "at the threshold is not behind it");
        assert_eq!(lag.lagging(), None);
        lag.revoked(2);
        assert_eq!(lag.behind(&[20, 0, 5], &[150, 0, 1005]), (0, 50));
    }
}
