//! How an alert is written for the webhook that receives it: LiveCheck's own JSON, a Slack incoming webhook,
//! PagerDuty's Events API v2 or Alertmanager's `/api/v2/alerts`, chosen per URL.
//!
//! | URL | format |
//! |---|---|
//! | `slack+https://…`, or host `hooks.slack.com` | Slack |
//! | `pagerduty+https://…?routing_key=KEY`, or host `events.pagerduty.com` | PagerDuty Events API v2 |
//! | `alertmanager+http://host:9093`, or a path ending in `/api/v2/alerts` | Alertmanager |
//! | any other `http://` / `https://` | LiveCheck's JSON ([`super::Alert`]) |

mod alertmanager;
mod pagerduty;
mod slack;

use super::Alert;
use crate::{case::SuiteFailureKind, Error, Result};

/// The body a webhook takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// LiveCheck's own JSON: the [`Alert`] as it is.
    Generic,
    /// A Slack incoming webhook: `{"text": …, "blocks": […]}`.
    Slack,
    /// PagerDuty Events API v2: trigger and resolve events, deduplicated per case and kind.
    PagerDuty {
        /// The integration's routing key (from the URL's `routing_key` query parameter).
        routing_key: String,
    },
    /// Alertmanager's API: a list of one alert, labelled by case, kind and severity, ended by `endsAt` on recovery.
    Alertmanager,
}

impl Format {
    /// The format for `text` and the URL to POST to (an explicit `slack+`, `pagerduty+` or `alertmanager+` prefix
    /// taken off; PagerDuty's routing key taken out of the query; Alertmanager's API path added to a bare host).
    pub(crate) fn of(position: usize, text: &str) -> Result<(Format, reqwest::Url)> {
        let text = text.trim();
        let (named, rest) = match text.split_once('+') {
            Some((name @ ("slack" | "pagerduty" | "alertmanager"), rest)) => (Some(name), rest),
            _ => (None, text),
        };
        let mut url = reqwest::Url::parse(rest)
            .map_err(|error| Error::setup(format!("alert webhook #{position}: not a URL"), error))?;
        if !matches!(url.scheme(), "http" | "https") {
            let scheme = url.scheme();
            return Err(Error::Config(format!(
                "alert webhook #{position}: `{scheme}` is not an http:// or https:// URL"
            )));
        }
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let format = match named {
            Some("slack") => Format::Slack,
            Some("pagerduty") => Format::PagerDuty { routing_key: String::new() },
            Some(_) => Format::Alertmanager,
            None if host == "hooks.slack.com" => Format::Slack,
            None if host == "events.pagerduty.com" || host == "events.eu.pagerduty.com" => {
                Format::PagerDuty { routing_key: String::new() }
            }
            None if url.path().trim_end_matches('/').ends_with("/api/v2/alerts") => Format::Alertmanager,
            None => Format::Generic,
        };
        let format = match format {
            Format::PagerDuty { .. } => {
                let routing_key = url.query_pairs().find(|(k, _)| k == "routing_key").map(|(_, v)| v.into_owned());
                let Some(routing_key) = routing_key.filter(|key| !key.is_empty()) else {
                    return Err(Error::Config(format!(
                        "alert webhook #{position}: a PagerDuty URL needs its integration's routing key, \
                         e.g. https://events.pagerduty.com/v2/enqueue?routing_key=KEY"
                    )));
                };
                let others: Vec<(String, String)> = url
                    .query_pairs()
                    .filter(|(k, _)| k != "routing_key")
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                url.set_query(None);
                if !others.is_empty() {
                    url.query_pairs_mut().extend_pairs(others);
                }
                if url.path() == "/" {
                    url.set_path("/v2/enqueue");
                }
                Format::PagerDuty { routing_key }
            }
            Format::Alertmanager => {
                if !url.path().trim_end_matches('/').ends_with("/api/v2/alerts") {
                    let path = format!("{}/api/v2/alerts", url.path().trim_end_matches('/'));
                    url.set_path(&path);
                }
                Format::Alertmanager
            }
            other => other,
        };
        Ok((format, url))
    }

