//! Canary against baseline: the pass rates (Fisher's exact test, or the two-proportion z test when every expected
//! count is at least 5), the runtime and each stage's latency (Mann-Whitney U), held to the [`Thresholds`].
//!
//! - **Failed** when a difference is both beyond its threshold and significant: the pass rate at the
//!   significance level, the latencies at it divided by how many latencies are compared (Bonferroni).
//! - **Inconclusive** when either version has fewer than `min_executions`, or the pass rate dropped beyond its
//!   threshold with a marginal p-value (under twice the significance): never a pass by default.
//! - **Successful** otherwise.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    stats,
    tally::{Reason, VersionRecord},
    Thresholds, Window,
};
use crate::wire::State;

/// A pass-rate drop beyond its threshold with a p-value under this many times the significance is marginal: the
/// verdict waits for more executions (Inconclusive) rather than pass the canary.
const MARGINAL: f64 = 2.0;

/// What a comparison concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The canary is no worse than the thresholds allow.
    Successful,
    /// The canary is worse beyond a threshold, significantly.
    Failed,
    /// Not enough executions to tell, or worse but not significantly yet.
    Inconclusive,
}

impl Outcome {
    /// `successful`, `failed` or `inconclusive`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Successful => "successful",
            Outcome::Failed => "failed",
            Outcome::Inconclusive => "inconclusive",
        }
    }
}

/// What was compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Executions whose every contract held, of those that ran.
    PassRate,
    /// How long executions ran.
    Runtime,
    /// One stage's latency.
    StageLatency,
}

/// One difference between canary and baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Finding {
    /// What differs.
    pub metric: Metric,
    /// The stage: where the canary's executions broke most more often than the baseline's, or the slow stage.
    pub stage: Option<String>,
    /// The contract: the message of the canary's failures that grew most (an assertion's message, an error).
    pub contract: Option<String>,
    /// The state of those failures.
    pub state: Option<State>,
    /// How many of the canary's executions show it (failures with that contract; latencies compared).
    pub executions: u64,
    /// The canary's value: a pass rate, or a median in seconds.
    pub canary: f64,
    /// The baseline's value.
    pub baseline: f64,
    /// The one-sided p-value of the canary being this much worse by chance.
    pub p_value: f64,
    /// The test: `fisher_exact`, `two_proportion_z` or `mann_whitney_u`.
    pub test: String,
    /// The finding in one sentence.
    pub message: String,
}

/// The verdict on a canary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Verdict {
    /// The case compared on.
    pub case: String,
    /// The canary's version.
    pub canary: String,
    /// The baseline's version.
    pub baseline: String,
    /// Successful, failed or inconclusive.
    pub outcome: Outcome,
    /// Why, in one sentence.
    pub reason: String,
    /// Failed: what failed, worst first. Inconclusive: what looked worse.
    pub findings: Vec<Finding>,
    /// Executions of the canary compared (that ran).
    pub canary_executions: u64,
    /// Executions of the baseline compared.
    pub baseline_executions: u64,
    /// The canary's pass rate over them.
    pub canary_pass_rate: Option<f64>,
    /// The baseline's pass rate over them.
    pub baseline_pass_rate: Option<f64>,
    /// The thresholds it was held to.
    pub thresholds: Thresholds,
}

impl Verdict {
    /// Whether the canary may go on.
    pub fn is_successful(&self) -> bool {
        self.outcome == Outcome::Successful
    }

    /// Whether the canary must be stopped.
    pub fn is_failed(&self) -> bool {
        self.outcome == Outcome::Failed
    }

    /// Whether it cannot be told yet.
    pub fn is_inconclusive(&self) -> bool {
        self.outcome == Outcome::Inconclusive
    }

    /// Inconclusive because nothing is known of the case.
    pub(crate) fn unknown(case: &str, canary: &str, baseline: &str, thresholds: &Thresholds, why: &str) -> Self {
        Verdict {
            case: case.to_owned(),
            canary: canary.to_owned(),
            baseline: baseline.to_owned(),
            outcome: Outcome::Inconclusive,
            reason: format!("{case}: {why}"),
            findings: Vec::new(),
            canary_executions: 0,
            baseline_executions: 0,
            canary_pass_rate: None,
            baseline_pass_rate: None,
            thresholds: thresholds.clone(),
        }
    }
}

/// One version's executions in the window, as compared.
#[derive(Debug, Default)]
pub(crate) struct Side {
    pub(crate) ran: u64,
    pub(crate) passed: u64,
    pub(crate) runtimes: Vec<f64>,
    /// Failures by reason.
    pub(crate) failures: Vec<(Reason, u64)>,
    /// Per declared stage: its name and the latencies when this version handled it.
    pub(crate) stages: Vec<(Arc<str>, Vec<f64>)>,
}

