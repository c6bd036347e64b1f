//! What the services saw: each process counts, per case, the requests `maybe_trigger` was asked about and those it
//! sampled, and reports the counts on the group's instances stream at most every [`TRAFFIC_REPORT_EVERY`] — from
//! the request path, with no task of its own. A stalled case can then tell no traffic from traffic that is not
//! sampled, and from sampled tests that do not reach the instance.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::{publish::Publisher, sync::lock, transport::Message};

/// How often a process reports a case's traffic at most.
pub(crate) const TRAFFIC_REPORT_EVERY: Duration = Duration::from_secs(10);

/// One process's counts for one case since its previous report: `{"traffic": {"case", "seen", "sampled", "at"}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct TrafficReport {
    pub(crate) traffic: TrafficCounts,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct TrafficCounts {
    pub(crate) case: String,
    /// Requests `maybe_trigger` was asked about.
    pub(crate) seen: u64,
    /// Of them, those it sampled into a test.
    pub(crate) sampled: u64,
    pub(crate) at: DateTime<Utc>,
}

/// The counts of one case in this process since its last report.
#[derive(Default)]
pub(crate) struct TrafficCounter {
    seen: AtomicU64,
    sampled: AtomicU64,
    last_report: Mutex<Option<Instant>>,
}

impl TrafficCounter {
    /// A request was seen (and `sampled` into a test, or not); reports the counts when one is due.
    pub(crate) fn seen(&self, sampled: bool, case: &str, publisher: &Arc<Publisher>) {
        self.seen.fetch_add(1, Ordering::Relaxed);
        if sampled {
            self.sampled.fetch_add(1, Ordering::Relaxed);
        }
        let now = Instant::now();
        {
            let mut last = lock(&self.last_report);
            if last.is_some_and(|at| now.saturating_duration_since(at) < TRAFFIC_REPORT_EVERY) {
                return;
            }
            *last = Some(now);
        }
        let counts = TrafficCounts {
            case: case.to_owned(),
            seen: self.seen.swap(0, Ordering::Relaxed),
            sampled: self.sampled.swap(0, Ordering::Relaxed),
            at: publisher.clock.now(),
        };
        let Ok(value) = serde_json::to_vec(&TrafficReport { traffic: counts }) else { return };
        let publisher = publisher.clone();
        // Off the request's path; a report that cannot be published is only a gap in what the instance knows.
        tokio::spawn(async move {
            let stream = publisher.streams.instances();
            let message = Message { key: None, value, headers: Default::default() };
            let unconfirmed = &publisher.metrics.unconfirmed_dropped;
            if let Err(error) = publisher.publish_bounded(&stream, message, unconfirmed, "a traffic report").await {
                tracing::debug!(error = %crate::error::with_causes(&error), "a traffic report was not published");
            }
        });
    }
}

/// What the services reported of a case's traffic lately, as an instance keeps it (bounded).
#[derive(Default)]
pub(crate) struct ReportedTraffic {
    reports: std::collections::VecDeque<(DateTime<Utc>, u64, u64)>,
}

/// Reports kept per case at most.
const MOST_REPORTS: usize = 4096;

impl ReportedTraffic {
    pub(crate) fn add(&mut self, at: DateTime<Utc>, seen: u64, sampled: u64) {
        if self.reports.len() == MOST_REPORTS {
            self.reports.pop_front();
        }
        self.reports.push_back((at, seen, sampled));
    }

    /// Requests seen and sampled, as reported for the time since `since`.
    pub(crate) fn since(&mut self, since: DateTime<Utc>) -> Option<(u64, u64)> {
        while self.reports.front().is_some_and(|(at, _, _)| *at < since) {
            self.reports.pop_front();
        }
        (!self.reports.is_empty()).then(|| {
            // Saturating: the counts come from whoever writes on the instances stream.
            self.reports
                .iter()
                .fold((0u64, 0u64), |(seen, sampled), (_, s, t)| (seen.saturating_add(*s), sampled.saturating_add(*t)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_count_within_their_window_bounded_and_without_overflow() {
        let at = |s: i64| DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap();
        let mut traffic = ReportedTraffic::default();
        assert_eq!(traffic.since(at(0)), None, "no report: no traffic known");
        traffic.add(at(0), 5, 1);
        traffic.add(at(10), 7, 0);
        assert_eq!(traffic.since(at(5)), Some((7, 0)), "the older report fell out of the window");
        // Forged counts on the stream: saturated, never a panic.
        traffic.add(at(20), u64::MAX, u64::MAX);
        assert_eq!(traffic.since(at(5)), Some((u64::MAX, u64::MAX)));
        for i in 0..(MOST_REPORTS as i64 + 10) {
            traffic.add(at(30 + i), 1, 0);
        }
        assert_eq!(traffic.reports.len(), MOST_REPORTS, "bounded");
    }
}
