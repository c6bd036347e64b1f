//! Observers of an instance: told of every execution that reached its verdict and of every change of a case's
//! health, as it happens. The instance's own consumers of these events — the Prometheus metrics of its web server
//! and the alerts to its webhooks — are observers too; add yours with
//! [`LiveCheckBuilder::observer`](crate::LiveCheckBuilder::observer) to export verdicts elsewhere without touching
//! the instance.
//!
//! Observers are called on the task that finished the execution, in the order they were added, before its report
//! is published: keep them quick and never block (hand slow work to a task or a queue of your own). A panicking
//! observer is caught and logged; the others and the instance go on.
//!
//! ```
//! use std::sync::{atomic::{AtomicU64, Ordering}, Arc};
//! use livecheck::{observe::{ExecutionFinished, Observer}, LiveCheck, State};
//!
//! #[derive(Default)]
//! struct Failures(AtomicU64);
//!
//! impl Observer for Failures {
//!     fn execution_finished(&self, execution: &ExecutionFinished<'_>) {
//!         if !execution.report.state.is_ok() {
//!             self.0.fetch_add(1, Ordering::Relaxed);
//!         }
//!     }
//! }
//!
//! let failures = Arc::new(Failures::default());
//! let livecheck = LiveCheck::builder().observer(failures.clone()).build();
//! # let _ = (livecheck, State::Pass);
//! ```

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};

use crate::{
    health::{SuiteFailure, SuiteFailureKind},
    history::SignalStatus,
    wire::TestReport,
};

/// Told of what happens to an instance's cases. Every method has a default that does nothing.
pub trait Observer: Send + Sync + 'static {
    /// An execution reached its verdict (skipped ones too), before its report is published.
    fn execution_finished(&self, execution: &ExecutionFinished<'_>) {
        let _ = execution;
    }

    /// A case's health changed: it failed as a whole (reported, or only updated within
    /// `state_transition_delay`), or it recovered.
    fn health_changed(&self, change: &HealthEvent<'_>) {
        let _ = change;
    }
}

impl<O: Observer + ?Sized> Observer for Arc<O> {
    fn execution_finished(&self, execution: &ExecutionFinished<'_>) {
        (**self).execution_finished(execution);
    }

    fn health_changed(&self, change: &HealthEvent<'_>) {
        (**self).health_changed(change);
    }
}

/// An execution that reached its verdict.
#[derive(Debug)]
#[non_exhaustive]
pub struct ExecutionFinished<'a> {
    /// The case's name.
    pub case: &'a str,
    /// The signals the case declares, in order (their names bound what a label set may hold).
    pub declared_signals: &'a [Arc<str>],
    /// The test id.
    pub test_id: &'a str,
    /// When the service issued it.
    pub issued_at: DateTime<Utc>,
    /// When it reached its verdict, by the instance's clock.
    pub finished_at: DateTime<Utc>,
    /// Its report: state, runtime, per-signal latency, error and trace (its `test` may be left out: see
    /// `test_id` and `issued_at`).
    pub report: &'a TestReport,
    /// The trace id of the request it was sampled from, when it was triggered inside a trace.
    pub trace_id: Option<&'a str>,
    /// Whether it was started by hand (`livecheck trigger`) rather than sampled from traffic.
    pub by_hand: bool,
    /// What became of each declared signal, in declaration order; empty for an execution that did not run
    /// (skipped).
    pub signals: &'a [SignalOutcome],
    /// The version of the service that sampled the test, when it said: the execution's version.
    pub service_version: Option<&'a str>,
}

impl<'a> ExecutionFinished<'a> {
    /// An execution of `case` that reached the verdict of `report` at `at` (issued then too), with no signal
    /// outcome, trace or version: to test an observer, or to feed one (a [`VersionTally`](crate::gate::VersionTally))
    /// from elsewhere.
    pub fn new(
        case: &'a str,
        declared_signals: &'a [Arc<str>],
        test_id: &'a str,
        report: &'a TestReport,
        at: DateTime<Utc>,
    ) -> Self {
        ExecutionFinished {
            case,
            declared_signals,
            test_id,
            issued_at: at,
            finished_at: at,
            report,
            trace_id: None,
            by_hand: false,
            signals: &[],
            service_version: None,
        }
    }

    /// The same, with what became of each declared signal.
    #[must_use]
    pub fn with_signals(mut self, signals: &'a [SignalOutcome]) -> Self {
        self.signals = signals;
        self
    }

