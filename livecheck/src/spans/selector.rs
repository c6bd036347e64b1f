//! Which span is which signal.

use serde_json::Value;

use super::Span;

/// Picks a case's spans by name, service and attributes; every criterion set must hold.
///
/// ```
/// use livecheck::spans::SpanSelector;
/// let executed = SpanSelector::named("execute order").service("execution").attribute("order.status", "executed");
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpanSelector {
    name: Option<String>,
    service: Option<String>,
    attributes: Vec<(String, Value)>,
}

impl SpanSelector {
    /// Spans named `name`.
    pub fn named(name: impl Into<String>) -> Self {
        SpanSelector { name: Some(name.into()), ..Default::default() }
    }

    /// Spans of any name (narrow it with [`SpanSelector::service`] or [`SpanSelector::attribute`]).
    pub fn any() -> Self {
        SpanSelector::default()
    }

    /// Only spans exported by the service whose `service.name` is `service`.
    #[must_use]
    pub fn service(mut self, service: impl Into<String>) -> Self {
        self.service = Some(service.into());
        self
    }

    /// Only spans whose attribute `key` equals `value` (a string, number or boolean).
    #[must_use]
    pub fn attribute(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.attributes.push((key.into(), value.into()));
        self
    }

    /// Whether `span` is one it selects.
    pub fn matches(&self, span: &Span) -> bool {
        self.name.as_ref().is_none_or(|name| *name == span.name)
            && self.service.as_ref().is_none_or(|service| span.service.as_ref() == Some(service))
            && self.attributes.iter().all(|(key, value)| span.attributes.get(key) == Some(value))
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::spans::SpanStatus;

    fn span(name: &str, service: Option<&str>, attributes: &[(&str, Value)]) -> Span {
        Span {
            name: name.to_owned(),
            service: service.map(str::to_owned),
            trace_id: "0".repeat(32),
            span_id: "0".repeat(16),
            parent_span_id: None,
            attributes: attributes.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect(),
            status: SpanStatus::default(),
            start: Utc::now(),
            end: Utc::now(),
            duration_seconds: 0.0,
        }
    }

    #[test]
    fn every_criterion_set_must_hold() {
        let selector = SpanSelector::named("execute").service("execution").attribute("side", "sell");
        assert!(selector.matches(&span("execute", Some("execution"), &[("side", "sell".into())])));
        assert!(!selector.matches(&span("execute", Some("execution"), &[("side", "buy".into())])));
        assert!(!selector.matches(&span("execute", Some("orders"), &[("side", "sell".into())])));
        assert!(!selector.matches(&span("execute", None, &[("side", "sell".into())])));
        assert!(!selector.matches(&span("place", Some("execution"), &[("side", "sell".into())])));
        assert!(SpanSelector::any().service("execution").matches(&span("x", Some("execution"), &[])));
        assert!(SpanSelector::any().attribute("n", 3).matches(&span("x", None, &[("n", 3.into())])));
        assert!(!SpanSelector::any().attribute("n", 3).matches(&span("x", None, &[("n", "3".into())])));
    }
}