    /// Its name in logs: `livecheck`, `slack`, `pagerduty`, `alertmanager`.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Format::Generic => "livecheck",
            Format::Slack => "slack",
            Format::PagerDuty { .. } => "pagerduty",
            Format::Alertmanager => "alertmanager",
        }
    }

    /// The body of `alert` in this format.
    pub(crate) fn body(&self, alert: &Alert) -> serde_json::Result<Vec<u8>> {
        match self {
            Format::Generic => serde_json::to_vec(alert),
            Format::Slack => serde_json::to_vec(&slack::message(alert)),
            Format::PagerDuty { routing_key } => serde_json::to_vec(&pagerduty::event(alert, routing_key)),
            Format::Alertmanager => serde_json::to_vec(&alertmanager::alerts(alert)),
        }
    }
}

/// How urgent a suite failure of `kind` is (PagerDuty's severities; Alertmanager's `severity` label): a service
/// down is `critical`, a failure policy met `error`, a stall or skewed clocks `warning`, too many degraded
/// executions `info`.
pub(crate) fn severity(kind: SuiteFailureKind) -> &'static str {
    match kind {
        SuiteFailureKind::ServiceDown => "critical",
        SuiteFailureKind::ConsecutiveFailures | SuiteFailureKind::FailureRate | SuiteFailureKind::PassRate => "error",
        SuiteFailureKind::Stall | SuiteFailureKind::ClockSkew => "warning",
        SuiteFailureKind::DegradedRate => "info",
    }
}

/// One line saying what happened, for a human.
pub(crate) fn summary(alert: &Alert) -> String {
    use super::AlertEvent;
    let (case, reason) = (&alert.case, &alert.reason);
    match alert.event {
        AlertEvent::Recovered => format!("LiveCheck {case} recovered: {reason}"),
        AlertEvent::Stalled => format!("LiveCheck {case} stalled: {reason}"),
        AlertEvent::ServiceDown => format!("LiveCheck {case}: {reason}"),
        AlertEvent::Degraded => format!("LiveCheck {case} degraded: {reason}"),
        AlertEvent::SuiteFailed => format!("LiveCheck {case} failing ({}): {reason}", alert.kind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_comes_from_the_prefix_or_the_host() {
        let of = |text: &str| Format::of(1, text).map(|(format, url)| (format.name(), url.to_string()));
        assert_eq!(of("https://example.com/hook").unwrap(), ("livecheck", "https://example.com/hook".into()));
        assert_eq!(of("https://hooks.slack.com/services/T/B/x").unwrap().0, "slack");
        assert_eq!(of("slack+http://127.0.0.1:1/x").unwrap(), ("slack", "http://127.0.0.1:1/x".into()));
        let (format, url) = Format::of(1, "https://events.pagerduty.com/v2/enqueue?routing_key=R1").unwrap();
        assert_eq!(
            (format, url.as_str()),
            (Format::PagerDuty { routing_key: "R1".into() }, "https://events.pagerduty.com/v2/enqueue")
        );
        let (_, url) = Format::of(1, "pagerduty+http://127.0.0.1:1/?routing_key=R&x=1").unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:1/v2/enqueue?x=1");
        let error = Format::of(3, "https://events.pagerduty.com/v2/enqueue").unwrap_err().to_string();
        assert!(error.contains("alert webhook #3") && error.contains("routing_key"), "{error}");
        assert_eq!(
            of("alertmanager+http://127.0.0.1:9093").unwrap(),
            ("alertmanager", "http://127.0.0.1:9093/api/v2/alerts".into())
        );
        assert_eq!(of("http://am:9093/api/v2/alerts").unwrap().0, "alertmanager");
        assert!(of("slack+ftp://x/").is_err());
    }
}
