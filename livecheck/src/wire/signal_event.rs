use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A signal sent by a service at one stage of a test, as published on the bus.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[allow(clippy::manual_non_exhaustive)] // the private field writes the `__faust` marker
pub struct SignalEvent {
    /// Name of the signal (e.g. `order_sent_to_db`).
    pub signal_name: String,
    /// Name of the case the signal belongs to.
    pub case_name: String,
    /// The test id.
    pub key: String,
    /// The signal's value, kept as raw JSON until the waiting test decodes it into the signal's type.
    #[serde(default = "null")]
    pub value: Box<RawValue>,
    /// The version of the service that handled this stage (a field of ours, which Faust readers ignore).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_version: Option<String>,
    #[serde(rename = "__faust", skip_deserializing, serialize_with = "ns")]
    faust: (),
}

fn ns<S: serde::Serializer>(_: &(), s: S) -> Result<S::Ok, S::Error> {
    super::faust_ns("faust.livecheck.models.SignalEvent", s)
}

fn null() -> Box<RawValue> {
    RawValue::from_string("null".to_owned()).expect("`null` is valid JSON")
}

impl SignalEvent {
    /// A signal event carrying `value`.
    pub fn new(
        signal_name: impl Into<String>,
        case_name: impl Into<String>,
        key: impl Into<String>,
        value: Box<RawValue>,
    ) -> Self {
        SignalEvent {
            signal_name: signal_name.into(),
            case_name: case_name.into(),
            key: key.into(),
            value,
            service_version: None,
            faust: (),
        }
    }
}
