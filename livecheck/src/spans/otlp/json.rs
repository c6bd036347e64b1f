//! OTLP's JSON encoding of a trace export (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding):
//! lowerCamelCase names, trace and span ids in hex, 64-bit integers as decimal strings or numbers, enums as
//! integers. Read into the protobuf messages, so both encodings take one path.

use std::{cell::Cell, marker::PhantomData};

use serde::{
    de::{self, SeqAccess, Visitor},
    Deserialize, Deserializer,
};

use super::proto;

thread_local! {
    /// Spans and attributes the body being decoded on this thread may still hold (see [`decode_bounded`]).
    static ITEMS_LEFT: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Why a JSON body did not decode.
pub(super) enum Bounded {
    /// It holds more than the spans and attributes allowed.
    TooMany,
    Json(serde_json::Error),
}

/// Decodes `body`, refusing it past `max_items` spans and span attributes (so that a small body cannot decode to a
/// huge one: `{}` is a span).
pub(super) fn decode_bounded(body: &[u8], max_items: usize) -> Result<Request, Bounded> {
    ITEMS_LEFT.with(|left| left.set(max_items));
    let decoded = serde_json::from_slice::<Request>(body);
    let exceeded = ITEMS_LEFT.with(|left| left.replace(usize::MAX)) == 0;
    match decoded {
        Ok(request) => Ok(request),
        Err(_) if exceeded => Err(Bounded::TooMany),
        Err(error) => Err(Bounded::Json(error)),
    }
}

/// A sequence of counted items (spans, attributes): an error once the body's budget is spent.
fn counted<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Vec<T>, D::Error> {
    struct Counted<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for Counted<T> {
        type Value = Vec<T>;

        fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            formatter.write_str("a list")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element()? {
                let spent = ITEMS_LEFT.with(|left| {
                    let now = left.get();
                    left.set(now.saturating_sub(1));
                    now == 0
                });
                if spent {
                    return Err(de::Error::custom("too many spans and attributes"));
                }
                items.push(item);
            }
            Ok(items)
        }
    }
    deserializer.deserialize_seq(Counted(PhantomData))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Request {
    #[serde(default)]
    resource_spans: Vec<ResourceSpans>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceSpans {
    #[serde(default)]
    resource: Option<Resource>,
    #[serde(default)]
    scope_spans: Vec<ScopeSpans>,
}

#[derive(Deserialize)]
struct Resource {
    #[serde(default)]
    attributes: Vec<KeyValue>,
}

#[derive(Deserialize)]
struct ScopeSpans {
    #[serde(default, deserialize_with = "counted")]
    spans: Vec<Span>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Span {
    #[serde(default, deserialize_with = "hex")]
    trace_id: Vec<u8>,
    #[serde(default, deserialize_with = "hex")]
    span_id: Vec<u8>,
    #[serde(default, deserialize_with = "hex")]
    parent_span_id: Vec<u8>,
    #[serde(default)]
    name: String,
    #[serde(default, deserialize_with = "integer")]
    start_time_unix_nano: u64,
    #[serde(default, deserialize_with = "integer")]
    end_time_unix_nano: u64,
    #[serde(default, deserialize_with = "counted")]
    attributes: Vec<KeyValue>,
    #[serde(default)]
    status: Option<Status>,
}

#[derive(Deserialize)]
struct Status {
    #[serde(default)]
    message: String,
    #[serde(default)]
    code: i32,
}

#[derive(Deserialize)]
struct KeyValue {
    key: String,
    #[serde(default)]
    value: Option<AnyValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnyValue {
    string_value: Option<String>,
    bool_value: Option<bool>,
    #[serde(default, deserialize_with = "some_integer")]
    int_value: Option<i64>,
    double_value: Option<f64>,
    array_value: Option<ArrayValue>,
    kvlist_value: Option<KeyValueList>,
    #[serde(default, deserialize_with = "some_base64")]
    bytes_value: Option<Vec<u8>>,
}

#[derive(Deserialize)]
struct ArrayValue {
    #[serde(default)]
    values: Vec<AnyValue>,
}

#[derive(Deserialize)]
struct KeyValueList {
    #[serde(default)]
    values: Vec<KeyValue>,
}

/// A hex id (empty: none).
fn hex<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    let text = String::deserialize(deserializer)?;
    crate::hex::decode(text.as_bytes()).ok_or_else(|| de::Error::custom(format!("`{text}` is not a hex id")))
}

/// A 64-bit integer written as a number or as a decimal string.
#[derive(Deserialize)]
#[serde(untagged)]
enum Integer {
    Unsigned(u64),
    Signed(i64),
    Text(String),
}

impl Integer {
    fn value<T: TryFrom<i128>, E: de::Error>(self) -> Result<T, E> {
        let wide: i128 = match self {
            Integer::Unsigned(n) => n.into(),
            Integer::Signed(n) => n.into(),
            Integer::Text(text) => text.trim().parse().map_err(|_| E::custom(format!("`{text}` is not an integer")))?,
        };
        T::try_from(wide).map_err(|_| E::custom(format!("{wide} is out of range")))
    }
}

fn integer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    Integer::deserialize(deserializer)?.value()
}

fn some_integer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    Integer::deserialize(deserializer)?.value().map(Some)
}

/// Bytes values are base64 in OTLP JSON; kept as their text's bytes when they do not decode (they are only shown).
fn some_base64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<u8>>, D::Error> {
    Ok(Some(String::deserialize(deserializer)?.into_bytes()))
}

impl From<Request> for proto::ExportTraceServiceRequest {
    fn from(request: Request) -> Self {
        proto::ExportTraceServiceRequest {
            resource_spans: request.resource_spans.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<ResourceSpans> for proto::ResourceSpans {
    fn from(r: ResourceSpans) -> Self {
        proto::ResourceSpans {
            resource: r.resource.map(|r| proto::Resource { attributes: convert(r.attributes) }),
            scope_spans: r
                .scope_spans
                .into_iter()
                .map(|s| proto::ScopeSpans { spans: s.spans.into_iter().map(Into::into).collect() })
                .collect(),
        }
    }
}

impl From<Span> for proto::Span {
    fn from(s: Span) -> Self {
        proto::Span {
            trace_id: s.trace_id,
            span_id: s.span_id,
            parent_span_id: s.parent_span_id,
            name: s.name,
            start_time_unix_nano: s.start_time_unix_nano,
            end_time_unix_nano: s.end_time_unix_nano,
            attributes: convert(s.attributes),
            status: s.status.map(|s| proto::Status { message: s.message, code: s.code }),
        }
    }
}

fn convert(attributes: Vec<KeyValue>) -> Vec<proto::KeyValue> {
    attributes.into_iter().map(|kv| proto::KeyValue { key: kv.key, value: kv.value.map(Into::into) }).collect()
}

impl From<AnyValue> for proto::AnyValue {
    fn from(v: AnyValue) -> Self {
        use proto::any_value::Value;
        let value = if let Some(s) = v.string_value {
            Some(Value::StringValue(s))
        } else if let Some(b) = v.bool_value {
            Some(Value::BoolValue(b))
        } else if let Some(i) = v.int_value {
            Some(Value::IntValue(i))
        } else if let Some(d) = v.double_value {
            Some(Value::DoubleValue(d))
        } else if let Some(a) = v.array_value {
            Some(Value::ArrayValue(proto::ArrayValue { values: a.values.into_iter().map(Into::into).collect() }))
        } else if let Some(kv) = v.kvlist_value {
            Some(Value::KvlistValue(proto::KeyValueList { values: convert(kv.values) }))
        } else {
            v.bytes_value.map(Value::BytesValue)
        };
        proto::AnyValue { value }
    }
}
