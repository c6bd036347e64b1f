//! Reading an OTLP/HTTP trace export: its body (protobuf or JSON, gzip or not, within size limits), and the spans in
//! it that carry a test's context.

mod items;
mod json;
pub(crate) mod proto;

use std::io::Read;

use prost::Message as _;

use crate::context::{BAGGAGE_EXPIRES, BAGGAGE_SIGNATURE, BAGGAGE_TEST_ID, BAGGAGE_TEST_NAME, BAGGAGE_TIMESTAMP};
use serde_json::{Map, Value};

use super::{span::time_of_unix_nanos, Span, SpanStatus};

/// The most bytes a request body may have as received (compressed or not).
pub(crate) const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// The most bytes a gzip body may inflate to.
pub(crate) const MAX_INFLATED_BYTES: usize = 4 * 1024 * 1024;
/// The most spans and attributes (together) one export may hold: what bounds the memory a small body decodes to
/// (an empty span is 2 bytes of protobuf, and some 170 bytes decoded). 100 000 take about 17 MiB; an SDK's batch
/// (512 spans of a few dozen attributes) is far below.
pub(crate) const MAX_ITEMS: usize = 100_000;

/// The span attributes that carry a test's context: the `livecheck.test.*` baggage members, copied onto spans by
/// OpenTelemetry's baggage span processors. In the order of the test headers: id, case name, timestamp, expiry,
/// then the signature.
pub(crate) const CONTEXT_ATTRIBUTES: [&str; 5] =
    [BAGGAGE_TEST_ID, BAGGAGE_TEST_NAME, BAGGAGE_TIMESTAMP, BAGGAGE_EXPIRES, BAGGAGE_SIGNATURE];

/// Why a body was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    /// Not `application/x-protobuf` or `application/json`.
    #[error("content type `{0}` is not application/x-protobuf or application/json")]
    ContentType(String),
    /// A `Content-Encoding` other than gzip or identity.
    #[error("content encoding `{0}` is not gzip")]
    ContentEncoding(String),
    /// Inflates past [`MAX_INFLATED_BYTES`].
    #[error("the body inflates to more than {MAX_INFLATED_BYTES} bytes")]
    TooLarge,
    /// Not gzip after all.
    #[error("the body is not gzip")]
    Gzip(#[source] std::io::Error),
    /// Not the protobuf message.
    #[error("the body is not an OTLP trace export (protobuf)")]
    Protobuf(#[source] prost::DecodeError),
    /// Not the JSON message.
    #[error("the body is not an OTLP trace export (JSON)")]
    Json(#[source] serde_json::Error),
    /// More than [`MAX_ITEMS`] spans and attributes.
    #[error("the export holds more than {MAX_ITEMS} spans and attributes")]
    TooManyItems,
}

/// How a body is encoded, from its `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// The encoding a `Content-Type` names (parameters such as `charset` ignored).
    pub(crate) fn of_content_type(content_type: &str) -> Result<Self, BodyError> {
        let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
            "application/json" => Ok(Encoding::Json),
            _ => Err(BodyError::ContentType(content_type.chars().take(100).collect())),
        }
    }
}

/// Decodes a body of `encoding`, inflating it first when `content_encoding` is gzip.
pub(crate) fn decode(
    body: &[u8],
    encoding: Encoding,
    content_encoding: Option<&str>,
) -> Result<proto::ExportTraceServiceRequest, BodyError> {
    let inflated;
    let body = match content_encoding.map(|e| e.trim().to_ascii_lowercase()) {
        None => body,
        Some(e) if e.is_empty() || e == "identity" => body,
        Some(e) if e == "gzip" => {
            inflated = inflate(body)?;
            &inflated[..]
        }
        Some(other) => return Err(BodyError::ContentEncoding(other.chars().take(100).collect())),
    };
    match encoding {
        Encoding::Protobuf => {
            // Malformed bodies are left to the decoder, which says why.
            if items::protobuf_items(body).is_some_and(|items| items > MAX_ITEMS) {
                return Err(BodyError::TooManyItems);
            }
            proto::ExportTraceServiceRequest::decode(body).map_err(BodyError::Protobuf)
        }
        Encoding::Json => json::decode_bounded(body, MAX_ITEMS).map(Into::into).map_err(|error| match error {
            json::Bounded::TooMany => BodyError::TooManyItems,
            json::Bounded::Json(error) => BodyError::Json(error),
        }),
    }
}

