//! The record of one execution, as the JSON API shows it: its verdict, its step log and each signal's fate.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use super::{
    ring::FinishedExecution,
    trace::{signal_traces, SignalTrace, MAX_STEPS},
};
use crate::{
    case::CaseCore,
    runner::{describe, Step, TestRun, Verdict},
    wire::State,
};

/// One execution of a case, finished or running now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExecutionRecord {
    /// The test id.
    pub id: String,
    /// The case's name.
    pub case: String,
    /// Its verdict; `None` while it runs.
    pub state: Option<State>,
    /// When it was issued (by the service that triggered it).
    pub issued_at: DateTime<Utc>,
    /// When this instance started executing it.
    pub started_at: DateTime<Utc>,
    /// When it reached its verdict; `None` while it runs.
    pub finished_at: Option<DateTime<Utc>>,
    /// How long it ran, in seconds; `None` while it runs, and for an execution that was skipped.
    pub runtime_seconds: Option<f64>,
    /// Why it did not pass: the assertion's message, the error, the signal that timed out, the reason it was
    /// skipped.
    pub error: Option<String>,
    /// FAIL: where the assertion failed (`file:line:column`).
    pub location: Option<String>,
    /// The step log, one line per step (`+0.012s received `order_sent_to_db` after 0.010s`); the last 100.
    pub steps: Vec<String>,
    /// Every signal the case declares, in declaration order.
    pub signals: Vec<SignalRecord>,
    /// The trace id of the request the test was sampled from, when it was triggered inside a trace.
    pub trace_id: Option<String>,
    /// A link to that trace, from the app's [`trace_url`](crate::LiveCheckBuilder::trace_url) template.
    pub trace_url: Option<String>,
    /// The version of the service that sampled the test, when it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_version: Option<String>,
}

/// What became of one signal in one execution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SignalRecord {
    /// The signal's name.
    pub name: String,
    /// Whether it came, is awaited, never came, or was not reached.
    pub status: SignalStatus,
    /// When it arrived at this instance.
    pub arrived_at: Option<DateTime<Utc>>,
    /// Seconds from the test's issue time to the signal's arrival.
    pub after_issue_seconds: Option<f64>,
    /// How long the test waited for it, in seconds: until it came, until the wait timed out, or so far.
    pub waited_seconds: Option<f64>,
    /// The version of the service that handled this stage (sent the signal), when it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_version: Option<String>,
}

/// The fate of one signal in one execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalStatus {
    /// It arrived.
    Received,
    /// The test waited for it and it did not come (the wait timed out, or the test ended while waiting).
    Missing,
    /// The test is waiting for it now.
    Waiting,
    /// The test did not wait for it, and it did not come.
    NotReached,
}

impl ExecutionRecord {
    /// The record with its trace link, made from `template` (`{trace_id}` replaced by the trace id).
    pub(crate) fn linked(mut self, template: Option<&str>) -> Self {
        if let (Some(template), Some(trace_id)) = (template, &self.trace_id) {
            self.trace_url = Some(template.replace("{trace_id}", trace_id));
        }
        self
    }

    /// The record of an execution of `case` that finished.
    pub(crate) fn finished(execution: &FinishedExecution, case: &CaseCore) -> Self {
        let context = &execution.context;
        let verdict = &execution.verdict;
        let (steps, signals) = match &execution.trace {
            Some(trace) => (
                step_lines(&trace.steps, trace.steps_omitted, case),
                signal_records(case, &trace.signals, &trace.versions, execution.started_at, context.timestamp()),
            ),
            None => {
                let not_reached = SignalTrace { status: SignalStatus::NotReached, arrived: None, waited: None };
                let traces = vec![not_reached; case.signal_count()];
                (Vec::new(), signal_records(case, &traces, &[], execution.started_at, context.timestamp()))
            }
        };
        ExecutionRecord {
            id: context.id().to_owned(),
            case: case.name.to_string(),
            state: Some(verdict.state()),
            issued_at: context.timestamp(),
            started_at: execution.started_at,
            finished_at: Some(execution.finished_at),
            runtime_seconds: execution.runtime,
            error: verdict.error(),
            location: match verdict {
                Verdict::Fail { location, .. } => location.clone(),
                _ => None,
            },
            steps,
            signals,
            trace_id: context.trace_id().map(str::to_owned),
            trace_url: None,
            service_version: context.service_version().map(str::to_owned),
        }
    }

    /// The record of `run`, executing now (`now` is the time of day).
    pub(crate) fn running(run: &TestRun, now: DateTime<Utc>) -> Self {
        let case = &*run.case;
        let elapsed = run.elapsed();
        let started_at = (now - chrono::Duration::from_std(elapsed).unwrap_or_default()).trunc_subsecs(6);
        let arrivals = run.signals.arrivals();
        let (steps, traces) = run.with_steps(|steps| {
            let omitted = steps.len().saturating_sub(MAX_STEPS);
            (step_lines(&steps[omitted..], omitted, case), signal_traces(steps, &arrivals, elapsed.as_secs_f64(), true))
        });
        let context = run.context();
        ExecutionRecord {
            id: context.id().to_owned(),
            case: case.name.to_string(),
            state: None,
            issued_at: context.timestamp(),
            started_at,
            finished_at: None,
            runtime_seconds: None,
            error: None,
            location: None,
            steps,
            signals: signal_records(case, &traces, &run.signals.versions(), started_at, context.timestamp()),
            trace_id: context.trace_id().map(str::to_owned),
            trace_url: None,
            service_version: context.service_version().map(str::to_owned),
        }
    }
}

fn step_lines(steps: &[Step], omitted: usize, case: &CaseCore) -> Vec<String> {
    let mut lines = Vec::with_capacity(steps.len() + 1);
    if omitted > 0 {
        lines.push(format!("… {omitted} earlier steps not kept"));
    }
    lines.extend(steps.iter().map(|step| format!("+{:.3}s {}", step.at, describe(step, |i| case.signal_name(i)))));
    lines
}

fn signal_records(
    case: &CaseCore,
    traces: &[SignalTrace],
    versions: &[Option<std::sync::Arc<str>>],
    started_at: DateTime<Utc>,
    issued_at: DateTime<Utc>,
) -> Vec<SignalRecord> {
    traces
        .iter()
        .enumerate()
        .map(|(index, trace)| {
            let arrived_at = trace.arrived.map(|secs| started_at + seconds(secs));
            SignalRecord {
                name: case.signal_name(index).to_owned(),
                status: trace.status,
                arrived_at,
                after_issue_seconds: arrived_at
                    .and_then(|at| (at - issued_at).num_microseconds())
                    .map(|us| us as f64 / 1e6),
                waited_seconds: trace.waited,
                service_version: versions.get(index).cloned().flatten().map(|v| v.to_string()),
            }
        })
        .collect()
}

/// `secs` (possibly negative) as a duration, to the microsecond.
fn seconds(secs: f64) -> chrono::Duration {
    chrono::Duration::microseconds((secs * 1e6).round() as i64)
}
