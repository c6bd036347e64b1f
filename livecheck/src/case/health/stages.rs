//! Stage health: for each signal a case declares (a stage of the flow it tests), over the last
//! [`STAGE_WINDOW`] executions that ran, how often it arrived, how often the test waited for it in vain, and its
//! latency from the test's issue and from the previous stage — where the flow breaks, and where it is slow.
//!
//! Memory per case is bounded: one entry per execution (24 bytes, and 12 per declared signal) for at most
//! [`STAGE_WINDOW`] executions; percentiles are computed when asked for. Late and duplicate signals are counted
//! since the instance started (two counters per declared signal).

use std::{collections::VecDeque, sync::Arc, time::Duration};

use serde::Serialize;

use crate::{history::SignalStatus, observe::SignalOutcome};

/// How many of a case's last executions (those that ran: SKIP excluded) stage health is over.
pub const STAGE_WINDOW: usize = 500;

/// What became of one signal in one execution, as stage health keeps it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Stage {
    /// It arrived, this many seconds after the test's issue and after the previous declared signal's arrival
    /// (NaN when that one did not arrive; the first signal's is from the issue).
    Arrived { from_issue: f32, from_previous: f32 },
    /// The test waited for it and it did not come.
    Missing,
    /// The test did not wait for it, and it did not come.
    NotReached,
}

struct Execution {
    failed: bool,
    stages: Box<[Stage]>,
}

/// The last [`STAGE_WINDOW`] executions' stages of one case.
pub(super) struct Stages {
    capacity: usize,
    /// Latency budgets by signal name, in seconds from the issue.
    budgets: Vec<(String, f64)>,
    /// Per declared signal (by index), since the instance started: signals that came after their test's verdict,
    /// and signals a test had received already.
    late: Vec<u64>,
    duplicates: Vec<u64>,
    /// The declared signals' names, as the last execution gave them.
    names: Vec<Arc<str>>,
    /// Oldest first.
    executions: VecDeque<Execution>,
}

/// Three percentiles of a latency, in seconds; `None` without samples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Percentiles {
    /// The median.
    pub p50: Option<f64>,
    /// The 95th percentile.
    pub p95: Option<f64>,
    /// The 99th percentile.
    pub p99: Option<f64>,
}

/// One stage of a case (one declared signal) over its last [`STAGE_WINDOW`] executions.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct StageHealth {
    /// The signal's name.
    pub signal: String,
    /// Executions that reached it: it arrived, or the test waited for it.
    pub reached: u64,
    /// Executions in which it arrived.
    pub arrived: u64,
    /// Executions that waited for it in vain (the wait timed out, or the test ended while waiting).
    pub missing: u64,
    /// Signals that came after their test's verdict (too late: after the wait for them timed out, or after the test
    /// ended without waiting), since the instance started.
    pub late: u64,
    /// Signals a test had received already (sent twice for one test), since the instance started.
    pub duplicates: u64,
    /// Its latency budget (seconds from the issue), when it has one.
    pub budget_seconds: Option<f64>,
    /// Executions in which it arrived later than its budget.
    pub over_budget: u64,
    /// Seconds from the test's issue to its arrival.
    pub latency_from_issue_seconds: Percentiles,
    /// Seconds from the previous declared signal's arrival to its own (from the issue for the first signal;
    /// only executions in which both arrived).
    pub latency_from_previous_seconds: Percentiles,
}

/// The stage missing in most of a run of failed executions, when it is missing in more than half of them.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct MissingStage {
    pub(super) signal: Arc<str>,
    pub(super) missing: usize,
    pub(super) of: usize,
}