    /// The same, sampled by a service of `version`.
    #[must_use]
    pub fn with_service_version(mut self, version: Option<&'a str>) -> Self {
        self.service_version = version;
        self
    }
}

impl SignalOutcome {
    /// Signal `signal` arrived `after_issue_seconds` after the test's issue, sent by a service of `version`.
    pub fn received(signal: Arc<str>, after_issue_seconds: f64, version: Option<Arc<str>>) -> Self {
        SignalOutcome {
            signal,
            status: SignalStatus::Received,
            after_issue_seconds: Some(after_issue_seconds),
            service_version: version,
        }
    }
}

/// What became of one declared signal in a finished execution.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SignalOutcome {
    /// The signal's name.
    pub signal: Arc<str>,
    /// Whether it came, the test waited for it in vain ([`Missing`](SignalStatus::Missing)), or it was not
    /// reached.
    pub status: SignalStatus,
    /// Seconds from the test's issue to its arrival, when it arrived.
    pub after_issue_seconds: Option<f64>,
    /// The version of the service that handled this stage (sent the signal), when it said.
    pub service_version: Option<Arc<str>>,
}

/// A change of a case's health.
#[derive(Debug)]
#[non_exhaustive]
pub enum HealthEvent<'a> {
    /// The case failed as a whole. `reported` is false when the same cause was reported within
    /// `state_transition_delay` (the state is updated, no suite report, no alert).
    SuiteFailed {
        /// The failure: case, kind, state, reason, time.
        failure: &'a SuiteFailure,
        /// Whether it was reported (suite report, ERROR line, alert, `on_suite_fail`).
        reported: bool,
    },
    /// A passing test recovered the case from its suite failure.
    Recovered {
        /// The case's name.
        case: &'a str,
        /// The kind of the suite failure it recovered from.
        from: SuiteFailureKind,
        /// When.
        at: DateTime<Utc>,
    },
}

/// The observers of one app, in the order they were added.
#[derive(Default)]
pub(crate) struct Observers {
    list: RwLock<Vec<Arc<dyn Observer>>>,
}

impl Observers {
    /// Adds `observer` after the others.
    pub(crate) fn add(&self, observer: Arc<dyn Observer>) {
        crate::sync::write(&self.list).push(observer);
    }

    /// Tells every observer that an execution finished.
    pub(crate) fn execution_finished(&self, execution: &ExecutionFinished<'_>) {
        self.each(|observer| observer.execution_finished(execution));
    }

    /// Tells every observer that a case's health changed.
    pub(crate) fn health_changed(&self, change: &HealthEvent<'_>) {
        self.each(|observer| observer.health_changed(change));
    }

    /// Calls each observer under the read lock (no copy of the list per event: observers are added only while the
    /// app is built and its web server bound, never from an observer).
    fn each(&self, call: impl Fn(&dyn Observer)) {
        let list = crate::sync::read(&self.list);
        for observer in list.iter() {
            let called = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call(observer.as_ref())));
            if called.is_err() {
                tracing::error!("an observer panicked; the instance goes on");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::State;

    #[derive(Default)]
    struct Seen(Mutex<Vec<String>>);

    impl Observer for Seen {
        fn execution_finished(&self, execution: &ExecutionFinished<'_>) {
            self.0.lock().unwrap().push(format!("{} {}", execution.test_id, execution.report.state));
        }
    }

    struct Panics;

    impl Observer for Panics {
        fn execution_finished(&self, _: &ExecutionFinished<'_>) {
            panic!("an observer's bug");
        }
    }

    #[test]
    fn every_observer_is_told_in_order_and_a_panicking_one_stops_none_of_the_others() {
        let observers = Observers::default();
        let (first, last) = (Arc::new(Seen::default()), Arc::new(Seen::default()));
        observers.add(first.clone());
        observers.add(Arc::new(Panics));
        observers.add(last.clone());
        let report = TestReport::new("c", State::Pass, None);
        let now = Utc::now();
        let finished = ExecutionFinished {
            case: "c",
            declared_signals: &[],
            test_id: "t-1",
            issued_at: now,
            finished_at: now,
            report: &report,
            trace_id: None,
            by_hand: false,
            signals: &[],
            service_version: None,
        };
        observers.execution_finished(&finished);
        observers.health_changed(&HealthEvent::Recovered { case: "c", from: SuiteFailureKind::Stall, at: now });
        assert_eq!(*first.0.lock().unwrap(), ["t-1 PASS"]);
        assert_eq!(*last.0.lock().unwrap(), ["t-1 PASS"]);
    }
}