fn inflate(body: &[u8]) -> Result<Vec<u8>, BodyError> {
    let mut inflated = Vec::new();
    let limit = MAX_INFLATED_BYTES as u64 + 1;
    flate2::read::GzDecoder::new(body).take(limit).read_to_end(&mut inflated).map_err(BodyError::Gzip)?;
    if inflated.len() > MAX_INFLATED_BYTES {
        return Err(BodyError::TooLarge);
    }
    Ok(inflated)
}

/// A span that carries a test's context.
pub(crate) struct TestSpan {
    /// The context's attributes, in the order of [`CONTEXT_ATTRIBUTES`] (text, when present as strings).
    pub(crate) context: [Option<String>; 5],
    pub(crate) span: Span,
}

/// The spans of an export: how many there were, and those of tests, made into [`Span`]s (the others are only
/// counted). A span is a test's when it carries the test's context as attributes, or when `test_of_trace` knows
/// its trace id's bytes as a test's and returns that test's context (in the order of
/// [`CONTEXT_ATTRIBUTES`]).
pub(crate) fn test_spans(
    request: proto::ExportTraceServiceRequest,
    test_of_trace: impl Fn(&[u8]) -> Option<[Option<String>; 5]>,
) -> (usize, Vec<TestSpan>) {
    let mut total = 0;
    let mut found = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans.resource.map(|r| r.attributes).unwrap_or_default();
        let mut service = None;
        for scope in resource_spans.scope_spans {
            total += scope.spans.len();
            for span in scope.spans {
                let has_test = span.attributes.iter().any(|kv| kv.key == CONTEXT_ATTRIBUTES[0]);
                let of_trace = if has_test { None } else { test_of_trace(&span.trace_id) };
                if !has_test && of_trace.is_none() {
                    continue;
                }
                let service = service.get_or_insert_with(|| string_attribute(&resource, "service.name"));
                let mut found_span = test_span(span, service.clone());
                if let Some(context) = of_trace {
                    found_span.context = context;
                }
                found.push(found_span);
            }
        }
    }
    (total, found)
}

fn test_span(span: proto::Span, service: Option<String>) -> TestSpan {
    let context = CONTEXT_ATTRIBUTES.map(|key| string_attribute(&span.attributes, key));
    let status = span.status.map(|s| SpanStatus::of_code(s.code, s.message)).unwrap_or_default();
    let (start, end) = (span.start_time_unix_nano, span.end_time_unix_nano);
    let attributes: Map<String, Value> = span
        .attributes
        .into_iter()
        .filter(|kv| !CONTEXT_ATTRIBUTES.contains(&kv.key.as_str()))
        .map(|kv| (kv.key, kv.value.map_or(Value::Null, json_of)))
        .collect();
    let span = Span {
        name: span.name,
        service,
        trace_id: crate::hex::encode(&span.trace_id),
        span_id: crate::hex::encode(&span.span_id),
        parent_span_id: (!span.parent_span_id.is_empty()).then(|| crate::hex::encode(&span.parent_span_id)),
        attributes,
        status,
        start: time_of_unix_nanos(start),
        end: time_of_unix_nanos(end),
        duration_seconds: end.saturating_sub(start) as f64 / 1e9,
    };
    TestSpan { context, span }
}

fn string_attribute(attributes: &[proto::KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| match &kv.value.as_ref()?.value {
        Some(proto::any_value::Value::StringValue(s)) => Some(s.clone()),
        _ => None,
    })
}

fn json_of(value: proto::AnyValue) -> Value {
    use proto::any_value::Value as V;
    match value.value {
        None => Value::Null,
        Some(V::StringValue(s)) => Value::String(s),
        Some(V::BoolValue(b)) => Value::Bool(b),
        Some(V::IntValue(i)) => Value::from(i),
        Some(V::DoubleValue(d)) => serde_json::Number::from_f64(d).map_or(Value::Null, Value::Number),
        Some(V::ArrayValue(a)) => Value::Array(a.values.into_iter().map(json_of).collect()),
        Some(V::KvlistValue(kv)) => {
            Value::Object(kv.values.into_iter().map(|kv| (kv.key, kv.value.map_or(Value::Null, json_of))).collect())
        }
        Some(V::BytesValue(b)) => Value::String(crate::hex::encode(&b)),
    }
}

#[cfg(test)]
mod tests;
