//! A PagerDuty Events API v2 event: `trigger` for a suite failure, `resolve` for a recovery, deduplicated per case
//! and kind so that a recovery resolves the incident its failure opened.

use serde_json::{json, Value};

use super::{super::Alert, severity, summary};
use crate::wire::timestamp;

/// The event for `alert`, sent with `routing_key`.
pub(super) fn event(alert: &Alert, routing_key: &str) -> Value {
    let dedup_key = format!("livecheck/{}/{}", alert.case, alert.kind);
    if alert.event == super::super::AlertEvent::Recovered {
        return json!({"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key});
    }
    let mut event = json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {
            "summary": summary(alert).chars().take(1024).collect::<String>(),
            "source": alert.instance.as_deref().unwrap_or("livecheck"),
            "severity": severity(alert.kind),
            "timestamp": timestamp::to_json_text(&alert.at),
            "component": alert.case,
            "group": "livecheck",
            "class": alert.kind.as_str(),
            "custom_details": {
                "event": alert.event.as_str(),
                "state": alert.state.as_str(),
                "reason": alert.reason,
                "example_test": alert.example_test,
                "example_error": alert.example_error,
            },
        },
        "client": "LiveCheck",
    });
    if let Some(dashboard) = &alert.dashboard {
        event["client_url"] = json!(dashboard);
        event["links"] = json!([{"href": dashboard, "text": "LiveCheck dashboard"}]);
    }
    event
}
