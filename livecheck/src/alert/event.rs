//! What an alert says: the JSON body POSTed to webhooks.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    case::{SuiteFailure, SuiteFailureKind},
    wire::{timestamp, State},
};

/// What happened to a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertEvent {
    /// A failure policy was met (`consecutive_failures`, `failure_rate` or `pass_rate`), or executions arrive with
    /// their clocks skewed (`clock_skew`).
    SuiteFailed,
    /// No test arrived for `warn_stalled_after`.
    Stalled,
    /// A fake request found the service down.
    ServiceDown,
    /// Too many executions were DEGRADED (`degraded_rate`): stages over their latency budget.
    Degraded,
    /// A passing test recovered the case from its suite failure.
    Recovered,
}

impl AlertEvent {
    /// The name in JSON: `suite_failed`, `stalled`, `service_down`, `degraded`, `recovered`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertEvent::SuiteFailed => "suite_failed",
            AlertEvent::Stalled => "stalled",
            AlertEvent::ServiceDown => "service_down",
            AlertEvent::Degraded => "degraded",
            AlertEvent::Recovered => "recovered",
        }
    }
}

impl fmt::Display for AlertEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An alert, as POSTed to each webhook:
///
/// ```json
/// {"event": "suite_failed", "case": "test_order", "state": "FAIL", "kind": "failure_rate",
///  "reason": "8 of the last 10 executions failed", "at": "2026-11-25T01:51:06.369766Z",
///  "instance": "checker-1", "dashboard": "http://127.0.0.1:9999/",
///  "example_test": "5b0f…", "example_error": "signal `order_executed` did not arrive within 30s"}
/// ```
///
/// For `recovered`, `state` is PASS and `kind` the cause of the suite failure the case recovered from. `instance`
/// (the host the instance runs on, or the name set with `alert_instance`), `dashboard` (its web server, or the URL
/// set with `alert_dashboard_url`) and the case's latest failing test with its error are null when unknown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Alert {
    /// What happened.
    pub event: AlertEvent,
    /// The case's name.
    pub case: String,
    /// The case's state: FAIL or STALL for a suite failure, PASS for a recovery.
    pub state: State,
    /// The cause of the suite failure (for `recovered`: of the one recovered from).
    pub kind: SuiteFailureKind,
    /// Why, in words.
    pub reason: String,
    /// When it was decided.
    #[serde(with = "timestamp")]
    pub at: DateTime<Utc>,
    /// The instance that decided it.
    #[serde(default)]
    pub instance: Option<String>,
    /// The dashboard showing the case.
    #[serde(default)]
    pub dashboard: Option<String>,
    /// The id of the case's latest test that did not pass (FAIL, ERROR or TIMEOUT), if this instance saw one.
    #[serde(default)]
    pub example_test: Option<String>,
    /// That test's error.
    #[serde(default)]
    pub example_error: Option<String>,
}

impl Alert {
    /// The alert for a suite failure: `stalled`, `service_down`, or `suite_failed` for a failure policy.
    pub(crate) fn suite_failed(failure: &SuiteFailure) -> Self {
        let event = match failure.kind {
            SuiteFailureKind::Stall => AlertEvent::Stalled,
            SuiteFailureKind::ServiceDown => AlertEvent::ServiceDown,
            SuiteFailureKind::DegradedRate => AlertEvent::Degraded,
            SuiteFailureKind::ConsecutiveFailures
            | SuiteFailureKind::FailureRate
            | SuiteFailureKind::PassRate
            | SuiteFailureKind::ClockSkew => AlertEvent::SuiteFailed,
        };
        Alert {
            event,
            case: failure.case_name.clone(),
            state: failure.state,
            kind: failure.kind,
            reason: failure.reason.clone(),
            at: failure.at,
            instance: None,
            dashboard: None,
            example_test: None,
            example_error: None,
        }
    }

    /// The alert for a case that recovered from a suite failure of `kind`.
    pub(crate) fn recovered(case: &str, kind: SuiteFailureKind, at: DateTime<Utc>) -> Self {
        Alert {
            event: AlertEvent::Recovered,
            case: case.to_owned(),
            state: State::Pass,
            kind,
            reason: format!("a passing test recovered the case from its suite failure ({kind})"),
            at,
            instance: None,
            dashboard: None,
            example_test: None,
            example_error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_has_the_documented_shape_and_reads_back() {
        let at = timestamp::parse("2026-11-25T01:51:06.369766Z").unwrap();
        let failure = SuiteFailure {
            case_name: "test_order".into(),
            kind: SuiteFailureKind::FailureRate,
            state: State::Fail,
            reason: "8 of the last 10 executions failed".into(),
            at,
        };
        let alert = Alert::suite_failed(&failure);
        let json = serde_json::to_string(&alert).unwrap();
        assert_eq!(
            json,
            r#"{"event":"suite_failed","case":"test_order","state":"FAIL","kind":"failure_rate","reason":"8 of the last 10 executions failed","at":"2026-11-25T01:51:06.369766Z","instance":null,"dashboard":null,"example_test":null,"example_error":null}"#
        );
        assert_eq!(serde_json::from_str::<Alert>(&json).unwrap(), alert);
        let stall = SuiteFailure { kind: SuiteFailureKind::Stall, state: State::Stall, ..failure };
        assert_eq!(Alert::suite_failed(&stall).event, AlertEvent::Stalled);
        let recovered = Alert::recovered("test_order", SuiteFailureKind::Stall, at);
        assert_eq!((recovered.event, recovered.state), (AlertEvent::Recovered, State::Pass));
    }
}
