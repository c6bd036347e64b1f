//! What a case's health looks like from outside: the [`HealthSnapshot`] and its public parts (the suite failure,
//! its kind, the counts per state, the pass rate, the service-down and stall states), serialized with the names of
//! the JSON API.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    case::ClockSkewState,
    wire::{timestamp, State},
};

/// Why a case failed as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuiteFailureKind {
    /// `max_consecutive_failures` failing tests in a row.
    ConsecutiveFailures,
    /// N of the last M executions failed ([`CaseSettings::failure_rate`](crate::CaseSettings::failure_rate)).
    FailureRate,
    /// The pass rate over a time window fell below its minimum
    /// ([`CaseSettings::min_pass_rate`](crate::CaseSettings::min_pass_rate)).
    PassRate,
    /// No test arrived for `warn_stalled_after`.
    Stall,
    /// A fake request found the service down ([`crate::Error::ServiceDown`]).
    ServiceDown,
    /// Executions arrived expired, or issued in the future, many in a row: this instance's clock and the
    /// services' disagree.
    ClockSkew,
    /// Too many executions were DEGRADED (a stage over its latency budget) over a time window
    /// ([`CaseSettings::max_degraded_rate`](crate::CaseSettings::max_degraded_rate)): the case is DEGRADED, not
    /// failing.
    DegradedRate,
}

impl SuiteFailureKind {
    /// How many kinds there are.
    pub(super) const COUNT: usize = 7;

    /// The name in JSON: `consecutive_failures`, `failure_rate`, `pass_rate`, `stall`, `service_down`,
    /// `clock_skew`, `degraded_rate`.
    pub fn as_str(self) -> &'static str {
        match self {
            SuiteFailureKind::ConsecutiveFailures => "consecutive_failures",
            SuiteFailureKind::FailureRate => "failure_rate",
            SuiteFailureKind::PassRate => "pass_rate",
            SuiteFailureKind::Stall => "stall",
            SuiteFailureKind::ServiceDown => "service_down",
            SuiteFailureKind::ClockSkew => "clock_skew",
            SuiteFailureKind::DegradedRate => "degraded_rate",
        }
    }

    /// Its place in per-kind arrays.
    pub(super) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for SuiteFailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A case failing as a whole: a failure policy was met, no tests arrive, or the service is down.
///
/// Serialized (as `last_suite_failure` of a [`HealthSnapshot`]) as `{"kind", "state", "reason", "at"}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SuiteFailure {
    /// The case.
    #[serde(skip)]
    pub case_name: String,
    /// The cause.
    pub kind: SuiteFailureKind,
    /// STALL for a stall, DEGRADED for too many degraded executions, FAIL otherwise.
    pub state: State,
    /// Why, in words.
    pub reason: String,
    /// When it was decided.
    #[serde(serialize_with = "timestamp::serialize")]
    pub at: DateTime<Utc>,
}

/// A point-in-time view of a case's health, as this instance sees it (it judges the tests it runs).
///
/// Serialized with the field names of the JSON API:
///
/// ```json
/// {"status": "FAIL", "failing": true, "service_down": null, "stall": null, "clock_skew": null,
///  "last_suite_failure": {"kind": "failure_rate", "state": "FAIL", "reason": "8 of the last 10 executions failed",
///                         "at": "2026-11-25T01:51:06.369766Z"},
///  "counts": {"PASS": 10, "DEGRADED": 0, "FAIL": 8, "ERROR": 0, "TIMEOUT": 0, "SKIP": 0},
///  "consecutive_failures": 3, "total_failures": 8, "pass_rate": {"last": 18, "passed": 10, "rate": 0.5556},
///  "runtime_median_seconds": 0.04, "interval_median_seconds": 1.0, "lateness_median_seconds": 0.0}
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct HealthSnapshot {
    /// INIT until a test finished; then the state of the last failing test or suite failure, until a passing test
    /// recovers the case (PASS). DEGRADED while too many executions are degraded (a policy of the case).
    pub status: State,
    /// Whether the case is failing: a suite failure it has not recovered from, its service down, or a failing
    /// status.
    pub failing: bool,
    /// Since when the case's service is down, while it is.
    pub service_down: Option<ServiceDownState>,
    /// Since when the case is stalled (no test for `warn_stalled_after`), until a test arrives.
    pub stall: Option<StallState>,
    /// Since when its executions arrive expired or from the future, and by how much, until one arrives in time.
    pub clock_skew: Option<ClockSkewState>,
    /// The latest suite failure, reported or not; kept after recovery.
    pub last_suite_failure: Option<SuiteFailure>,
    /// Tests finished per state.
    pub counts: StateCounts,
    /// Failing tests in a row: reset by a passing test issued after the last failure.
    pub consecutive_failures: u32,
    /// Failing tests in all.
    pub total_failures: u64,
    /// Verdicts reached while the instance lagged behind its streams (TIMEOUTs that may be its own fault): in
    /// `counts`, but kept out of the failure counts, rates and policies.
    pub unknown_verdicts: u64,
    /// Passing share of the last `max_history` finished executions.
    pub pass_rate: PassRate,
    /// Median runtime of the last `max_history` tests, in seconds.
    pub runtime_median_seconds: Option<f64>,
    /// Median time between two tests arriving, over the last `max_history`, in seconds.
    pub interval_median_seconds: Option<f64>,
    /// Median lateness of tests against `frequency`, in seconds, never negative: how much longer than `frequency`
    /// the time since the previous test was (0 for a test that came within `frequency`). `None` without
    /// `frequency`.
    pub lateness_median_seconds: Option<f64>,
}