/// Whether `at` is in `window` as of `now`, being the `from_end`th newest of its queue (0 = newest).
fn in_window(window: Window, at: DateTime<Utc>, from_end: usize, now: DateTime<Utc>) -> bool {
    match window {
        Window::All => true,
        Window::Last(count) => from_end < count,
        Window::Within(span) => chrono::Duration::from_std(span).is_ok_and(|span| now - at <= span),
    }
}

impl Side {
    pub(crate) fn of(record: &VersionRecord, stages: &[Arc<str>], window: Window, now: DateTime<Utc>) -> Self {
        let mut side = Side::default();
        let mut failures: HashMap<u16, u64> = HashMap::new();
        for (from_end, sample) in record.executions.iter().rev().enumerate() {
            if !in_window(window, sample.finished_at, from_end, now) {
                continue;
            }
            side.ran += 1;
            side.passed += u64::from(sample.passed);
            side.runtimes.extend(sample.runtime.filter(|r| r.is_finite()));
            if let Some(reason) = sample.reason {
                *failures.entry(reason).or_default() += 1;
            }
        }
        side.failures = failures.into_iter().map(|(index, count)| (record.reason(index), count)).collect();
        side.stages = stages
            .iter()
            .zip(&record.stages)
            .map(|(name, kept)| {
                let latencies = kept
                    .iter()
                    .rev()
                    .enumerate()
                    .filter(|(from_end, (at, _))| in_window(window, *at, *from_end, now))
                    .map(|(_, (_, latency))| *latency)
                    .collect();
                (name.clone(), latencies)
            })
            .collect();
        side
    }

    fn pass_rate(&self) -> Option<f64> {
        (self.ran > 0).then(|| self.passed as f64 / self.ran as f64)
    }
}

/// The median of `values` (sorted here).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    stats::quantile(&sorted, 0.5).unwrap_or(f64::NAN)
}

/// Compares `canary` with `baseline` (`None`: the version has no execution kept).
pub(crate) fn compare(
    case: &str,
    canary_version: &str,
    baseline_version: &str,
    canary: Option<Side>,
    baseline: Option<Side>,
    thresholds: &Thresholds,
) -> Verdict {
    let (canary, baseline) = (canary.unwrap_or_default(), baseline.unwrap_or_default());
    let mut verdict = Verdict::unknown(case, canary_version, baseline_version, thresholds, "");
    verdict.canary_executions = canary.ran;
    verdict.baseline_executions = baseline.ran;
    verdict.canary_pass_rate = canary.pass_rate();
    verdict.baseline_pass_rate = baseline.pass_rate();
    let needed = thresholds.min_executions;
    if canary.ran < needed || baseline.ran < needed {
        verdict.reason = format!(
            "not enough executions: {canary_version} has {} and {baseline_version} {} of the {needed} each needs",
            canary.ran, baseline.ran
        );
        return verdict;
    }

    let mut failed = Vec::new();
    let mut doubtful = Vec::new();
    // The pass rate: the primary question, at the full significance.
    let pass_rate = pass_rate_finding(&canary, &baseline, canary_version, baseline_version);
    let drop = pass_rate.baseline - pass_rate.canary;
    if drop > thresholds.max_pass_rate_drop {
        if pass_rate.p_value < thresholds.significance {
            failed.push(pass_rate);
        } else if pass_rate.p_value < MARGINAL * thresholds.significance {
            doubtful.push(pass_rate);
        }
    }
    // Latencies: runtime and every stage both versions handled often enough share the significance.
    let mut latencies = vec![(None, &canary.runtimes, &baseline.runtimes)];
    for ((stage, canary_stage), (_, baseline_stage)) in canary.stages.iter().zip(&baseline.stages) {
        if canary_stage.len() as u64 >= needed && baseline_stage.len() as u64 >= needed {
            latencies.push((Some(stage), canary_stage, baseline_stage));
        }
    }
    let level = thresholds.significance / latencies.len() as f64;
    for (stage, canary_values, baseline_values) in latencies {
        if canary_values.is_empty() || baseline_values.is_empty() {
            continue;
        }
        let (canary_median, baseline_median) = (median(canary_values), median(baseline_values));
        let rise = canary_median - baseline_median;
        let beyond = rise > thresholds.min_latency_increase_seconds
            && rise > thresholds.max_latency_increase * baseline_median.max(0.0);
        if !beyond {
            continue;
        }
        let (_, p_value) = stats::mann_whitney_greater(canary_values, baseline_values);
        if p_value >= level {
            continue;
        }
        let what = stage.map_or_else(|| "runtime".to_owned(), |stage| format!("stage {stage}"));
        let percent =
            if baseline_median > 0.0 { format!("+{:.0} %", 100.0 * rise / baseline_median) } else { "up".into() };
        failed.push(Finding {
            metric: if stage.is_some() { Metric::StageLatency } else { Metric::Runtime },
            stage: stage.map(|s| s.to_string()),
            contract: None,
            state: None,
            executions: canary_values.len() as u64,
            canary: canary_median,
            baseline: baseline_median,
            p_value,
            test: "mann_whitney_u".into(),
            message: format!(
                "{what}: median {canary_median:.3} s on {canary_version} against {baseline_median:.3} s on \
                 {baseline_version} ({percent}; {} against {} executions; Mann-Whitney U p = {p_value:.2e})",
                canary_values.len(),
                baseline_values.len()
            ),
        });
    }

    if !failed.is_empty() {
        // The pass rate first, then stage latencies (the largest rise first) before the runtime they explain.
        failed.sort_by(|a, b| {
            let rank = |finding: &Finding| match finding.metric {
                Metric::PassRate => 0,
                Metric::StageLatency => 1,
                Metric::Runtime => 2,
            };
            let rise = |finding: &Finding| finding.canary - finding.baseline;
            rank(a).cmp(&rank(b)).then(rise(b).total_cmp(&rise(a)))
        });
        verdict.outcome = Outcome::Failed;
        verdict.reason = failed.iter().map(|f| f.message.as_str()).collect::<Vec<_>>().join("; ");
        verdict.findings = failed;
    } else if !doubtful.is_empty() {
        verdict.reason = format!(
            "worse, not significantly yet (more executions will tell): {}",
            doubtful.iter().map(|f| f.message.as_str()).collect::<Vec<_>>().join("; ")
        );
        verdict.findings = doubtful;
    } else {
        verdict.outcome = Outcome::Successful;
        verdict.reason = format!(
            "{canary_version} is within the thresholds of {baseline_version} over {} against {} executions",
            canary.ran, baseline.ran
        );
    }
    verdict
}

