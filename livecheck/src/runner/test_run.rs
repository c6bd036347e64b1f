use std::{
    fmt::Write as _,
    future::Future,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use serde_json::value::RawValue;
use tokio::time::Instant;

use super::signal_router::SignalSlots;
use crate::{
    case::CaseCore,
    context::TestContext,
    wire::{ExecutionRef, RawArgs, RawExecution, SignalLatency, TestExecution},
    Error, Result,
};

tokio::task_local! {
    static EXECUTING: Arc<TestRun>;
}

/// The test executing in this task, if any.
pub(crate) fn executing_test() -> Option<Arc<TestRun>> {
    EXECUTING.try_with(Arc::clone).ok()
}

/// One execution of a case, as its body sees it: the test's identity, and a log of the steps it takes.
pub struct TestRun {
    /// Id, case, issue and expiry time (shared with the test's current-test scope).
    context: TestContext,
    args: RawArgs,
    pub(crate) case: Arc<CaseCore>,
    pub(crate) signals: SignalSlots,
    started: Instant,
    journal: Mutex<Journal>,
}

#[derive(Default)]
struct Journal {
    steps: Vec<Step>,
    latency: Vec<(usize, f64)>,
}

/// One entry of a test's step log.
pub(crate) struct Step {
    /// Seconds since the test started.
    pub(crate) at: f64,
    pub(crate) kind: StepKind,
}

/// What a step was.
pub(crate) enum StepKind {
    Waiting { signal: usize, timeout: Duration },
    Received { signal: usize, waited: f64 },
    TimedOut { signal: usize, timeout: Duration },
    BadValue { signal: usize },
    Note(String),
}

impl TestRun {
    pub(crate) fn new(execution: RawExecution, case: Arc<CaseCore>) -> Self {
        let (context, args) = execution.into_parts();
        TestRun {
            context: context.signed_by(case.publisher.signer.as_ref()),
            args,
            signals: SignalSlots::new(case.signal_count()),
            case,
            started: Instant::now(),
            journal: Mutex::default(),
        }
    }

    /// Runs `future` as this test's body: the test is executing (signals can be waited for) and current.
    pub(crate) fn scope<F: Future>(self: Arc<Self>, future: F) -> impl Future<Output = F::Output> {
        let context = self.context.clone();
        EXECUTING.scope(self, crate::context::scope(Some(context), future))
    }

    /// The test id.
    pub fn id(&self) -> &str {
        self.context.id()
    }

    /// The execution: id, case, arguments, issue and expiry time (a copy).
    pub fn execution(&self) -> TestExecution {
        self.args.to_execution(&self.context)
    }

    /// The execution for writing, without copying it.
    pub(crate) fn execution_ref(&self) -> ExecutionRef<'_> {
        let c = &self.context;
        ExecutionRef {
            id: c.id(),
            case_name: c.case_name(),
            timestamp: c.timestamp(),
            expires: c.expires(),
            args: &self.args,
            trace_id: c.trace_id(),
            by_hand: c.is_by_hand(),
            service_version: c.service_version(),
        }
    }

    /// The arguments decoded into the case's argument type.
    pub(crate) fn args<A: serde::de::DeserializeOwned>(&self) -> Result<A> {
        self.args.decode()
    }

    /// The test as it travels in headers.
    pub fn context(&self) -> &TestContext {
        &self.context
    }

    /// Time since the test started executing.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Seconds from the test's issue (a time of day) to the start of its run, given the wall-clock time `now_wall`
    /// at which it has run `runtime` seconds: arrival times, in seconds since the run started, plus this are
    /// seconds since the issue.
    pub(crate) fn started_after_issue(&self, now_wall: chrono::DateTime<chrono::Utc>, runtime: f64) -> f64 {
        (now_wall - self.context().timestamp()).num_microseconds().unwrap_or(0) as f64 / 1e6 - runtime
    }

    /// When the test started executing.
    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    /// Adds a line to the test's step log (logged at debug after the test's outcome line, or at once with
    /// `realtime_logs`).
    pub fn log(&self, message: impl Into<String>) {
        self.step(StepKind::Note(message.into()));
    }

    fn journal(&self) -> MutexGuard<'_, Journal> {
        crate::sync::lock(&self.journal)
    }

    fn step(&self, kind: StepKind) {
        let step = Step { at: self.elapsed().as_secs_f64(), kind };
        if self.case.settings.realtime_logs {
            tracing::info!(case = %self.case.name, test = %self.id(), "{}", self.describe(&step));
        }
        let mut journal = self.journal();
        if journal.steps.capacity() == 0 {
            // Most tests take a few steps; every waiting test holds this, so start small.
            journal.steps.reserve_exact(2);
        }
        journal.steps.push(step);
    }

    pub(crate) async fn wait_for_signal(&self, index: usize, timeout: Duration) -> Result<Box<RawValue>> {
        self.step(StepKind::Waiting { signal: index, timeout });
        let started = Instant::now();
        let woken = || self.case.publisher.metrics.signal_wakeups.inc();
        match tokio::time::timeout_at(started + timeout, self.signals.wait_for(index, woken)).await {
            Ok(value) => {
                let waited = started.elapsed().as_secs_f64();
                self.journal().latency.push((index, waited));
                self.step(StepKind::Received { signal: index, waited });
                Ok(value)
            }
            Err(_) => {
                self.step(StepKind::TimedOut { signal: index, timeout });
                Err(Error::SignalTimeout { signal: self.case.signal_name(index).to_owned(), timeout })
            }
        }
    }

    pub(crate) fn note_decode_error(&self, index: usize) {
        self.step(StepKind::BadValue { signal: index });
    }

    /// Seconds waited per signal, in order.
    pub(crate) fn signal_latency(&self) -> SignalLatency {
        let journal = self.journal();
        SignalLatency(journal.latency.iter().map(|(i, secs)| (self.case.signal_name(*i).to_owned(), *secs)).collect())
    }

    /// Looks at the step log.
    pub(crate) fn with_steps<R>(&self, look: impl FnOnce(&[Step]) -> R) -> R {
        look(&self.journal().steps)
    }

    /// Takes the step log out of the test (once it is over and its outcome logged).
    pub(crate) fn take_steps(&self) -> Vec<Step> {
        std::mem::take(&mut self.journal().steps)
    }

    /// The step log, one indented line per step.
    pub(crate) fn steps_text(&self) -> String {
        let journal = self.journal();
        let mut text = String::new();
        for step in &journal.steps {
            let _ = writeln!(text, "  +{:.3}s {}", step.at, self.describe(step));
        }
        text
    }

    fn describe(&self, step: &Step) -> String {
        describe(step, |i| self.case.signal_name(i))
    }
}

/// A step in words; `signal_name` names a signal by its index.
pub(crate) fn describe<'a>(step: &Step, signal_name: impl Fn(usize) -> &'a str) -> String {
    match &step.kind {
        StepKind::Waiting { signal, timeout } => {
            format!("waiting for `{}` (timeout {timeout:?})", signal_name(*signal))
        }
        StepKind::Received { signal, waited } => format!("received `{}` after {waited:.3}s", signal_name(*signal)),
        StepKind::TimedOut { signal, timeout } => {
            format!("`{}` did not arrive within {timeout:?}", signal_name(*signal))
        }
        StepKind::BadValue { signal } => format!("`{}` carried a value that does not decode", signal_name(*signal)),
        StepKind::Note(message) => message.clone(),
    }
}

impl std::fmt::Debug for TestRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestRun").field("id", &self.id()).field("case", &self.case.name).finish()
    }
}
