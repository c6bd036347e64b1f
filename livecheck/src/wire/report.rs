use std::fmt;

use serde::{
    de::{MapAccess, Visitor},
    ser::SerializeMap,
    Deserialize, Deserializer, Serialize, Serializer,
};

use super::{State, TestExecution};

/// The result of one execution, or a suite-level report (`test` is `None`) when a case fails as a whole.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[allow(clippy::manual_non_exhaustive)] // the private field writes the `__faust` marker
pub struct TestReport {
    /// The case.
    pub case_name: String,
    /// The outcome.
    pub state: State,
    /// The execution, or `None` for a suite report.
    pub test: Option<TestExecution>,
    /// Seconds the execution ran, `None` when it did not run.
    pub runtime: Option<f64>,
    /// Seconds spent waiting for each signal, in the order they were waited for.
    #[serde(default)]
    pub signal_latency: SignalLatency,
    /// What went wrong, or why the test was skipped.
    pub error: Option<String>,
    /// Where it went wrong: location and the steps the test took.
    pub traceback: Option<String>,
    #[serde(rename = "__faust", skip_deserializing, serialize_with = "ns")]
    faust: (),
}

fn ns<S: Serializer>(_: &(), s: S) -> Result<S::Ok, S::Error> {
    super::faust_ns("faust.livecheck.models.TestReport", s)
}

impl TestReport {
    /// A report; `test` is `None` for a suite report.
    pub fn new(case_name: impl Into<String>, state: State, test: Option<TestExecution>) -> Self {
        TestReport {
            case_name: case_name.into(),
            state,
            test,
            runtime: None,
            signal_latency: SignalLatency::default(),
            error: None,
            traceback: None,
            faust: (),
        }
    }
}

/// Seconds waited per signal, serialized as a JSON object that keeps the order of the waits.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SignalLatency(pub Vec<(String, f64)>);

impl SignalLatency {
    /// The latency of one signal.
    pub fn get(&self, signal: &str) -> Option<f64> {
        self.0.iter().find(|(name, _)| name == signal).map(|(_, secs)| *secs)
    }
}

impl Serialize for SignalLatency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, secs) in &self.0 {
            map.serialize_entry(name, secs)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for SignalLatency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LatencyVisitor;
        impl<'de> Visitor<'de> for LatencyVisitor {
            type Value = SignalLatency;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of signal name to seconds")
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<SignalLatency, E> {
                Ok(SignalLatency::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SignalLatency, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(4));
                while let Some((name, secs)) = map.next_entry::<String, f64>()? {
                    entries.push((name, secs));
                }
                Ok(SignalLatency(entries))
            }
        }
        deserializer.deserialize_any(LatencyVisitor)
    }
}

/// A test report serialized with its execution given apart (see [`super::ExecutionRef`]): no `TestExecution` is
/// built just to be written.
pub(crate) struct ReportWithExecution<'a, E> {
    pub(crate) report: &'a TestReport,
    pub(crate) test: &'a E,
}

impl<E: Serialize> Serialize for ReportWithExecution<'_, E> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let r = self.report;
        let mut map = serializer.serialize_map(Some(8))?;
        map.serialize_entry("case_name", &r.case_name)?;
        map.serialize_entry("state", &r.state)?;
        map.serialize_entry("test", self.test)?;
        map.serialize_entry("runtime", &r.runtime)?;
        map.serialize_entry("signal_latency", &r.signal_latency)?;
        map.serialize_entry("error", &r.error)?;
        map.serialize_entry("traceback", &r.traceback)?;
        map.serialize_entry("__faust", &Ns("faust.livecheck.models.TestReport"))?;
        map.end()
    }
}

/// The `{"ns": …}` marker as a value.
pub(crate) struct Ns(pub(crate) &'static str);

impl Serialize for Ns {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        super::faust_ns(self.0, serializer)
    }
}
