//! The record of alert deliveries: every webhook POST and its attempts, the latest ones kept.

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Alert, AlertEvent};
use crate::wire::timestamp;

/// One alert sent to one webhook: its attempts, oldest first.
///
/// ```json
/// {"event": "suite_failed", "case": "test_order", "url": "http://127.0.0.1:8080/hook",
///  "attempts": [{"at": "2026-11-25T01:51:06.369766Z", "status": 500, "error": "HTTP 500 Internal Server Error"},
///               {"at": "2026-11-25T01:51:07.372011Z", "status": 200, "error": null}],
///  "delivered": true}
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct AlertDelivery {
    /// What the alert told.
    pub event: AlertEvent,
    /// The case.
    pub case: String,
    /// The webhook, without user info or query string.
    pub url: String,
    /// Each attempt to POST it, oldest first.
    pub attempts: Vec<AlertAttempt>,
    /// Whether an attempt was answered with 2xx. False while attempts are still to come, and after the last one
    /// failed.
    pub delivered: bool,
    #[serde(skip)]
    id: u64,
}

/// One POST of an alert to a webhook.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct AlertAttempt {
    /// When the answer (or the error) came.
    #[serde(serialize_with = "timestamp::serialize")]
    pub at: DateTime<Utc>,
    /// The HTTP status of the answer; `None` when there was none (connection refused, timed out).
    pub status: Option<u16>,
    /// What went wrong; `None` for a 2xx answer.
    pub error: Option<String>,
}

impl AlertAttempt {
    pub(crate) fn new(status: Option<u16>, error: Option<String>) -> Self {
        AlertAttempt { at: crate::clock::Clock::System.now(), status, error }
    }
}

/// The latest deliveries (newest first, at most `capacity`) and counters of all of them.
pub(crate) struct DeliveryLog {
    capacity: usize,
    deliveries: Mutex<Recent>,
    delivered: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    /// Alerts a stopping instance gave up, as `case event → url`, until the instance logs them.
    not_delivered_at_stop: Mutex<Vec<String>>,
}

#[derive(Default)]
struct Recent {
    next_id: u64,
    newest_first: VecDeque<AlertDelivery>,
}

/// Alert counters (see [`crate::instance::MetricsSnapshot`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct AlertCounts {
    pub(crate) delivered: u64,
    pub(crate) failed: u64,
    pub(crate) dropped: u64,
}

impl DeliveryLog {
    pub(crate) fn new(capacity: usize) -> Self {
        DeliveryLog {
            capacity: capacity.max(1),
            deliveries: Mutex::default(),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            not_delivered_at_stop: Mutex::default(),
        }
    }

    /// A delivery of `alert` to `url` begins; returns its id. The oldest delivery kept is forgotten beyond the
    /// capacity.
    pub(crate) fn begin(&self, alert: &Alert, url: &str) -> u64 {
        let mut recent = crate::sync::lock(&self.deliveries);
        let id = recent.next_id;
        recent.next_id += 1;
        if recent.newest_first.len() == self.capacity {
            recent.newest_first.pop_back();
        }
        recent.newest_first.push_front(AlertDelivery {
            event: alert.event,
            case: alert.case.clone(),
            url: url.to_owned(),
            attempts: Vec::new(),
            delivered: false,
            id,
        });
        id
    }

    /// Records an attempt of delivery `id` (if it is still kept).
    pub(crate) fn attempt(&self, id: u64, attempt: AlertAttempt) {
        let delivered = attempt.error.is_none();
        if delivered {
            self.delivered.fetch_add(1, Ordering::Relaxed);
        }
        let mut recent = crate::sync::lock(&self.deliveries);
        if let Some(delivery) = recent.newest_first.iter_mut().find(|d| d.id == id) {
            delivery.attempts.push(attempt);
            delivery.delivered = delivered;
        }
    }

    /// A delivery gave up: its attempts are used up, or its error cannot be helped by trying again.
    pub(crate) fn gave_up(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// The alert `event` of `case` was not delivered to `url` (as shown) because the instance stopped.
    pub(crate) fn not_delivered_at_stop(&self, case: &str, event: AlertEvent, url: &str) {
        let text = format!("{case} {event} → {url}");
        crate::sync::lock(&self.not_delivered_at_stop).push(text);
    }

    /// The alerts not delivered because the instance stopped, forgotten as they are taken.
    pub(crate) fn take_not_delivered_at_stop(&self) -> Vec<String> {
        std::mem::take(&mut *crate::sync::lock(&self.not_delivered_at_stop))
    }

    /// An alert was dropped before any delivery: the queue was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(crate) fn list(&self) -> Vec<AlertDelivery> {
        crate::sync::lock(&self.deliveries).newest_first.iter().cloned().collect()
    }

    pub(crate) fn counts(&self) -> AlertCounts {
        AlertCounts {
            delivered: self.delivered.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::SuiteFailureKind;

    fn alert(case: &str) -> Alert {
        Alert::recovered(case, SuiteFailureKind::Stall, chrono::Utc::now())
    }

    #[test]
    fn deliveries_are_kept_newest_first_and_bounded() {
        let log = DeliveryLog::new(2);
        let first = log.begin(&alert("a"), "http://x/");
        log.begin(&alert("b"), "http://x/");
        log.attempt(first, AlertAttempt::new(Some(500), Some("HTTP 500".into())));
        log.attempt(first, AlertAttempt::new(Some(200), None));
        let listed = log.list();
        assert_eq!(listed.iter().map(|d| d.case.as_str()).collect::<Vec<_>>(), ["b", "a"]);
        assert_eq!(listed[1].attempts.len(), 2);
        assert!(listed[1].delivered);
        log.begin(&alert("c"), "http://x/");
        assert_eq!(log.list().iter().map(|d| d.case.as_str()).collect::<Vec<_>>(), ["c", "b"]);
        log.attempt(first, AlertAttempt::new(Some(200), None));
        assert_eq!(log.counts().delivered, 2, "counted even when no longer kept");
        let json = serde_json::to_value(&log.list()[1]).unwrap();
        assert_eq!(json["event"], "recovered");
        assert_eq!(json.as_object().unwrap().len(), 5, "{json}");
    }
}