/// The pass rates compared, with the failure that grew most on the canary.
fn pass_rate_finding(canary: &Side, baseline: &Side, canary_version: &str, baseline_version: &str) -> Finding {
    let (c_rate, b_rate) = (canary.pass_rate().unwrap_or(0.0), baseline.pass_rate().unwrap_or(0.0));
    // Cochran's rule: the z test when every expected count of the 2×2 table is at least 5.
    let total = (canary.ran + baseline.ran) as f64;
    let (passed, failed) =
        ((canary.passed + baseline.passed) as f64, (total - (canary.passed + baseline.passed) as f64));
    let smallest_expected = passed.min(failed) * (canary.ran.min(baseline.ran) as f64) / total;
    let (test, p_value) = if smallest_expected >= 5.0 {
        ("two_proportion_z", stats::two_proportion_lower(canary.passed, canary.ran, baseline.passed, baseline.ran).1)
    } else {
        ("fisher_exact", stats::fisher_exact_lower(canary.passed, canary.ran, baseline.passed, baseline.ran))
    };
    // The reason whose share grew most.
    let share = |side: &Side, reason: &Reason| {
        side.failures.iter().find(|(r, _)| r == reason).map_or(0.0, |(_, n)| *n as f64 / side.ran.max(1) as f64)
    };
    let grown = canary
        .failures
        .iter()
        .max_by(|(a, _), (b, _)| {
            let growth = |r| share(canary, r) - share(baseline, r);
            growth(a).total_cmp(&growth(b))
        })
        .cloned();
    let failures = canary.ran - canary.passed;
    let mut message = format!(
        "pass rate {:.1} % on {canary_version} ({} of {}) against {:.1} % on {baseline_version} ({} of {}; {} p = {p_value:.2e})",
        100.0 * c_rate,
        canary.passed,
        canary.ran,
        100.0 * b_rate,
        baseline.passed,
        baseline.ran,
        if test == "fisher_exact" { "Fisher's exact test" } else { "two-proportion z test" },
    );
    if let Some((reason, count)) = &grown {
        let stage = reason.stage.as_deref().map_or_else(String::new, |s| format!(" at stage {s}"));
        message.push_str(&format!(": {count} of its {failures} failures {}{stage}: {}", reason.state, reason.message));
    }
    Finding {
        metric: Metric::PassRate,
        stage: grown.as_ref().and_then(|(r, _)| r.stage.as_deref().map(str::to_owned)),
        contract: grown.as_ref().map(|(r, _)| r.message.to_string()),
        state: grown.as_ref().map(|(r, _)| r.state),
        executions: grown.as_ref().map_or(failures, |(_, count)| *count),
        canary: c_rate,
        baseline: b_rate,
        p_value,
        test: test.into(),
        message,
    }
}
