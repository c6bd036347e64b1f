//! Alerts: webhooks told when a case fails as a whole, stalls, finds its service down, or recovers.
//!
//! The instance that decides a suite failure (it runs the case's tests) hands the alert to a bounded queue and goes
//! on: a sender with a thread of its own POSTs it to every webhook, retrying with backoff, and records each attempt
//! ([`AlertDelivery`]). Nothing in the test pipeline waits for a webhook.

// Without `http` nothing delivers: only the record (empty) is used.
#[cfg_attr(not(feature = "http"), allow(dead_code))]
mod delivery;
mod event;
#[cfg(feature = "http")]
mod format;
#[cfg(feature = "http")]
mod webhook;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::mpsc;

pub use delivery::{AlertAttempt, AlertDelivery};
pub(crate) use delivery::{AlertCounts, DeliveryLog};
pub use event::{Alert, AlertEvent};
#[cfg(feature = "http")]
pub(crate) use format::Format;
#[cfg(feature = "http")]
pub(crate) use webhook::Webhooks;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub use webhook::{
    ALERT_INSTANCE_ENV, ALERT_WEBHOOKS_ENV, ALERT_WEBHOOK_SECRET_ENV, DASHBOARD_URL_ENV, HEADER_WEBHOOK_SIGNATURE,
};

/// Alerts waiting for the sender; beyond it an alert is dropped, counted and logged.
const QUEUE_CAPACITY: usize = 256;

/// Deliveries kept for [`crate::LiveCheck::alert_deliveries`].
const DELIVERIES_KEPT: usize = 200;

/// The app's alerting: where alerts go, the queue to the sender while an instance runs, and the record of
/// deliveries.
pub(crate) struct Alerts {
    #[cfg(feature = "http")]
    webhooks: Option<Webhooks>,
    log: Arc<DeliveryLog>,
    /// The sender's queue, while an instance runs with webhooks.
    queue: Mutex<Option<mpsc::Sender<Alert>>>,
    /// Who sends: the instance's name, and the dashboard alerts link to (set on the builder, or found at start).
    sender: Mutex<AlertSender>,
    /// Each case's latest test that did not pass, and its error: the example an alert gives.
    examples: Mutex<HashMap<String, (String, Option<String>)>>,
}

/// What every alert says of where it comes from.
#[derive(Clone, Debug, Default)]
pub(crate) struct AlertSender {
    /// The instance's name (default: the host's name).
    pub(crate) instance: Option<String>,
    /// The dashboard's URL (default: the instance's web server, when it has one).
    pub(crate) dashboard: Option<String>,
}

#[cfg(feature = "http")]
impl AlertSender {
    /// `instance` or the host's name; `dashboard` as given.
    pub(crate) fn new(instance: Option<String>, dashboard: Option<String>) -> Self {
        AlertSender { instance: instance.or_else(host_name), dashboard }
    }
}

/// This machine's name, when it can be read.
#[cfg(feature = "http")]
fn host_name() -> Option<String> {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
}

impl Alerts {
    /// Alerting to `webhooks` (none: alerts are only logged).
    #[cfg(feature = "http")]
    pub(crate) fn new(webhooks: Option<Webhooks>, sender: AlertSender) -> Self {
        Alerts {
            webhooks,
            log: Arc::new(DeliveryLog::new(DELIVERIES_KEPT)),
            queue: Mutex::default(),
            sender: Mutex::new(sender),
            examples: Mutex::default(),
        }
    }

    /// No webhooks without the `http` feature: alerts are only logged.
    #[cfg(not(feature = "http"))]
    pub(crate) fn new() -> Self {
        Alerts {
            log: Arc::new(DeliveryLog::new(DELIVERIES_KEPT)),
            queue: Mutex::default(),
            sender: Mutex::default(),
            examples: Mutex::default(),
        }
    }

