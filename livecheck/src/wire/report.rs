use std::fmt;

use serde::{
    de::{MapAccess, Visitor},
    ser::SerializeMap,
    Deserialize, Deserializer, Serialize, Serializer,
};

use super::{State, TestExecution};

/// The result of one execution, or a suite-level report (`test` is `None`) when a case fails as a whole.
///
/// A DEGRADED execution is written as `"state": "PASS"` with its `over_budget` stages, so that Faust readers see a
/// PASS; it reads back as DEGRADED.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "WireReport")]
#[allow(clippy::manual_non_exhaustive)] // the private field writes the `__faust` marker
pub struct TestReport {
    /// The case.
    pub case_name: String,
    /// The outcome.
    #[serde(serialize_with = "faust_state")]
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
    /// The stages over their latency budget in a DEGRADED execution (a field Faust readers ignore).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub over_budget: Vec<OverBudget>,
    #[serde(rename = "__faust", skip_deserializing, serialize_with = "ns")]
    faust: (),
}

/// A stage that arrived later than its budget allows (see [`crate::CaseSettings::signal_budget`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OverBudget {
    /// The signal.
    pub signal: String,
    /// Its budget: seconds from the test's issue.
    pub budget: f64,
    /// When it arrived: seconds from the test's issue.
    pub latency: f64,
}

impl OverBudget {
    /// A stage that arrived `latency` seconds after the issue, over its `budget`.
    pub fn new(signal: impl Into<String>, budget: f64, latency: f64) -> Self {
        OverBudget { signal: signal.into(), budget, latency }
    }
}

impl fmt::Display for OverBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} after {:.3}s (budget {:.3}s)", self.signal, self.latency, self.budget)
    }
}

fn faust_state<S: Serializer>(state: &State, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(state.faust_name())
}

/// A report as it is read: a PASS with stages over budget is DEGRADED.
#[derive(Deserialize)]
struct WireReport {
    case_name: String,
    state: State,
    test: Option<TestExecution>,
    runtime: Option<f64>,
    #[serde(default)]
    signal_latency: SignalLatency,
    error: Option<String>,
    traceback: Option<String>,
    #[serde(default)]
    over_budget: Vec<OverBudget>,
}

impl From<WireReport> for TestReport {
    fn from(wire: WireReport) -> Self {
        let state = match wire.state {
            State::Pass if !wire.over_budget.is_empty() => State::Degraded,
            state => state,
        };
        TestReport {
            case_name: wire.case_name,
            state,
            test: wire.test,
            runtime: wire.runtime,
            signal_latency: wire.signal_latency,
            error: wire.error,
            traceback: wire.traceback,
            over_budget: wire.over_budget,
            faust: (),
        }
    }
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
            over_budget: Vec::new(),
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
        let mut map = serializer.serialize_map(Some(8 + usize::from(!r.over_budget.is_empty())))?;
        map.serialize_entry("case_name", &r.case_name)?;
        map.serialize_entry("state", r.state.faust_name())?;
        map.serialize_entry("test", self.test)?;
        map.serialize_entry("runtime", &r.runtime)?;
        map.serialize_entry("signal_latency", &r.signal_latency)?;
        map.serialize_entry("error", &r.error)?;
        map.serialize_entry("traceback", &r.traceback)?;
        if !r.over_budget.is_empty() {
            map.serialize_entry("over_budget", &r.over_budget)?;
        }
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
