use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The state of a test execution or of a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// No test has finished yet.
    Init,
    /// Passed.
    Pass,
    /// Passed, but a stage was over its latency budget (see [`crate::CaseSettings::signal_budget`]). A state of
    /// ours: written as `PASS` with an `over_budget` field on the report stream, so Faust readers see a PASS.
    Degraded,
    /// An assertion failed.
    Fail,
    /// The test raised an error.
    Error,
    /// A signal did not arrive in time.
    Timeout,
    /// No test was received for too long.
    Stall,
    /// The test was not run (inactive case, expired execution).
    Skip,
}

impl State {
    /// Every state, in wire order.
    pub const ALL: [State; 8] = [
        State::Init,
        State::Pass,
        State::Degraded,
        State::Fail,
        State::Error,
        State::Timeout,
        State::Stall,
        State::Skip,
    ];

    /// INIT, PASS, DEGRADED and SKIP are "ok" states: a degraded execution kept every contract, and is kept out of
    /// the failure counts.
    pub fn is_ok(self) -> bool {
        matches!(self, State::Init | State::Pass | State::Degraded | State::Skip)
    }

    /// The name Faust readers understand: DEGRADED is a PASS to them.
    pub(crate) fn faust_name(self) -> &'static str {
        match self {
            State::Degraded => "PASS",
            state => state.as_str(),
        }
    }

    /// The wire name (`"PASS"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            State::Init => "INIT",
            State::Pass => "PASS",
            State::Degraded => "DEGRADED",
            State::Fail => "FAIL",
            State::Error => "ERROR",
            State::Timeout => "TIMEOUT",
            State::Stall => "STALL",
            State::Skip => "SKIP",
        }
    }

    fn from_wire(name: &str) -> Option<State> {
        Some(match name {
            "INIT" => State::Init,
            // One Python fork writes PASS this way.
            "PASS" | "111/***/111" => State::Pass,
            "DEGRADED" => State::Degraded,
            "FAIL" => State::Fail,
            "ERROR" => State::Error,
            "TIMEOUT" => State::Timeout,
            "STALL" => State::Stall,
            "SKIP" => State::Skip,
            _ => return None,
        })
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for State {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for State {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        State::from_wire(&name).ok_or_else(|| serde::de::Error::custom(format!("unknown test state `{name}`")))
    }
}
