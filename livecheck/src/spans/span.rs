//! A span as a signal's value.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A span a service exported, as the value of the signal it stands for. Declare the signal as `Signal<Span>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Span {
    /// The span's name (`process order`, `POST /orders`).
    pub name: String,
    /// The `service.name` of the resource that exported it, when it had one.
    pub service: Option<String>,
    /// The trace id, 32 lowercase hex digits.
    pub trace_id: String,
    /// The span id, 16 lowercase hex digits.
    pub span_id: String,
    /// The parent span's id, when it has one.
    pub parent_span_id: Option<String>,
    /// The span's own attributes (not the resource's), as JSON values: strings, booleans, numbers, arrays, maps.
    pub attributes: Map<String, Value>,
    /// Its status.
    pub status: SpanStatus,
    /// When it started.
    pub start: DateTime<Utc>,
    /// When it ended.
    pub end: DateTime<Utc>,
    /// `end - start`, in seconds (0 when the end is before the start).
    pub duration_seconds: f64,
}

/// A span's status: `code` is `UNSET`, `OK` or `ERROR`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SpanStatus {
    /// `UNSET`, `OK` or `ERROR`.
    pub code: String,
    /// The description the service set, if any.
    pub message: Option<String>,
}

impl SpanStatus {
    /// The status of OTLP's numeric code (0 unset, 1 ok, 2 error).
    pub(crate) fn of_code(code: i32, message: String) -> Self {
        let code = match code {
            1 => "OK",
            2 => "ERROR",
            _ => "UNSET",
        };
        SpanStatus { code: code.to_owned(), message: (!message.is_empty()).then_some(message) }
    }

    /// Whether the service marked the span as failed.
    pub fn is_error(&self) -> bool {
        self.code == "ERROR"
    }
}

impl Span {
    /// The attribute `key` as text, when it is a string.
    pub fn attribute_str(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).and_then(Value::as_str)
    }
}

/// The time of `nanos` since the Unix epoch (saturating at the ends of what chrono represents).
pub(crate) fn time_of_unix_nanos(nanos: u64) -> DateTime<Utc> {
    let nanos = i64::try_from(nanos).unwrap_or(i64::MAX);
    DateTime::from_timestamp_nanos(nanos)
}
