use std::sync::Arc;

use super::{panic_capture::CatchPanic, signal_router::Occupied, BusPosition, SignalRouter, TestRun, Verdict};
use crate::{
    case::RegisteredCase,
    transport::BoxFuture,
    wire::{timestamp, RawExecution, ReportWithExecution, TestExecution, TestReport},
    CaseResult,
};

/// An execution's id, issue time and expiry.
pub(crate) type Identity = (String, chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>);

/// An execution that reached a verdict.
pub(crate) struct Finished {
    /// The report; for a test that ran, its `test` is left `None` and taken from `run` when the report is written
    /// (see [`Finished::test_id`]).
    pub(crate) report: TestReport,
    pub(crate) verdict: Verdict,
    /// The run, for its step log; `None` when the test did not run.
    pub(crate) run: Option<Arc<TestRun>>,
    /// Where the signals it was given were read: needed until its report is out.
    pub(crate) bus_positions: Vec<BusPosition>,
}

/// An execution whose body is ready to run: poll `body` to its end, then [`Started::conclude`]. Kept small, as
/// it is what every waiting test holds.
pub(crate) struct Started {
    pub(crate) body: CatchPanic<BoxFuture<'static, CaseResult>>,
    run: Arc<TestRun>,
}

/// What became of an execution handed to [`start`].
pub(crate) enum Start {
    /// Its body is ready to run.
    Run(Started),
    /// Skipped (inactive case, expired, its id used by another execution running now): its verdict.
    Skipped(Box<Finished>),
    /// A copy of the execution running now (same id, issue time and case): no second verdict.
    Copy,
}

/// Prepares one execution of `case`: skips it (inactive case, expired, id used by another execution running now),
/// recognises a copy of one running now (the caller asks [`SignalRouter::is_executing`] first, before its other
/// checks; one started in between is caught here), or registers it for its signals and builds its body.
pub(crate) fn start(case: &dyn RegisteredCase, execution: RawExecution, router: &SignalRouter) -> Start {
    let core = case.core();
    let publisher = &core.publisher;
    core.health().test_received(tokio::time::Instant::now());
    if !core.settings.active {
        return Start::Skipped(skipped(&core.name, execution.into_execution(), "case is inactive".to_owned()));
    }
    // Computed for each execution, never cached.
    if execution.expires <= publisher.clock.now() {
        let reason = format!("execution expired at {}", timestamp::to_json_text(&execution.expires));
        return Start::Skipped(skipped(&core.name, execution.into_execution(), reason));
    }
    let run = Arc::new(TestRun::new(execution, core.clone()));
    let stale = match router.register(&run) {
        Ok(stale) => stale,
        // Started by another task between the check above and now.
        Err(Occupied::SameExecution) => return Start::Copy,
        Err(Occupied::OtherExecution) => {
            let reason = "an execution with this test id is already running".to_owned();
            return Start::Skipped(skipped(&core.name, run.execution(), reason));
        }
    };
    publisher.metrics.signals_stale.add(stale as u64);
    let body = match case.start(run.clone()) {
        Ok(body) => body,
        Err(error) => Box::pin(std::future::ready(Err(error.into()))),
    };
    Start::Run(Started { body: CatchPanic::new(body), run })
}

impl Started {
    /// Stops routing signals to the test, interrupted before its verdict: its signals stay needed, to be read
    /// again when it runs again.
    pub(crate) fn abandon(self, router: &SignalRouter) {
        let _still_needed = router.release(&self.run, false);
    }

    /// The execution's context.
    pub(crate) fn context(&self) -> &crate::context::TestContext {
        self.run.context()
    }

    /// The execution's id, issue time and expiry.
    pub(crate) fn identity(&self) -> Identity {
        let context = self.run.context();
        (context.id().to_owned(), context.timestamp(), context.expires())
    }

