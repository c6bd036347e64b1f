use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{panic_capture::CatchPanic, TestRun, Verdict};
use crate::{
    case::RegisteredCase,
    wire::{timestamp, TestExecution, TestReport},
};

/// An execution that reached a verdict.
pub(crate) struct Finished {
    pub(crate) report: TestReport,
    pub(crate) verdict: Verdict,
    /// The run, for its step log; `None` when the test did not run.
    pub(crate) run: Option<Arc<TestRun>>,
}

/// Runs one execution of `case` to its verdict. Returns `None` when `shutdown` interrupted it: no verdict, so that
/// it can run again after a restart.
pub(crate) async fn execute(
    case: &dyn RegisteredCase,
    execution: TestExecution,
    shutdown: &CancellationToken,
) -> Option<Finished> {
    let core = case.core();
    let shared = &core.shared;
    core.health().test_received(tokio::time::Instant::now());
    let now = shared.clock.now();
    if !core.settings.active {
        return Some(skipped(&core.name, execution, "case is inactive".to_owned()));
    }
    if execution.is_expired(now) {
        let reason = format!("execution expired at {}", timestamp::to_json_text(&execution.expires));
        return Some(skipped(&core.name, execution, reason));
    }
    let Some((active, stale)) = shared.router.register(&execution, &core.name, core.signal_count()) else {
        let reason = "an execution with this test id is already running".to_owned();
        return Some(skipped(&core.name, execution, reason));
    };
    shared.metrics.signals_stale.add(stale as u64);

    let run = Arc::new(TestRun::new(execution, core.clone(), active));
    let result = match case.start(run.clone()) {
        Err(error) => Ok(Err(error.into())),
        Ok(body) => {
            let body = CatchPanic::new(body);
            tokio::select! {
                result = body => result,
                _ = shutdown.cancelled() => {
                    shared.router.release(run.execution());
                    return None;
                }
            }
        }
    };
    shared.router.release(run.execution());

    let verdict = Verdict::of(result);
    let mut report = TestReport::new(&*core.name, verdict.state(), Some(run.execution().clone()));
    report.runtime = Some(run.elapsed().as_secs_f64());
    report.signal_latency = run.signal_latency();
    report.error = verdict.error();
    report.traceback = match &verdict {
        Verdict::Pass | Verdict::Skip(_) => None,
        Verdict::Fail { message, location } => Some(format!(
            "assertion failed at {}: {message}\nsteps:\n{}",
            location.as_deref().unwrap_or("an unknown location"),
            run.steps_text()
        )),
        Verdict::Error(message) | Verdict::Timeout(message) => {
            Some(format!("{message}\nsteps:\n{}", run.steps_text()))
        }
    };
    Some(Finished { report, verdict, run: Some(run) })
}

fn skipped(case_name: &str, execution: TestExecution, reason: String) -> Finished {
    let verdict = Verdict::Skip(reason);
    let mut report = TestReport::new(case_name, verdict.state(), Some(execution));
    report.error = verdict.error();
    Finished { report, verdict, run: None }
}