impl HealthSnapshot {
    /// How many tests finished in `state`.
    pub fn count(&self, state: State) -> u64 {
        self.counts.get(state)
    }
}

/// Since when a case's service is down.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ServiceDownState {
    /// The first fake request that found it down.
    #[serde(serialize_with = "timestamp::serialize")]
    pub since: DateTime<Utc>,
    /// The URL that could not be reached, when known.
    pub url: Option<String>,
    /// What the last attempt failed with ("connection refused (after 10 retries)").
    pub last_error: String,
}

/// Since when a case is stalled, and which stall it is.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct StallState {
    /// When the stall was detected.
    #[serde(serialize_with = "timestamp::serialize")]
    pub since: DateTime<Utc>,
    /// Which stall it is, by what the services reported of their traffic meanwhile.
    pub cause: StallCause,
    /// Seconds since the last test arrived (or since the instance started, before the first).
    pub quiet_seconds: f64,
}

/// Which stall a case is in: the services tell the instance how many requests they saw and sampled (every 10 s
/// while they see any).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StallCause {
    /// No service reported traffic: no requests reach them (or none calls `maybe_trigger`).
    NoTraffic,
    /// The services see requests but sample none: the probability, or a condition in the service.
    NotSampled,
    /// The services sampled tests that did not reach the instance: the pending-tests stream, the broker, or the
    /// instance's partitions.
    TestsNotArriving,
}

/// Tests finished per state, serialized as `{"PASS": 10, "DEGRADED": 0, "FAIL": 1, "ERROR": 0, "TIMEOUT": 0,
/// "SKIP": 0}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StateCounts {
    /// PASS.
    #[serde(rename = "PASS")]
    pub pass: u64,
    /// DEGRADED: passed with a stage over its latency budget.
    #[serde(rename = "DEGRADED")]
    pub degraded: u64,
    /// FAIL.
    #[serde(rename = "FAIL")]
    pub fail: u64,
    /// ERROR.
    #[serde(rename = "ERROR")]
    pub error: u64,
    /// TIMEOUT.
    #[serde(rename = "TIMEOUT")]
    pub timeout: u64,
    /// SKIP.
    #[serde(rename = "SKIP")]
    pub skip: u64,
}

impl StateCounts {
    /// How many tests finished in `state` (0 for INIT and STALL, which are not outcomes of a test).
    pub fn get(&self, state: State) -> u64 {
        match state {
            State::Pass => self.pass,
            State::Degraded => self.degraded,
            State::Fail => self.fail,
            State::Error => self.error,
            State::Timeout => self.timeout,
            State::Skip => self.skip,
            State::Init | State::Stall => 0,
        }
    }

    /// Tests finished in all.
    pub fn total(&self) -> u64 {
        self.pass + self.degraded + self.fail + self.error + self.timeout + self.skip
    }

    pub(super) fn add(&mut self, state: State) {
        match state {
            State::Pass => self.pass += 1,
            State::Degraded => self.degraded += 1,
            State::Fail => self.fail += 1,
            State::Error => self.error += 1,
            State::Timeout => self.timeout += 1,
            State::Skip => self.skip += 1,
            State::Init | State::Stall => {}
        }
    }
}

/// The passing share of the last finished executions (SKIP excluded; DEGRADED ones passed).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct PassRate {
    /// How many executions it is over (at most `max_history`).
    pub last: u64,
    /// How many of them passed.
    pub passed: u64,
    /// `passed / last`; `None` when there are none.
    pub rate: Option<f64>,
}
