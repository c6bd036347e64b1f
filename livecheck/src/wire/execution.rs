use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Result;

/// One test execution, as published on the pending-tests stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[allow(clippy::manual_non_exhaustive)] // the private field writes the `__faust` marker
pub struct TestExecution {
    /// Test id (a UUID unless the service chose one, e.g. an order id).
    pub id: String,
    /// Name of the case that runs it.
    pub case_name: String,
    /// When the service issued the test.
    #[serde(with = "super::timestamp")]
    pub timestamp: DateTime<Utc>,
    /// Positional arguments.
    #[serde(default)]
    pub test_args: Vec<Value>,
    /// Named arguments.
    #[serde(default)]
    pub test_kwargs: Map<String, Value>,
    /// After this time the execution is skipped.
    #[serde(with = "super::timestamp")]
    pub expires: DateTime<Utc>,
    /// The trace id of the request the test was sampled from, if it was triggered inside a trace (a field of
    /// ours: the Python implementation keeps it as an extra field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// Started by hand (`livecheck trigger`, [`crate::LiveCheck::trigger_by_name`]) rather than sampled from
    /// traffic: kept out of the case's health and alerts unless the instance counts them (a field of ours, written
    /// only when true).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub by_hand: bool,
    /// The version of the service that sampled the test (a field of ours, which Faust readers ignore).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_version: Option<String>,
    #[serde(rename = "__faust", skip_deserializing, serialize_with = "ns")]
    faust: (),
}

fn ns<S: serde::Serializer>(_: &(), s: S) -> Result<S::Ok, S::Error> {
    super::faust_ns("faust.livecheck.models.TestExecution", s)
}

impl TestExecution {
    /// An execution whose arguments are `args` encoded as the Python side expects: a struct or map becomes
    /// `test_kwargs`, a sequence becomes `test_args`, `()` leaves both empty and any other value is one positional
    /// argument.
    pub fn new<A: Serialize + ?Sized>(
        id: impl Into<String>,
        case_name: impl Into<String>,
        timestamp: DateTime<Utc>,
        expires: DateTime<Utc>,
        args: &A,
    ) -> Result<Self> {
        let (test_args, test_kwargs) = match serde_json::to_value(args)? {
            Value::Object(kwargs) => (Vec::new(), kwargs),
            Value::Array(args) => (args, Map::new()),
            Value::Null => (Vec::new(), Map::new()),
            other => (vec![other], Map::new()),
        };
        Ok(TestExecution {
            id: id.into(),
            case_name: case_name.into(),
            timestamp,
            test_args,
            test_kwargs,
            expires,
            trace_id: None,
            by_hand: false,
            service_version: None,
            faust: (),
        })
    }

    /// Decodes the arguments into the case's argument type: named arguments when there are no positional ones,
    /// positional ones when there are no named ones (a single positional argument is also tried on its own).
    pub fn args<A: DeserializeOwned>(&self) -> Result<A> {
        let args = serde_json::value::to_raw_value(&self.test_args)?;
        let kwargs = serde_json::value::to_raw_value(&self.test_kwargs)?;
        super::RawArgs::new(Some(args), Some(kwargs)).decode()
    }

    /// An execution from its decoded parts.
    pub(crate) fn from_parts(
        id: String,
        case_name: String,
        timestamp: DateTime<Utc>,
        expires: DateTime<Utc>,
        test_args: Vec<Value>,
        test_kwargs: Map<String, Value>,
    ) -> Self {
        TestExecution {
            id,
            case_name,
            timestamp,
            test_args,
            test_kwargs,
            expires,
            trace_id: None,
            by_hand: false,
            service_version: None,
            faust: (),
        }
    }

    /// Whether the execution is expired at `now`. Computed each time, never cached.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires <= now
    }
}
