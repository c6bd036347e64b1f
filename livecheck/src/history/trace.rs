//! What an execution did with each signal its case declares, and its step log, as kept for its record.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::SignalStatus;
use crate::{
    observe::SignalOutcome,
    runner::{Finished, Step, StepKind, TestRun},
};

/// Steps kept per execution: the last ones (a step log can grow without bound; the history must not).
pub(super) const MAX_STEPS: usize = 100;

/// The longest text kept of one step or error message, in bytes.
pub(super) const MAX_TEXT: usize = 4096;

/// A finished execution's signals and step log.
pub(super) struct ExecutionTrace {
    /// Per declared signal, in declaration order.
    pub(super) signals: Box<[SignalTrace]>,
    /// Per declared signal, the version of the service that sent it, when it came from one that said.
    pub(super) versions: Box<[Option<Arc<str>>]>,
    /// The last [`MAX_STEPS`] steps.
    pub(super) steps: Vec<Step>,
    /// Steps before those, not kept.
    pub(super) steps_omitted: usize,
}

/// What became of one signal in one execution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct SignalTrace {
    pub(super) status: SignalStatus,
    /// When it arrived, in seconds since the test started executing (negative: it came before).
    pub(super) arrived: Option<f64>,
    /// How long the test waited for it, in seconds.
    pub(super) waited: Option<f64>,
}

impl ExecutionTrace {
    /// The trace of `run`, which ended `runtime` seconds after it started; its steps are taken out of it.
    pub(super) fn finished(run: &TestRun, runtime: f64) -> Self {
        let arrivals = run.signals.arrivals();
        let mut steps = run.take_steps();
        let signals = signal_traces(&steps, &arrivals, runtime, false);
        let steps_omitted = steps.len().saturating_sub(MAX_STEPS);
        steps.drain(..steps_omitted);
        for step in &mut steps {
            if let StepKind::Note(text) = &mut step.kind {
                truncate(text, MAX_TEXT);
            }
        }
        let versions = run.signals.versions().into_boxed_slice();
        ExecutionTrace { signals, versions, steps, steps_omitted }
    }
}

/// What became of each signal `finished` declares, in declaration order, as observers and stage health see it;
/// empty when it did not run. `finished_at` is the time of day it ended. Call it before its steps are taken out
/// (before [`FinishedExecution::new`](super::FinishedExecution::new)).
pub(crate) fn signal_outcomes(
    finished: &Finished,
    names: &[Arc<str>],
    finished_at: DateTime<Utc>,
) -> Vec<SignalOutcome> {
    let Some(run) = &finished.run else { return Vec::new() };
    let runtime = finished.report.runtime.unwrap_or_else(|| run.elapsed().as_secs_f64());
    let arrivals = run.signals.arrivals();
    let versions = run.signals.versions();
    let traces = run.with_steps(|steps| signal_traces(steps, &arrivals, runtime, false));
    let started_after_issue = run.started_after_issue(finished_at, runtime);
    names
        .iter()
        .zip(traces.iter().zip(versions))
        .map(|(name, (trace, version))| SignalOutcome {
            signal: name.clone(),
            status: trace.status,
            after_issue_seconds: trace.arrived.map(|at| started_after_issue + at),
            service_version: version,
        })
        .collect()
}

/// Each signal's fate from the test's steps and the signals' arrival times, `now` seconds after the test started;
/// `running` tells a wait in progress (waiting) from one the test gave up (missing).
pub(super) fn signal_traces(steps: &[Step], arrivals: &[Option<f64>], now: f64, running: bool) -> Box<[SignalTrace]> {
    #[derive(Clone, Copy)]
    enum Wait {
        Never,
        Since(f64),
        Received(f64),
        TimedOut(f64),
    }
    let mut waits = vec![Wait::Never; arrivals.len()];
    for step in steps {
        let (signal, wait) = match &step.kind {
            StepKind::Waiting { signal, .. } => (*signal, Wait::Since(step.at)),
            StepKind::Received { signal, waited } => (*signal, Wait::Received(*waited)),
            StepKind::TimedOut { signal, timeout } => (*signal, Wait::TimedOut(timeout.as_secs_f64())),
            StepKind::BadValue { .. } | StepKind::Note(_) => continue,
        };
        if let Some(slot) = waits.get_mut(signal) {
            *slot = wait;
        }
    }
    arrivals
        .iter()
        .zip(waits)
        .map(|(arrived, wait)| {
            let (status, waited) = match (arrived, wait) {
                (_, Wait::Received(waited)) => (SignalStatus::Received, Some(waited)),
                // Arrived, and not waited for (yet).
                (Some(_), _) => (SignalStatus::Received, None),
                (None, Wait::TimedOut(timeout)) => (SignalStatus::Missing, Some(timeout)),
                (None, Wait::Since(at)) if running => (SignalStatus::Waiting, Some((now - at).max(0.0))),
                // The test ended while waiting (another wait of a `select!` finished first, or it was cut short).
                (None, Wait::Since(at)) => (SignalStatus::Missing, Some((now - at).max(0.0))),
                (None, Wait::Never) => (SignalStatus::NotReached, None),
            };
            SignalTrace { status, arrived: *arrived, waited }
        })
        .collect()
}

/// Cuts `text` to at most `max` bytes, at a character boundary, marking the cut.
pub(super) fn truncate(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    text.truncate(crate::shown::cut(text, max).len());
    text.push_str(" …");
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn step(at: f64, kind: StepKind) -> Step {
        Step { at, kind }
    }

    #[test]
    fn each_signal_is_received_missing_waiting_or_not_reached() {
        let timeout = Duration::from_secs(2);
        let steps = [
            step(0.0, StepKind::Waiting { signal: 0, timeout }),
            step(0.5, StepKind::Received { signal: 0, waited: 0.5 }),
            step(0.5, StepKind::Waiting { signal: 1, timeout }),
            step(2.5, StepKind::TimedOut { signal: 1, timeout }),
        ];
        let arrivals = [Some(0.4), None, Some(-1.0), None];
        let traces = signal_traces(&steps, &arrivals, 2.5, false);
        let statuses: Vec<_> = traces.iter().map(|t| (t.status, t.waited)).collect();
        assert_eq!(
            statuses,
            [
                (SignalStatus::Received, Some(0.5)),
                (SignalStatus::Missing, Some(2.0)),
                (SignalStatus::Received, None),
                (SignalStatus::NotReached, None),
            ]
        );
        assert_eq!(traces[2].arrived, Some(-1.0));

        let waiting = signal_traces(&steps[..3], &[Some(0.4), None], 1.5, true);
        assert_eq!((waiting[1].status, waiting[1].waited), (SignalStatus::Waiting, Some(1.0)));
        let cut_short = signal_traces(&steps[..3], &[Some(0.4), None], 1.5, false);
        assert_eq!(cut_short[1].status, SignalStatus::Missing);
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary() {
        let mut text = "é".repeat(10);
        truncate(&mut text, 5);
        assert_eq!(text, "éé …");
        let mut short = "ok".to_owned();
        truncate(&mut short, 5);
        assert_eq!(short, "ok");
    }
}
