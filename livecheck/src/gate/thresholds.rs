//! What a canary may lose against its baseline before it fails, and which executions are compared.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The limits a canary is held to. Defaults: a pass rate at most 1 point lower, runtime and every stage's median
/// latency at most 20 % higher or at most 50 ms higher (two processes of the same code on a busy machine differ
/// by tens of milliseconds), at least 30 executions of each version, significance 0.05.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Thresholds {
    /// The largest drop of the pass rate tolerated, as a fraction (0.01: one percentage point).
    pub max_pass_rate_drop: f64,
    /// The largest relative rise of the median runtime or of a stage's median latency tolerated (0.2: 20 %).
    pub max_latency_increase: f64,
    /// A rise of a median smaller than this, in seconds, is never a failure (noise on fast stages).
    pub min_latency_increase_seconds: f64,
    /// Executions of each version needed for any verdict but Inconclusive (and latencies of a stage needed to
    /// compare that stage).
    pub min_executions: u64,
    /// The chance of a false alarm tolerated per question: the pass rate is asked at this level, the latencies
    /// (runtime and each stage) share it (Bonferroni).
    pub significance: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_pass_rate_drop: 0.01,
            max_latency_increase: 0.2,
            min_latency_increase_seconds: 0.05,
            min_executions: 30,
            significance: 0.05,
        }
    }
}

impl Thresholds {
    /// The largest drop of the pass rate tolerated (a fraction, clamped to 0..=1).
    #[must_use]
    pub fn max_pass_rate_drop(mut self, drop: f64) -> Self {
        self.max_pass_rate_drop = if drop.is_finite() { drop.clamp(0.0, 1.0) } else { self.max_pass_rate_drop };
        self
    }

    /// The largest relative rise of a median latency tolerated (at least 0).
    #[must_use]
    pub fn max_latency_increase(mut self, increase: f64) -> Self {
        self.max_latency_increase = if increase.is_finite() { increase.max(0.0) } else { self.max_latency_increase };
        self
    }

    /// A rise of a median latency below this is never a failure.
    #[must_use]
    pub fn min_latency_increase(mut self, increase: Duration) -> Self {
        self.min_latency_increase_seconds = increase.as_secs_f64();
        self
    }

    /// Executions of each version needed for a verdict (at least 1).
    #[must_use]
    pub fn min_executions(mut self, executions: u64) -> Self {
        self.min_executions = executions.max(1);
        self
    }

    /// The chance of a false alarm tolerated (clamped to 1e-9..=0.5).
    #[must_use]
    pub fn significance(mut self, significance: f64) -> Self {
        self.significance = if significance.is_finite() { significance.clamp(1e-9, 0.5) } else { self.significance };
        self
    }
}

/// Which of the kept executions are compared.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Window {
    /// All kept (the last 2 000 of each version).
    #[default]
    All,
    /// The last this many executions of each version.
    Last(usize),
    /// Those that finished within this long of now.
    Within(Duration),
}
