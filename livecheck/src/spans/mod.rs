//! Spans as signals: a service instrumented with OpenTelemetry, and no LiveCheck code, takes part in a test by the
//! spans it exports.
//!
//! The instance's web server receives OTLP/HTTP (`POST /v1/traces`, protobuf or JSON, gzip or not). A span belongs
//! to a test when it carries the test's context as attributes — the `livecheck.test.*` baggage members, which
//! OpenTelemetry's baggage span processors copy onto every span of the request. A case says which span is which of
//! its signals with a [`SpanSelector`] ([`crate::CaseSettings::span_signal`]); a span it selects becomes that
//! signal, its value a [`Span`] — name, service, attributes, status, start, end, duration — so the case asserts on
//! it like on any signal. Spans of non-test traffic are dropped (counted, never decoded further).

#[cfg(feature = "web")]
pub(crate) mod otlp;
mod selector;
// Without `web`, nothing receives spans: the values and selectors are there for the cases' settings.
#[cfg_attr(not(feature = "web"), allow(dead_code))]
mod span;

pub use selector::SpanSelector;
pub use span::{Span, SpanStatus};
