//! A Slack incoming webhook's message: `text` (the notification and the fallback) and `blocks`.

use serde_json::{json, Value};

use super::{super::Alert, summary};

/// The message for `alert`: a headline, the reason, and (when known) the instance, an example failing test with
/// its error, and a link to the dashboard.
pub(super) fn message(alert: &Alert) -> Value {
    let icon = if alert.event == super::super::AlertEvent::Recovered { ":white_check_mark:" } else { ":red_circle:" };
    let text = format!("{icon} {}", summary(alert));
    let mut details = vec![format!("*event* `{}`  *state* `{}`  *kind* `{}`", alert.event, alert.state, alert.kind)];
    if let Some(instance) = &alert.instance {
        details.push(format!("*instance* {instance}"));
    }
    if let Some(test) = &alert.example_test {
        let error = alert.example_error.as_deref().unwrap_or("no error");
        details.push(format!("*example* test `{test}`: {error}"));
    }
    if let Some(dashboard) = &alert.dashboard {
        details.push(format!("<{dashboard}|Dashboard>"));
    }
    json!({
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": details.join("\n")}]},
        ],
    })
}