impl std::fmt::Display for MissingStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` missing in {} of the last {} failures", self.signal, self.missing, self.of)
    }
}

impl Stages {
    pub(super) fn new(capacity: usize, budgets: &[(String, Duration)]) -> Self {
        Stages {
            capacity: capacity.max(1),
            budgets: budgets.iter().map(|(signal, budget)| (signal.clone(), budget.as_secs_f64())).collect(),
            late: Vec::new(),
            duplicates: Vec::new(),
            names: Vec::new(),
            executions: VecDeque::new(),
        }
    }

    /// Signal `index` came after its test's verdict.
    pub(super) fn late(&mut self, index: usize) {
        bump(&mut self.late, index);
    }

    /// Signal `index` came a second time for one test.
    pub(super) fn duplicate(&mut self, index: usize) {
        bump(&mut self.duplicates, index);
    }

    fn budget(&self, signal: &str) -> Option<f64> {
        self.budgets.iter().find(|(name, _)| name == signal).map(|(_, budget)| *budget)
    }

    /// The stage over its budget in most of the window's executions: its name, in how many, of how many.
    pub(super) fn most_over_budget(&self) -> Option<(Arc<str>, usize, usize)> {
        let (index, budget) = self
            .names
            .iter()
            .enumerate()
            .filter_map(|(index, name)| Some((index, self.budget(name)?)))
            .map(|(index, budget)| (index, self.over_budget(index, budget)))
            .max_by_key(|(index, over)| (*over, std::cmp::Reverse(*index)))?;
        (budget > 0).then(|| (self.names[index].clone(), budget, self.executions.len()))
    }

    fn over_budget(&self, index: usize, budget: f64) -> usize {
        self.executions
            .iter()
            .filter(|e| matches!(e.stages.get(index), Some(Stage::Arrived { from_issue, .. }) if f64::from(*from_issue) > budget))
            .count()
    }

    /// An execution that ran finished (`failed`: FAIL, ERROR or TIMEOUT), its signals in declaration order. An
    /// execution that did not run (no signals) is not kept.
    pub(super) fn record(&mut self, signals: &[SignalOutcome], failed: bool) {
        if signals.is_empty() {
            return;
        }
        let same_names = self.names.len() == signals.len()
            && self.names.iter().zip(signals).all(|(name, outcome)| Arc::ptr_eq(name, &outcome.signal));
        if !same_names {
            self.names = signals.iter().map(|outcome| outcome.signal.clone()).collect();
        }
        let mut previous = Some(0.0);
        let stages = signals
            .iter()
            .map(|outcome| {
                let stage = match (outcome.status, outcome.after_issue_seconds) {
                    (SignalStatus::Received, Some(at)) => Stage::Arrived {
                        from_issue: at as f32,
                        from_previous: previous.map_or(f32::NAN, |before: f64| (at - before) as f32),
                    },
                    (SignalStatus::Received, None) | (SignalStatus::NotReached, _) => Stage::NotReached,
                    (SignalStatus::Missing | SignalStatus::Waiting, _) => Stage::Missing,
                };
                previous = outcome.after_issue_seconds.filter(|_| outcome.status == SignalStatus::Received);
                stage
            })
            .collect();
        if self.executions.len() == self.capacity {
            self.executions.pop_front();
        }
        self.executions.push_back(Execution { failed, stages });
    }

    /// Each declared signal's health over the window, in declaration order (`names` are the case's declared
    /// signals, which name the stages before any execution ran).
    pub(super) fn health(&self, names: &[Arc<str>]) -> Vec<StageHealth> {
        let names = if self.names.is_empty() { names } else { &self.names };
        names
            .iter()
            .enumerate()
            .map(|(index, name)| {
                let (mut arrived, mut missing) = (0, 0);
                let (mut from_issue, mut from_previous) = (Vec::new(), Vec::new());
                for stage in self.executions.iter().filter_map(|e| e.stages.get(index)) {
                    match *stage {
                        Stage::Arrived { from_issue: issue, from_previous: previous } => {
                            arrived += 1;
                            from_issue.push(issue);
                            if !previous.is_nan() {
                                from_previous.push(previous);
                            }
                        }
                        Stage::Missing => missing += 1,
                        Stage::NotReached => {}
                    }
                }
                let budget_seconds = self.budget(name);
                StageHealth {
                    signal: name.to_string(),
                    reached: arrived + missing,
                    arrived,
                    missing,
                    late: self.late.get(index).copied().unwrap_or(0),
                    duplicates: self.duplicates.get(index).copied().unwrap_or(0),
                    budget_seconds,
                    over_budget: budget_seconds.map_or(0, |budget| self.over_budget(index, budget) as u64),
                    latency_from_issue_seconds: percentiles(from_issue),
                    latency_from_previous_seconds: percentiles(from_previous),
                }
            })
            .collect()
    }

    /// Of the last `failures` failed executions, the signal missing in most, when in more than half of them.
    pub(super) fn missing_in_failures(&self, failures: usize) -> Option<MissingStage> {
        let mut missing = vec![0usize; self.names.len()];
        let mut of = 0;
        for execution in self.executions.iter().rev().filter(|e| e.failed).take(failures) {
            of += 1;
            for (count, stage) in missing.iter_mut().zip(execution.stages.iter()) {
                *count += usize::from(*stage == Stage::Missing);
            }
        }
        // The first signal of those missing most: the earliest stage that breaks.
        let (index, most) = missing.iter().enumerate().rev().max_by_key(|(_, count)| **count)?;
        (*most * 2 > of).then(|| MissingStage { signal: self.names[index].clone(), missing: *most, of })
    }
}

fn bump(counts: &mut Vec<u64>, index: usize) {
    if counts.len() <= index {
        counts.resize(index + 1, 0);
    }
    counts[index] += 1;
}

/// The nearest-rank 50th, 95th and 99th percentiles of `samples`.
fn percentiles(mut samples: Vec<f32>) -> Percentiles {
    if samples.is_empty() {
        return Percentiles::default();
    }
    samples.sort_by(f32::total_cmp);
    let rank = |p: f64| {
        let index = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1;
        // Rounded to the microsecond: f32 digits beyond it are noise.
        Some((f64::from(samples[index]) * 1e6).round() / 1e6)
    };
    Percentiles { p50: rank(0.50), p95: rank(0.95), p99: rank(0.99) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcomes(names: &[Arc<str>], fates: &[(SignalStatus, Option<f64>)]) -> Vec<SignalOutcome> {
        names
            .iter()
            .zip(fates)
            .map(|(name, (status, at))| SignalOutcome {
                signal: name.clone(),
                status: *status,
                after_issue_seconds: *at,
                service_version: None,
            })
            .collect()
    }

    fn names() -> Vec<Arc<str>> {
        vec!["sent".into(), "executed".into(), "settled".into()]
    }

    use SignalStatus::{Missing, NotReached, Received};

    #[test]
    fn percentiles_are_nearest_rank_over_the_samples() {
        let samples: Vec<f32> = (1..=100).map(|i| i as f32 / 100.0).collect();
        let p = percentiles(samples);
        assert_eq!((p.p50, p.p95, p.p99), (Some(0.5), Some(0.95), Some(0.99)));
        let one = percentiles(vec![2.0]);
        assert_eq!((one.p50, one.p95, one.p99), (Some(2.0), Some(2.0), Some(2.0)));
        assert_eq!(percentiles(Vec::new()), Percentiles::default());
    }

    #[test]
    fn missing_is_a_wait_in_vain_not_reached_is_no_wait_and_latency_is_from_issue_and_previous_stage() {
        let names = names();
        let mut stages = Stages::new(10, &[]);
        stages.record(&outcomes(&names, &[(Received, Some(0.1)), (Received, Some(0.4)), (Received, Some(1.0))]), false);
        stages.record(&outcomes(&names, &[(Received, Some(0.2)), (Missing, None), (NotReached, None)]), true);
        stages.record(&outcomes(&names, &[(Missing, None), (NotReached, None), (Received, Some(0.9))]), true);
        let health = stages.health(&names);
        let counts: Vec<_> = health.iter().map(|s| (s.signal.as_str(), s.reached, s.arrived, s.missing)).collect();
        assert_eq!(counts, [("sent", 3, 2, 1), ("executed", 2, 1, 1), ("settled", 2, 2, 0)]);
        assert_eq!(health[1].latency_from_issue_seconds.p50, Some(0.4));
        assert_eq!(health[1].latency_from_previous_seconds.p50, Some(0.3), "0.4 after issue, 0.1 after `sent`");
        assert_eq!(health[0].latency_from_previous_seconds.p99, Some(0.2), "the first stage's is from the issue");
        // `settled` arrived twice, but only once after `executed` did.
        assert_eq!(health[2].latency_from_issue_seconds.p99, Some(1.0));
        assert_eq!(health[2].latency_from_previous_seconds.p50, Some(0.6));
        assert_eq!(health[2].latency_from_previous_seconds.p99, Some(0.6));
    }

    #[test]
    fn the_window_keeps_the_last_executions_only_and_skips_those_that_did_not_run() {
        let names = names();
        let mut stages = Stages::new(STAGE_WINDOW, &[]);
        stages.record(&outcomes(&names, &[(Missing, None), (NotReached, None), (NotReached, None)]), true);
        for _ in 0..STAGE_WINDOW {
            stages.record(&outcomes(&names, &[(Received, Some(0.1)), (Received, Some(0.2)), (Received, None)]), false);
        }
        stages.record(&[], false);
        assert_eq!(stages.executions.len(), STAGE_WINDOW);
        assert_eq!((std::mem::size_of::<Execution>(), std::mem::size_of::<Stage>()), (24, 12), "as documented");
        let health = stages.health(&names);
        assert_eq!((health[0].reached, health[0].arrived, health[0].missing), (500, 500, 0), "the miss fell out");
        assert_eq!(health[2].reached, 0, "arrived without its time: not counted");

        let empty = Stages::new(5, &[]).health(&names);
        assert_eq!(empty.len(), 3, "every declared stage is shown before any execution");
        assert_eq!(empty[1].reached, 0);
    }

    #[test]
    fn the_stage_missing_in_most_failures_is_named_the_earliest_on_a_tie() {
        let names = names();
        let mut stages = Stages::new(10, &[]);
        assert_eq!(stages.missing_in_failures(3), None);
        stages.record(&outcomes(&names, &[(Missing, None), (NotReached, None), (NotReached, None)]), true);
        for _ in 0..3 {
            stages.record(&outcomes(&names, &[(Received, Some(0.1)), (Missing, None), (Missing, None)]), true);
            stages.record(&outcomes(&names, &[(Received, Some(0.1)), (Received, Some(0.2)), (Missing, None)]), false);
        }
        let named = stages.missing_in_failures(3).unwrap();
        assert_eq!(named.to_string(), "`executed` missing in 3 of the last 3 failures", "passes are not counted");
        let four = stages.missing_in_failures(4).unwrap();
        assert_eq!((&*four.signal, four.missing, four.of), ("executed", 3, 4));
        stages.record(&outcomes(&names, &[(Missing, None), (NotReached, None), (NotReached, None)]), true);
        stages.record(&outcomes(&names, &[(Missing, None), (NotReached, None), (NotReached, None)]), true);
        assert_eq!(stages.missing_in_failures(4), None, "two of four each: no stage in most of them");
    }
}
