//! A case's recent finished executions, the newest last, at most a fixed number.

use std::collections::VecDeque;

use chrono::{DateTime, SubsecRound, Utc};

use super::trace::{truncate, ExecutionTrace, MAX_TEXT};
use crate::{
    context::TestContext,
    runner::{Finished, Verdict},
};

/// One finished execution as the history keeps it: no signal values, a bounded step log and bounded messages.
pub(crate) struct FinishedExecution {
    pub(super) context: TestContext,
    pub(super) started_at: DateTime<Utc>,
    pub(super) finished_at: DateTime<Utc>,
    /// Seconds it ran; `None` when it did not run (skipped).
    pub(super) runtime: Option<f64>,
    pub(super) verdict: Verdict,
    /// `None` when it did not run.
    pub(super) trace: Option<ExecutionTrace>,
}

impl FinishedExecution {
    /// What to keep of `finished`, which ended at `finished_at`; takes the step log out of its run (log the
    /// outcome first). `None` for a report without its execution (never the case for a test).
    pub(crate) fn new(finished: &Finished, finished_at: DateTime<Utc>) -> Option<Self> {
        let runtime = finished.report.runtime;
        let (context, trace) = match (&finished.run, &finished.report.test) {
            (Some(run), _) => {
                let runtime = runtime.unwrap_or_else(|| run.elapsed().as_secs_f64());
                (run.context().clone(), Some(ExecutionTrace::finished(run, runtime)))
            }
            (None, Some(execution)) => (TestContext::of(execution), None),
            (None, None) => return None,
        };
        let ran_for = chrono::Duration::microseconds((runtime.unwrap_or(0.0) * 1e6) as i64);
        Some(FinishedExecution {
            context,
            started_at: finished_at.checked_sub_signed(ran_for).unwrap_or(finished_at).trunc_subsecs(6),
            finished_at,
            runtime,
            verdict: kept(&finished.verdict),
            trace,
        })
    }

    pub(super) fn id(&self) -> &str {
        self.context.id()
    }
}

/// A copy of `verdict` with its texts cut to [`MAX_TEXT`].
fn kept(verdict: &Verdict) -> Verdict {
    let cut = |text: &String| {
        let mut text = text.clone();
        truncate(&mut text, MAX_TEXT);
        text
    };
    match verdict {
        Verdict::Pass => Verdict::Pass,
        Verdict::Degraded(over) => Verdict::Degraded(over.clone()),
        Verdict::Fail { message, location } => Verdict::Fail { message: cut(message), location: location.clone() },
        Verdict::Error(message) => Verdict::Error(cut(message)),
        Verdict::Timeout { message, signal } => Verdict::Timeout { message: cut(message), signal: signal.clone() },
        Verdict::Skip(message) => Verdict::Skip(cut(message)),
    }
}

/// The last `capacity` finished executions of one case.
pub(crate) struct ExecutionHistory {
    capacity: usize,
    executions: VecDeque<FinishedExecution>,
}

impl ExecutionHistory {
    /// An empty history keeping up to `capacity` executions (0 keeps none).
    pub(crate) fn new(capacity: usize) -> Self {
        ExecutionHistory { capacity, executions: VecDeque::new() }
    }

    /// How many executions it keeps at most.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Adds the newest execution, forgetting the oldest beyond the capacity.
    pub(crate) fn push(&mut self, execution: FinishedExecution) {
        if self.capacity == 0 {
            return;
        }
        if self.executions.len() == self.capacity {
            self.executions.pop_front();
        }
        self.executions.push_back(execution);
    }

    /// The executions, newest first.
    pub(crate) fn newest_first(&self) -> impl Iterator<Item = &FinishedExecution> {
        self.executions.iter().rev()
    }

    /// The newest execution with test id `id`.
    pub(crate) fn find(&self, id: &str) -> Option<&FinishedExecution> {
        self.newest_first().find(|execution| execution.id() == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{State, TestExecution, TestReport};

    fn skipped(id: &str) -> FinishedExecution {
        let now = Utc::now();
        let execution = TestExecution::new(id.to_owned(), "case", now, now, &()).unwrap();
        let finished = Finished {
            report: TestReport::new("case", State::Skip, Some(execution)),
            verdict: Verdict::Skip("x".repeat(2 * MAX_TEXT)),
            run: None,
            bus_positions: Vec::new(),
        };
        FinishedExecution::new(&finished, now).unwrap()
    }

    #[test]
    fn keeps_the_newest_up_to_its_capacity() {
        let mut history = ExecutionHistory::new(2);
        for id in ["a", "b", "c"] {
            history.push(skipped(id));
        }
        let ids: Vec<_> = history.newest_first().map(FinishedExecution::id).collect();
        assert_eq!(ids, ["c", "b"]);
        assert!(history.find("a").is_none());
        assert!(history.find("b").is_some());
        let Verdict::Skip(reason) = &history.find("c").unwrap().verdict else { panic!("a skip") };
        assert!(reason.len() < MAX_TEXT + 8, "messages are cut");

        let mut off = ExecutionHistory::new(0);
        off.push(skipped("a"));
        assert_eq!(off.newest_first().count(), 0);
    }
}
