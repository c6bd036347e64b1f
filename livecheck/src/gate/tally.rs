//! Results per service version, as executions finish: an [`Observer`] keeping, per case and version, the counts
//! of each outcome and the recent executions and stage latencies a [`Verdict`](super::Verdict) compares.
//!
//! An execution counts for the version that sampled it (its pass, failure, runtime); a stage's latency counts for
//! the version that handled the stage (the version its signal carries, else the execution's). Memory is bounded:
//! per case the [`DEFAULT_PLACES`] versions seen most recently (older ones are folded into `other`, counts only),
//! per version the last [`KEPT`] executions and stage latencies, and [`MAX_REASONS`] distinct failure reasons.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, RwLock},
};

use chrono::{DateTime, Utc};

use super::{
    recent_versions::{RecentVersions, DEFAULT_PLACES, OTHER},
    results::{Counts, VersionResults},
    verdict::{compare, Side, Verdict},
    Thresholds, Window,
};
use crate::{
    history::SignalStatus,
    observe::{ExecutionFinished, Observer},
    wire::State,
};

/// Executions (and stage latencies) kept per version for comparisons.
pub(crate) const KEPT: usize = 2_000;
/// Distinct failure reasons kept per version; beyond, failures count under one "other reasons" entry.
pub(crate) const MAX_REASONS: usize = 32;
/// Characters of a failure message kept.
const MESSAGE_CHARS: usize = 300;

/// Per-version results of an instance's cases. Add it to an app with
/// [`LiveCheckBuilder::observer`](crate::LiveCheckBuilder::observer) (the web server has one of its own), then
/// read [`results`](Self::results) or ask for a [`verdict`](Self::verdict).
///
/// ```
/// use std::sync::Arc;
/// use livecheck::{gate::{Thresholds, VersionTally, Window}, LiveCheck};
///
/// let tally = Arc::new(VersionTally::default());
/// let livecheck = LiveCheck::builder().observer(tally.clone()).build();
/// // … later, during a rollout:
/// let verdict = tally.verdict("test_order", "v2", "v1", &Thresholds::default(), Window::All);
/// assert!(verdict.is_inconclusive()); // nothing ran yet: never a pass by default
/// # drop(livecheck);
/// ```
#[derive(Default)]
pub struct VersionTally {
    cases: RwLock<HashMap<Arc<str>, Arc<Mutex<CaseVersions>>>>,
}

impl std::fmt::Debug for VersionTally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VersionTally").field("cases", &crate::sync::read(&self.cases).len()).finish()
    }
}

/// One case's versions.
struct CaseVersions {
    /// The declared stages, in order.
    stages: Vec<Arc<str>>,
    recent: RecentVersions,
    /// In the order of `recent`'s places.
    versions: Vec<VersionRecord>,
    /// What versions that lost their place had counted.
    other: Counts,
}

/// Why an execution failed: its state, the stage where it broke and the contract's message.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Reason {
    pub(crate) state: State,
    pub(crate) stage: Option<Arc<str>>,
    pub(crate) message: Arc<str>,
}

/// One execution, as a comparison needs it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sample {
    pub(crate) finished_at: DateTime<Utc>,
    pub(crate) passed: bool,
    pub(crate) runtime: Option<f64>,
    /// Index into the version's reasons, for a failure.
    pub(crate) reason: Option<u16>,
}

/// One version of one case.
pub(crate) struct VersionRecord {
    pub(crate) version: Arc<str>,
    pub(crate) counts: Counts,
    pub(crate) executions: VecDeque<Sample>,
    /// Per declared stage: when and how long (seconds from the previous stage) when this version handled it.
    pub(crate) stages: Vec<VecDeque<(DateTime<Utc>, f64)>>,
    pub(crate) reasons: Vec<Reason>,
}

impl VersionRecord {
    fn new(version: Arc<str>, stages: usize) -> Self {
        VersionRecord {
            version,
            counts: Counts::default(),
            executions: VecDeque::new(),
            stages: vec![VecDeque::new(); stages],
            reasons: Vec::new(),
        }
    }

    fn reason_index(&mut self, reason: Reason) -> u16 {
        if let Some(found) = self.reasons.iter().position(|r| *r == reason) {
            return found as u16;
        }
        if self.reasons.len() < MAX_REASONS {
            self.reasons.push(reason);
            return (self.reasons.len() - 1) as u16;
        }
        MAX_REASONS as u16
    }

    /// The reason at `index` (the "other reasons" entry beyond those kept).
    pub(crate) fn reason(&self, index: u16) -> Reason {
        self.reasons.get(usize::from(index)).cloned().unwrap_or_else(|| Reason {
            state: State::Fail,
            stage: None,
            message: "(one of many other failure reasons)".into(),
        })
    }
}

impl CaseVersions {
    fn new(stages: &[Arc<str>]) -> Self {
        CaseVersions {
            stages: stages.to_vec(),
            recent: RecentVersions::new(DEFAULT_PLACES),
            versions: Vec::new(),
            other: Counts::default(),
        }
    }

    /// The record of `version`, seen now (taking the place of the version seen longest ago when all are taken).
    fn record(&mut self, version: &str) -> &mut VersionRecord {
        let (version, placed) = self.recent.see(version);
        if placed.evicted.is_some() {
            let evicted = self.versions.remove(0);
            self.other.absorb(&evicted.counts);
        }
        match self.versions.iter().position(|r| r.version == version) {
            Some(found) => {
                let record = self.versions.remove(found);
                self.versions.push(record);
            }
            None => self.versions.push(VersionRecord::new(version, self.stages.len())),
        }
        self.versions.last_mut().expect("just placed")
    }

