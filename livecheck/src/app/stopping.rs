//! A stopping instance: its two signals, and the record of what it could not publish before it gave up.
//!
//! [`crate::Running::shutdown`] cancels `shutdown` — consuming ends, test bodies are interrupted — and, once
//! `shutdown_timeout` has passed, `give_up`: reports, suite reports and alerts still being published or retried are
//! abandoned then. What was abandoned is recorded here as it happens and logged at the end, one line per kind.

use std::sync::Mutex;

use tokio_util::sync::CancellationToken;

use crate::{case::SuiteFailureKind, sync::lock};

/// How many ids or names a line of the summary lists; the rest are counted.
const LISTED: usize = 20;

/// The signals of a stopping instance and what it could not publish.
#[derive(Default)]
pub(crate) struct Stopping {
    /// Cancelled when the instance stops: consuming ends, test bodies are interrupted.
    pub(crate) shutdown: CancellationToken,
    /// Cancelled `shutdown_timeout` after `shutdown`: publishes still under way are abandoned.
    pub(crate) give_up: CancellationToken,
    lost: Mutex<Lost>,
}

#[derive(Default)]
struct Lost {
    /// Test ids whose report could not be published (their executions were not committed).
    reports: Vec<String>,
    /// Suite reports that could not be published, as `case (kind)`.
    suite_reports: Vec<String>,
}

impl Stopping {
    /// Whether the instance is stopping (or stopped).
    pub(crate) fn is_stopping(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// The report of test `test_id` could not be published while stopping.
    pub(crate) fn report_lost(&self, test_id: &str) {
        lock(&self.lost).reports.push(test_id.to_owned());
    }

    /// A suite report of `case` could not be published while stopping.
    pub(crate) fn suite_report_lost(&self, case: &str, kind: SuiteFailureKind) {
        lock(&self.lost).suite_reports.push(format!("{case} ({kind})"));
    }

    /// Logs what could not be published, one line per kind (nothing when nothing was lost): the reports recorded
    /// here, and `alerts`, the alerts not delivered (as `case event → url`).
    pub(crate) fn log_losses(&self, alerts: &[String]) {
        let lost = std::mem::take(&mut *lock(&self.lost));
        if !lost.reports.is_empty() {
            let (count, test_ids) = (lost.reports.len(), listed(&lost.reports));
            tracing::warn!(
                lost = "reports",
                count,
                test_ids = %test_ids,
                "shutdown: {count} {} could not be published (test ids {test_ids}; they run again after a restart \
                 since their offsets were not committed)",
                plural(count, "report", "reports")
            );
        }
        if !lost.suite_reports.is_empty() {
            let (count, cases) = (lost.suite_reports.len(), listed(&lost.suite_reports));
            tracing::error!(
                lost = "suite_reports",
                count,
                cases = %cases,
                "shutdown: {count} suite {} lost ({cases})",
                plural(count, "report", "reports")
            );
        }
        if !alerts.is_empty() {
            let (count, listed) = (alerts.len(), listed(alerts));
            tracing::error!(
                lost = "alerts",
                count,
                alerts = %listed,
                "shutdown: {count} {} not delivered ({listed})",
                plural(count, "alert", "alerts")
            );
        }
    }
}

/// `items` separated by commas, the first [`LISTED`] of them and how many more.
fn listed(items: &[String]) -> String {
    let mut text = items.iter().take(LISTED).map(String::as_str).collect::<Vec<_>>().join(", ");
    if items.len() > LISTED {
        text.push_str(&format!(" and {} more", items.len() - LISTED));
    }
    text
}

fn plural<'a>(count: usize, one: &'a str, more: &'a str) -> &'a str {
    if count == 1 {
        one
    } else {
        more
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lists_are_cut_and_counted() {
        let ids: Vec<String> = (0..25).map(|i| format!("t{i}")).collect();
        let text = listed(&ids);
        assert!(text.starts_with("t0, t1, ") && text.ends_with("t19 and 5 more"), "{text}");
        assert_eq!(listed(&ids[..2]), "t0, t1");
    }
}