    /// The verdict and report of what the body returned.
    pub(crate) fn conclude(
        self,
        router: &SignalRouter,
        result: Result<CaseResult, super::panic_capture::CaughtPanic>,
    ) -> Finished {
        let run = self.run;
        let bus_positions = router.release(&run, true);
        let verdict = match Verdict::of(result) {
            Verdict::Pass => {
                let over = super::budget::over_budget(&run, run.case.publisher.clock.now());
                if over.is_empty() {
                    Verdict::Pass
                } else {
                    Verdict::Degraded(over)
                }
            }
            verdict => verdict,
        };
        let mut report = TestReport::new(&*run.case.name, verdict.state(), None);
        if let Verdict::Degraded(over) = &verdict {
            report.over_budget = over.clone();
        }
        report.runtime = Some(run.elapsed().as_secs_f64());
        report.signal_latency = run.signal_latency();
        report.error = verdict.error();
        report.traceback = match &verdict {
            Verdict::Pass | Verdict::Degraded(_) | Verdict::Skip(_) => None,
            Verdict::Fail { message, location } => Some(format!(
                "assertion failed at {}: {message}\nsteps:\n{}",
                location.as_deref().unwrap_or("an unknown location"),
                run.steps_text()
            )),
            Verdict::Error(message) | Verdict::Timeout { message, .. } => {
                Some(format!("{message}\nsteps:\n{}", run.steps_text()))
            }
        };
        Finished { report, verdict, run: Some(run), bus_positions }
    }
}

impl Finished {
    /// The test id.
    pub(crate) fn test_id(&self) -> &str {
        match (&self.run, &self.report.test) {
            (Some(run), _) => run.id(),
            (None, Some(test)) => &test.id,
            (None, None) => "?",
        }
    }

    /// The execution's id, issue time and expiry (`None` for a report without its execution).
    pub(crate) fn identity(&self) -> Option<Identity> {
        match (&self.run, &self.report.test) {
            (Some(run), _) => {
                let context = run.context();
                Some((context.id().to_owned(), context.timestamp(), context.expires()))
            }
            (None, Some(test)) => Some((test.id.clone(), test.timestamp, test.expires)),
            (None, None) => None,
        }
    }

    /// The trace id of the request the test was sampled from, if any.
    pub(crate) fn trace_id(&self) -> Option<&str> {
        match (&self.run, &self.report.test) {
            (Some(run), _) => run.context().trace_id(),
            (None, test) => test.as_ref().and_then(|t| t.trace_id.as_deref()),
        }
    }

    /// Whether the test was started by hand rather than sampled from traffic.
    pub(crate) fn by_hand(&self) -> bool {
        match (&self.run, &self.report.test) {
            (Some(run), _) => run.context().is_by_hand(),
            (None, test) => test.as_ref().is_some_and(|t| t.by_hand),
        }
    }

    /// The version of the service that sampled the test, if it said.
    pub(crate) fn service_version(&self) -> Option<&str> {
        match (&self.run, &self.report.test) {
            (Some(run), _) => run.context().service_version(),
            (None, test) => test.as_ref().and_then(|t| t.service_version.as_deref()),
        }
    }

    /// When the test was issued.
    pub(crate) fn issued(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        match (&self.run, &self.report.test) {
            (Some(run), _) => Some(run.context().timestamp()),
            (None, test) => test.as_ref().map(|t| t.timestamp),
        }
    }

    /// The report as JSON, with its execution.
    pub(crate) fn encode(&self) -> serde_json::Result<Vec<u8>> {
        match &self.run {
            Some(run) => serde_json::to_vec(&ReportWithExecution { report: &self.report, test: &run.execution_ref() }),
            None => serde_json::to_vec(&self.report),
        }
    }
}

fn skipped(case_name: &str, execution: TestExecution, reason: String) -> Box<Finished> {
    let verdict = Verdict::Skip(reason);
    let mut report = TestReport::new(case_name, verdict.state(), Some(execution));
    report.error = verdict.error();
    Box::new(Finished { report, verdict, run: None, bus_positions: Vec::new() })
}