    /// Hands `alert` to the sender without waiting. Without webhooks (or an instance running) it goes nowhere; with
    /// the queue full it is dropped, counted and logged.
    pub(crate) fn send(&self, mut alert: Alert) {
        let sender = crate::sync::lock(&self.sender).clone();
        (alert.instance, alert.dashboard) = (sender.instance, sender.dashboard);
        if alert.event != AlertEvent::Recovered {
            if let Some((test, error)) = crate::sync::lock(&self.examples).get(&alert.case) {
                (alert.example_test, alert.example_error) = (Some(test.clone()), error.clone());
            }
        }
        let queue = crate::sync::lock(&self.queue);
        let Some(queue) = queue.as_ref() else { return };
        if let Err(error) = queue.try_send(alert) {
            let alert = match error {
                mpsc::error::TrySendError::Full(alert) => alert,
                mpsc::error::TrySendError::Closed(alert) => {
                    // Decided while the instance stops, after the sender took its last alerts.
                    self.log.gave_up();
                    self.log.not_delivered_at_stop(&alert.case, alert.event, "every webhook");
                    return;
                }
            };
            let dropped = self.log.dropped();
            tracing::warn!(
                case = %alert.case,
                event = %alert.event,
                dropped,
                "alert dropped: {QUEUE_CAPACITY} alerts are waiting for the webhooks already"
            );
        }
    }

    /// The latest deliveries, newest first.
    pub(crate) fn deliveries(&self) -> Vec<AlertDelivery> {
        self.log.list()
    }

    pub(crate) fn counts(&self) -> AlertCounts {
        self.log.counts()
    }

    /// The alerts a stopping instance did not deliver, as `case event → url`, forgotten as they are taken.
    pub(crate) fn not_delivered_at_stop(&self) -> Vec<String> {
        self.log.take_not_delivered_at_stop()
    }

    /// Starts the sender when webhooks are configured: returns a future that ends once it stopped — after
    /// `shutdown`, once the alerts still queued or being retried are delivered, or given up at `give_up`. An
    /// invalid webhook URL is an error.
    #[cfg(feature = "http")]
    pub(crate) fn start(
        &self,
        shutdown: tokio_util::sync::CancellationToken,
        give_up: tokio_util::sync::CancellationToken,
        dashboard: Option<String>,
    ) -> crate::Result<Option<impl std::future::Future<Output = ()> + Send + 'static>> {
        let Some(webhooks) = &self.webhooks else { return Ok(None) };
        {
            let mut sender = crate::sync::lock(&self.sender);
            if sender.dashboard.is_none() {
                sender.dashboard = dashboard;
            }
        }
        let (queue, alerts) = mpsc::channel(QUEUE_CAPACITY);
        let stopped = webhooks.start(self.log.clone(), alerts, shutdown, give_up)?;
        *crate::sync::lock(&self.queue) = Some(queue);
        Ok(Some(async move {
            let _ = stopped.await;
        }))
    }
}

/// Alerts are decided from the health changes: a reported suite failure (`suite_failed`, `stalled`,
/// `service_down`) and a recovery.
impl crate::observe::Observer for Alerts {
    fn execution_finished(&self, finished: &crate::observe::ExecutionFinished<'_>) {
        use crate::wire::State;
        if matches!(finished.report.state, State::Fail | State::Error | State::Timeout) && !finished.by_hand {
            let example = (finished.test_id.to_owned(), finished.report.error.clone());
            crate::sync::lock(&self.examples).insert(finished.case.to_owned(), example);
        }
    }

    fn health_changed(&self, change: &crate::observe::HealthEvent<'_>) {
        use crate::observe::HealthEvent;
        match change {
            HealthEvent::SuiteFailed { failure, reported: true } => self.send(Alert::suite_failed(failure)),
            HealthEvent::SuiteFailed { reported: false, .. } => {}
            HealthEvent::Recovered { case, from, at } => self.send(Alert::recovered(case, *from, *at)),
        }
    }
}

#[cfg(all(test, feature = "http"))]
mod tests {
    use super::*;
    use crate::case::SuiteFailureKind;

    #[test]
    fn alerts_beyond_the_queue_are_dropped_and_counted_never_waited_for() {
        let alerts = Alerts::new(None, AlertSender::default());
        let alert = || Alert::recovered("c", SuiteFailureKind::Stall, chrono::Utc::now());
        alerts.send(alert());
        assert_eq!(alerts.counts().dropped, 0, "no instance running, no webhooks: nowhere to go, not a drop");
        let (queue, mut waiting) = mpsc::channel(2);
        *crate::sync::lock(&alerts.queue) = Some(queue);
        for _ in 0..5 {
            alerts.send(alert());
        }
        assert_eq!(alerts.counts().dropped, 3);
        assert!(waiting.try_recv().is_ok() && waiting.try_recv().is_ok() && waiting.try_recv().is_err());
    }
}
