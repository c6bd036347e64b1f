//! Alertmanager's `POST /api/v2/alerts`: a list of one alert, its labels naming the case, kind and severity; a
//! recovery posts the same labels with `endsAt`, which resolves it.

use serde_json::{json, Value};

use super::{super::Alert, severity, summary};
use crate::{case::SuiteFailureKind, wire::timestamp};

/// The alert's name for each kind of suite failure (the same for its recovery, so that it resolves it).
fn alertname(kind: SuiteFailureKind) -> &'static str {
    match kind {
        SuiteFailureKind::Stall => "LiveCheckCaseStalled",
        SuiteFailureKind::ServiceDown => "LiveCheckServiceDown",
        SuiteFailureKind::ClockSkew => "LiveCheckClockSkew",
        SuiteFailureKind::DegradedRate => "LiveCheckCaseDegraded",
        SuiteFailureKind::ConsecutiveFailures | SuiteFailureKind::FailureRate | SuiteFailureKind::PassRate => {
            "LiveCheckCaseFailing"
        }
    }
}

/// The body for `alert`: firing from its time (no end: Alertmanager resolves it after its `resolve_timeout` unless
/// the failure is reported again), or, for a recovery, ended at its time.
pub(super) fn alerts(alert: &Alert) -> Value {
    let at = timestamp::to_json_text(&alert.at);
    let mut labels = json!({
        "alertname": alertname(alert.kind),
        "case": alert.case,
        "kind": alert.kind.as_str(),
        "severity": severity(alert.kind),
        "source": "livecheck",
    });
    if let Some(instance) = &alert.instance {
        labels["instance"] = json!(instance);
    }
    let mut annotations = json!({"summary": summary(alert), "reason": alert.reason});
    if let Some(dashboard) = &alert.dashboard {
        annotations["dashboard"] = json!(dashboard);
    }
    if let Some(test) = &alert.example_test {
        annotations["example_test"] = json!(test);
    }
    if let Some(error) = &alert.example_error {
        annotations["example_error"] = json!(error);
    }
    let mut one = json!({"labels": labels, "annotations": annotations});
    if alert.event == super::super::AlertEvent::Recovered {
        one["endsAt"] = json!(at);
    } else {
        one["startsAt"] = json!(at);
    }
    if let Some(dashboard) = &alert.dashboard {
        one["generatorURL"] = json!(dashboard);
    }
    json!([one])
}
