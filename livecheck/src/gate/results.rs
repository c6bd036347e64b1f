//! What one version of a case did, as the API shows it: counts, pass rate with its confidence interval, runtime
//! and per-stage latency percentiles.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{stats, tally::VersionRecord};
use crate::wire::State;

/// The confidence of the pass rate's interval.
pub(crate) const CONFIDENCE: f64 = 0.95;

/// How many executions of a version ended in each outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Counts {
    /// Passed.
    pub pass: u64,
    /// Passed with a stage over its latency budget.
    pub degraded: u64,
    /// A contract failed.
    pub fail: u64,
    /// An error.
    pub error: u64,
    /// A signal did not come in time.
    pub timeout: u64,
    /// Not run.
    pub skip: u64,
}

impl Counts {
    /// Counts one execution that ended in `state`.
    pub(crate) fn add(&mut self, state: State) {
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

    /// Whether an execution that ended in `state` passed (degraded ones too: every contract held).
    pub(crate) fn passes(state: State) -> bool {
        matches!(state, State::Pass | State::Degraded)
    }

    /// Adds `other`'s counts.
    pub(crate) fn absorb(&mut self, other: &Counts) {
        self.pass += other.pass;
        self.degraded += other.degraded;
        self.fail += other.fail;
        self.error += other.error;
        self.timeout += other.timeout;
        self.skip += other.skip;
    }

    /// Executions that ran: all but the skipped ones.
    pub fn ran(&self) -> u64 {
        self.pass + self.degraded + self.fail + self.error + self.timeout
    }

    /// Executions whose every contract held: passed or degraded.
    pub fn passed(&self) -> u64 {
        self.pass + self.degraded
    }
}

/// The 50th, 90th and 99th percentiles of some seconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Latency {
    /// Median, in seconds.
    pub p50: f64,
    /// 90th percentile, in seconds.
    pub p90: f64,
    /// 99th percentile, in seconds.
    pub p99: f64,
    /// How many values they are of.
    pub samples: usize,
}

impl Latency {
    /// The percentiles of `values` (sorted here); `None` when there are none.
    pub(crate) fn of(mut values: Vec<f64>) -> Option<Latency> {
        values.retain(|v| v.is_finite());
        values.sort_by(f64::total_cmp);
        Some(Latency {
            p50: stats::quantile(&values, 0.5)?,
            p90: stats::quantile(&values, 0.9)?,
            p99: stats::quantile(&values, 0.99)?,
            samples: values.len(),
        })
    }
}

/// One stage's latency (from the previous declared signal's arrival, from the issue for the first) when this
/// version handled it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StageLatency {
    /// The stage's signal.
    pub stage: String,
    /// Its latency's percentiles; `None` when this version handled none of the kept executions' stages.
    pub latency: Option<Latency>,
}

/// What one version of a case did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VersionResults {
    /// The version (`other` for versions folded together).
    pub version: String,
    /// Every execution it sampled since it was first seen.
    pub counts: Counts,
    /// Passed (or degraded) of those that ran; `None` when none ran.
    pub pass_rate: Option<f64>,
    /// Wilson's 95 % interval of the pass rate.
    pub pass_rate_interval: Option<[f64; 2]>,
    /// Runtime of the kept executions.
    pub runtime: Option<Latency>,
    /// Each declared stage's latency, in declaration order (empty for `other`).
    pub stages: Vec<StageLatency>,
}

impl VersionResults {
    pub(crate) fn of(record: &VersionRecord, stages: &[Arc<str>]) -> Self {
        let mut results = Self::folded(&record.version, &record.counts);
        results.runtime = Latency::of(record.executions.iter().filter_map(|s| s.runtime).collect());
        results.stages = stages
            .iter()
            .zip(&record.stages)
            .map(|(stage, kept)| StageLatency {
                stage: stage.to_string(),
                latency: Latency::of(kept.iter().map(|(_, latency)| *latency).collect()),
            })
            .collect();
        results
    }

    pub(crate) fn folded(version: &str, counts: &Counts) -> Self {
        let (ran, passed) = (counts.ran(), counts.passed());
        VersionResults {
            version: version.to_owned(),
            counts: *counts,
            pass_rate: (ran > 0).then(|| passed as f64 / ran as f64),
            pass_rate_interval: stats::wilson_interval(passed, ran, CONFIDENCE).map(|(low, high)| [low, high]),
            runtime: None,
            stages: Vec::new(),
        }
    }
}