    fn find(&self, version: &str) -> Option<&VersionRecord> {
        self.versions.iter().find(|r| &*r.version == version)
    }
}

/// Keeps at most [`KEPT`] entries.
fn push_bounded<T>(queue: &mut VecDeque<T>, item: T) {
    if queue.len() == KEPT {
        queue.pop_front();
    }
    queue.push_back(item);
}

/// Where an execution broke: for a timeout the signal it waited for in vain; otherwise the last declared signal
/// it waited for (the stage whose contract it was checking).
fn broken_stage(execution: &ExecutionFinished<'_>) -> Option<Arc<str>> {
    if let Some(missing) = execution.signals.iter().find(|o| o.status == SignalStatus::Missing) {
        return Some(missing.signal.clone());
    }
    let waited = &execution.report.signal_latency.0;
    execution.declared_signals.iter().rev().find(|name| waited.iter().any(|(signal, _)| **signal == ***name)).cloned()
}

impl VersionTally {
    fn case(&self, name: &str, stages: &[Arc<str>]) -> Arc<Mutex<CaseVersions>> {
        if let Some(found) = crate::sync::read(&self.cases).get(name) {
            return found.clone();
        }
        let mut cases = crate::sync::write(&self.cases);
        cases.entry(name.into()).or_insert_with(|| Arc::new(Mutex::new(CaseVersions::new(stages)))).clone()
    }

    /// The results of each version of `case` kept, most recently seen first (`other` last, when versions were
    /// folded into it); `None` when no execution of `case` carried a version.
    pub fn results(&self, case: &str) -> Option<Vec<VersionResults>> {
        let case = crate::sync::read(&self.cases).get(case)?.clone();
        let case = crate::sync::lock(&case);
        let mut results: Vec<VersionResults> =
            case.versions.iter().rev().map(|record| VersionResults::of(record, &case.stages)).collect();
        if case.other != Counts::default() {
            results.push(VersionResults::folded(OTHER, &case.other));
        }
        Some(results)
    }

    /// Compares `canary` with `baseline` on `case`'s executions in `window`: [`Verdict`] Successful, Failed (with
    /// the stage, the contract and the executions that show it) or Inconclusive (too few executions, or worse
    /// but not significantly yet).
    pub fn verdict(
        &self,
        case: &str,
        canary: &str,
        baseline: &str,
        thresholds: &Thresholds,
        window: Window,
    ) -> Verdict {
        let found = crate::sync::read(&self.cases).get(case).cloned();
        let Some(found) = found else {
            return Verdict::unknown(case, canary, baseline, thresholds, "no execution of this case carried a version");
        };
        let versions = crate::sync::lock(&found);
        let now = Utc::now();
        let side = |version: &str| versions.find(version).map(|record| Side::of(record, &versions.stages, window, now));
        compare(case, canary, baseline, side(canary), side(baseline), thresholds)
    }

    /// Counts `execution`: its outcome for `version`, each stage's latency for the version that handled it.
    fn record(&self, execution: &ExecutionFinished<'_>, version: &str) {
        let case = self.case(execution.case, execution.declared_signals);
        let mut case = crate::sync::lock(&case);
        let state = execution.report.state;
        let at = execution.finished_at;
        let record = case.record(version);
        record.counts.add(state);
        let passed = Counts::passes(state);
        let failed = matches!(state, State::Fail | State::Error | State::Timeout);
        if passed || failed {
            let reason = failed.then(|| {
                // The contract is the message's first line: an assertion's own message, without the values
                // (`left: "buy"`) that differ from one execution to the next.
                let error = execution.report.error.as_deref().unwrap_or(state.as_str());
                let mut message = error.lines().next().unwrap_or(error).trim_end().to_owned();
                if let Some((cut, _)) = message.char_indices().nth(MESSAGE_CHARS) {
                    message.truncate(cut);
                }
                record.reason_index(Reason { state, stage: broken_stage(execution), message: message.into() })
            });
            let sample = Sample { finished_at: at, passed, runtime: execution.report.runtime, reason };
            push_bounded(&mut record.executions, sample);
        }
        // Stages: the latency from the previous declared signal's arrival (from the issue for the first).
        if case.stages.len() != execution.signals.len() {
            return;
        }
        let mut previous = Some(0.0);
        for (index, outcome) in execution.signals.iter().enumerate() {
            let arrived = outcome.after_issue_seconds.filter(|_| outcome.status == SignalStatus::Received);
            if let (Some(at_issue), Some(before)) = (arrived, previous) {
                let handled_by = outcome.service_version.as_deref().unwrap_or(version);
                let latency = (at_issue - before).max(0.0);
                push_bounded(&mut case.record(handled_by).stages[index], (at, latency));
            }
            previous = arrived;
        }
        // The execution's version is the one seen last: it keeps its place before any stage's version.
        case.record(version);
    }
}

impl Observer for VersionTally {
    fn execution_finished(&self, execution: &ExecutionFinished<'_>) {
        if let Some(version) = execution.service_version {
            self.record(execution, version);
        }
    }
}
