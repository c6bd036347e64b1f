//! The health of one case: counters, medians, alert policies and the suite state machine.
//!
//! A case fails as a whole — "the suite fails" — for one of five causes ([`SuiteFailureKind`]). Each cause is
//! reported (a suite report, a log line, an alert) once when it starts, whatever other cause came before it; the
//! same cause happening again is reported again only once `state_transition_delay` has passed since its last
//! report, and otherwise only updates the state.
//!
//! This file holds the state machine ([`CaseHealth`]); what it shows outside is in `snapshot`, the failure policies
//! it checks in `policies`, and what it remembers of recent executions in `windows`.

mod policies;
mod snapshot;
mod stages;
#[cfg(test)]
mod tests;
mod windows;

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

pub use snapshot::{
    HealthSnapshot, PassRate, ServiceDownState, StallCause, StallState, StateCounts, SuiteFailure, SuiteFailureKind,
};
use stages::Stages;
pub use stages::{Percentiles, StageHealth, STAGE_WINDOW};
use windows::{History, RecentOutcomes, WindowCounts};

use super::traffic::ReportedTraffic;
use super::{
    clock_skew::{Arrival, ClockSkew, SKEWED_IN_A_ROW},
    settings::{FailureRate, MaxDegradedRate, MinPassRate},
    CaseSettings,
};
use crate::{observe::SignalOutcome, wire::State};

/// What a finished test did to the case.
#[derive(Debug, PartialEq)]
pub(crate) enum HealthChange {
    Nothing,
    /// Suite failures to report (or, within `state_transition_delay` of the same cause, to count only).
    SuiteFailed(Vec<SuiteFailure>),
    /// The case recovered from a suite failure; the kind of the last one.
    Recovered(SuiteFailureKind),
}

pub(crate) struct CaseHealth {
    case_name: String,
    max_consecutive_failures: u32,
    state_transition_delay: Duration,
    warn_stalled_after: Duration,
    frequency: Option<Duration>,
    probability: f64,
    failure_rate: Option<FailureRate>,
    min_pass_rate: Option<(MinPassRate, WindowCounts)>,
    /// Executions that kept their contracts over the policy's window, and how many of them were not degraded.
    max_degraded_rate: Option<(MaxDegradedRate, WindowCounts)>,
    min_pass_rate_executions: u64,
    /// How many executions [`PassRate`] is over.
    pass_rate_over: usize,
    status: State,
    counts: StateCounts,
    consecutive_failures: u32,
    total_failures: u64,
    /// Verdicts reached while the instance lagged behind its streams, kept out of the rest.
    unknown_verdicts: u64,
    /// When the last test arrived (the instance's start before the first): stalls are measured from it.
    last_test_received: Instant,
    /// Whether a test arrived yet: the time before the first one is not a time between tests.
    any_test_received: bool,
    /// Monotonic and wall-clock time of the last failure (test or suite): the wall time is compared with test issue
    /// times, the monotonic time with delays. Never across.
    last_failure: Option<(Instant, DateTime<Utc>)>,
    /// A suite failure happened and the case has not recovered since.
    suite_failing: bool,
    /// Per cause, by [`SuiteFailureKind::index`]: when it was last reported, while it lasts. A cause not in here
    /// starts when it happens, and is reported whatever came before it.
    reported: [Option<Instant>; SuiteFailureKind::COUNT],
    last_suite_failure: Option<SuiteFailure>,
    stalled_since: Option<DateTime<Utc>>,
    /// Why, as the services' traffic reports tell, while stalled.
    stall_cause: Option<StallCause>,
    /// What the services reported of their traffic lately.
    traffic: ReportedTraffic,
    last_stall_alert: Option<Instant>,
    service_down: Option<ServiceDownState>,
    clock_skew: ClockSkew,
    recent: RecentOutcomes,
    runtime: History,
    between_tests: History,
    lateness: History,
    stages: Stages,
}

impl CaseHealth {
    pub(crate) fn new(settings: &CaseSettings, now: Instant) -> Self {
        let of_last = settings.failure_rate.map_or(0, |p| p.of_last as usize);
        CaseHealth {
            case_name: settings.name.clone(),
            max_consecutive_failures: settings.max_consecutive_failures.max(1),
            state_transition_delay: settings.state_transition_delay,
            warn_stalled_after: settings.warn_stalled_after,
            frequency: settings.frequency,
            probability: settings.probability,
            failure_rate: settings.failure_rate,
            min_pass_rate: settings.min_pass_rate.map(|p| (p, WindowCounts::new(p.window, now))),
            max_degraded_rate: settings.max_degraded_rate.map(|p| (p, WindowCounts::new(p.window, now))),
            min_pass_rate_executions: u64::from(settings.min_pass_rate_executions.max(1)),
            pass_rate_over: settings.max_history.max(1),
            status: State::Init,
            counts: StateCounts::default(),
            consecutive_failures: 0,
            total_failures: 0,
            unknown_verdicts: 0,
            last_test_received: now,
            any_test_received: false,
            last_failure: None,
            suite_failing: false,
            reported: [None; SuiteFailureKind::COUNT],
            last_suite_failure: None,
            stalled_since: None,
            stall_cause: None,
            traffic: ReportedTraffic::default(),
            last_stall_alert: None,
            service_down: None,
            clock_skew: ClockSkew::default(),
            recent: RecentOutcomes::new(settings.max_history.max(of_last)),
            runtime: History::new(settings.max_history),
            between_tests: History::new(settings.max_history),
            lateness: History::new(settings.max_history),
            stages: Stages::new(STAGE_WINDOW, &settings.signal_budgets),
        }
    }

    /// A test arrived (it may still be skipped): it ends a stall.
    pub(crate) fn test_received(&mut self, now: Instant) {
        if self.any_test_received {
            let since = now.saturating_duration_since(self.last_test_received);
            self.between_tests.push(since.as_secs_f64());
            if let Some(frequency) = self.frequency {
                // Late by how much more than `frequency` it took; a test within `frequency` is not late. (The gap
                // is between any two tests, real traffic included, so it is often shorter than the period of the
                // fake requests: subtracting without the floor gave negative lateness.)
                self.lateness.push(since.saturating_sub(frequency).as_secs_f64());
            }
        }
        self.any_test_received = true;
        self.last_test_received = now;
        if self.stalled_since.take().is_some() {
            self.stall_cause = None;
            self.reported[SuiteFailureKind::Stall.index()] = None;
        }
    }

    /// An execution issued at `issued` and expiring at `expires` arrived at `now_wall`: in numbers, executions that
    /// arrive expired or from the future are a suite failure of their own kind (clock skew); one in time ends it.
    pub(crate) fn execution_arrived(
        &mut self,
        issued: DateTime<Utc>,
        expires: DateTime<Utc>,
        now_wall: DateTime<Utc>,
    ) -> Option<SuiteFailure> {
        let in_a_row = SKEWED_IN_A_ROW.min(self.max_consecutive_failures);
        match self.clock_skew.arrived(issued, expires, now_wall, in_a_row) {
            Arrival::InTime => {
                self.reported[SuiteFailureKind::ClockSkew.index()] = None;
                None
            }
            Arrival::Skewed => None,
            Arrival::SkewedInNumbers(reason) => {
                Some(self.failure(SuiteFailureKind::ClockSkew, State::Fail, reason, now_wall))
            }
        }
    }

    /// A test finished in `state`; `issued` is its issue time, `signals` what became of its declared signals (empty
    /// when it did not run). Returns the suite failures it caused, or the recovery it brought.
    pub(crate) fn test_finished(
        &mut self,
        state: State,
        issued: DateTime<Utc>,
        runtime: Option<f64>,
        signals: &[SignalOutcome],
        now: Instant,
        now_wall: DateTime<Utc>,
    ) -> HealthChange {
        self.counts.add(state);
        if let Some(runtime) = runtime {
            self.runtime.push(runtime);
        }
        let failed = match state {
            State::Fail | State::Error | State::Timeout => true,
            State::Pass | State::Degraded => false,
            _ => return HealthChange::Nothing,
        };
        self.recent.push(failed);
        self.stages.record(signals, failed);
        if let Some((_, window)) = &mut self.min_pass_rate {
            window.record(now, !failed);
        }
        if !failed {
            if let Some((_, window)) = &mut self.max_degraded_rate {
                window.record(now, state == State::Pass);
            }
            if state == State::Degraded && self.status.is_ok() && self.status != State::Degraded {
                if let Some(reason) = self.degraded_rate_met(now) {
                    let failure = self.failure(SuiteFailureKind::DegradedRate, State::Degraded, reason, now_wall);
                    return HealthChange::SuiteFailed(vec![failure]);
                }
            }
            return self.passed(issued, now);
        }
        self.status = state;
        self.consecutive_failures += 1;
        self.total_failures += 1;
        self.last_failure = Some((now, now_wall));
        let failures = self.policies_met(now, now_wall);
        if failures.is_empty() {
            HealthChange::Nothing
        } else {
            HealthChange::SuiteFailed(failures)
        }
    }

    fn failure(&self, kind: SuiteFailureKind, state: State, reason: String, at: DateTime<Utc>) -> SuiteFailure {
        SuiteFailure { case_name: self.case_name.clone(), kind, state, reason, at }
    }

    /// A passing test: it breaks a run of failures when issued after the last one, and recovers the case when,
    /// besides, `state_transition_delay` has passed since that failure and no rate policy is still met. A test
    /// issued before the last failure says nothing about the system after it.
    fn passed(&mut self, issued: DateTime<Utc>, now: Instant) -> HealthChange {
        let issued_after_failure = self.last_failure.is_none_or(|(_, failed_at_wall)| issued > failed_at_wall);
        if issued_after_failure {
            self.consecutive_failures = 0;
        }
        if self.status == State::Pass || (self.status == State::Degraded && self.degraded_rate_met(now).is_some()) {
            return HealthChange::Nothing;
        }
        let delay_passed = self
            .last_failure
            .is_none_or(|(failed_at, _)| now.saturating_duration_since(failed_at) >= self.state_transition_delay);
        if !issued_after_failure
            || !delay_passed
            || self.failure_rate_met().is_some()
            || self.pass_rate_met(now).is_some()
            || self.degraded_rate_met(now).is_some()
        {
            return HealthChange::Nothing;
        }
        self.status = State::Pass;
        self.service_down = None;
        self.stalled_since = None;
        self.reported = [None; SuiteFailureKind::COUNT];
        match (std::mem::take(&mut self.suite_failing), &self.last_suite_failure) {
            (true, Some(last)) => HealthChange::Recovered(last.kind),
            _ => HealthChange::Nothing,
        }
    }

    /// Records a suite failure (its time counts as the last failure); returns whether it is to be reported: its
    /// cause is not ongoing (whatever other cause came before), or it was last reported more than
    /// `state_transition_delay` ago.
    pub(crate) fn suite_failed(&mut self, failure: &SuiteFailure, now: Instant) -> bool {
        let reported = &mut self.reported[failure.kind.index()];
        let due = reported.is_none_or(|t| now.saturating_duration_since(t) > self.state_transition_delay);
        if due {
            *reported = Some(now);
        }
        self.status = failure.state;
        self.suite_failing = true;
        self.last_failure = Some((now, failure.at));
        self.last_suite_failure = Some(failure.clone());
        due
    }

    /// When the stall check should look next.
    pub(crate) fn next_stall_check(&self) -> Instant {
        let stalled_at = self.last_test_received + self.warn_stalled_after;
        match self.last_stall_alert {
            Some(alerted) => stalled_at.max(alerted + self.warn_stalled_after),
            None => stalled_at,
        }
    }

    /// A STALL suite failure when no test arrived for `warn_stalled_after`, at most one per that period.
    pub(crate) fn check_stalled(&mut self, now: Instant, now_wall: DateTime<Utc>) -> Option<SuiteFailure> {
        if now < self.next_stall_check() {
            return None;
        }
        self.last_stall_alert = Some(now);
        self.stalled_since.get_or_insert(now_wall);
        let quiet = now.saturating_duration_since(self.last_test_received);
        let mut reason = format!("no test received for {:.1} s", quiet.as_secs_f64());
        // What the services saw meanwhile tells which stall it is.
        let window = chrono::Duration::from_std(quiet).unwrap_or_default();
        let (cause, why) = match self.traffic.since(now_wall - window) {
            None | Some((0, _)) => (
                StallCause::NoTraffic,
                "no service reported any traffic meanwhile (no requests reach them, or none calls maybe_trigger)"
                    .to_owned(),
            ),
            Some((seen, 0)) => (
                StallCause::NotSampled,
                format!(
                    "the services saw {seen} request{} and sampled none (probability {})",
                    if seen == 1 { "" } else { "s" },
                    self.probability
                ),
            ),
            Some((_, sampled)) => (
                StallCause::TestsNotArriving,
                format!(
                    "the services sampled {sampled} test{} that did not reach this instance (the pending-tests \
                     stream, or this instance's partitions)",
                    if sampled == 1 { "" } else { "s" }
                ),
            ),
        };
        reason.push_str(&format!(": {why}"));
        self.stall_cause = Some(cause);
        Some(self.failure(SuiteFailureKind::Stall, State::Stall, reason, now_wall))
    }

    /// A service reported the requests it saw for this case, and sampled, since its previous report.
    pub(crate) fn traffic_reported(&mut self, at: DateTime<Utc>, seen: u64, sampled: u64) {
        self.traffic.add(at, seen, sampled);
    }

    /// A fake request found the service down: records it (since when, the URL, the last error) and returns the
    /// suite failure.
    pub(crate) fn service_down(
        &mut self,
        url: Option<String>,
        last_error: String,
        now_wall: DateTime<Utc>,
    ) -> SuiteFailure {
        // Credentials and query strings (tokens) stay out of the state, the reports and the alerts.
        let (url, last_error) = match url {
            Some(url) => {
                let shown = crate::shown::url_without_secrets(&url);
                (Some(shown.clone()), last_error.replace(&url, &shown))
            }
            None => (None, last_error),
        };
        let reason = match &url {
            Some(url) => format!("service down: {url}: {last_error}"),
            None => format!("service down: {last_error}"),
        };
        match &mut self.service_down {
            Some(down) => {
                down.url = url;
                down.last_error = last_error;
            }
            None => self.service_down = Some(ServiceDownState { since: now_wall, url, last_error }),
        }
        self.failure(SuiteFailureKind::ServiceDown, State::Fail, reason, now_wall)
    }

    /// A fake request succeeded: the service is up. Returns the service-down state it ends, if any. (The case
    /// itself recovers only with a passing test.)
    pub(crate) fn service_reachable(&mut self) -> Option<ServiceDownState> {
        let down = self.service_down.take()?;
        self.reported[SuiteFailureKind::ServiceDown.index()] = None;
        Some(down)
    }

    /// Each declared signal's health over the last [`STAGE_WINDOW`] executions that ran (`declared`: the case's
    /// signals, which name the stages before any execution).
    pub(crate) fn stages(&self, declared: &[std::sync::Arc<str>]) -> Vec<StageHealth> {
        self.stages.health(declared)
    }

    /// A verdict reached while the instance lagged behind its streams (a TIMEOUT that may be its own fault):
    /// counted in its state and as unknown, kept out of the failure counts, rates, policies and stage health.
    pub(crate) fn unknown_verdict(&mut self, state: State) {
        self.counts.add(state);
        self.unknown_verdicts += 1;
    }

    /// Declared signal `index` came after its test's verdict.
    pub(crate) fn signal_late(&mut self, index: usize) {
        self.stages.late(index);
    }

    /// Declared signal `index` came a second time for one test.
    pub(crate) fn signal_duplicate(&mut self, index: usize) {
        self.stages.duplicate(index);
    }

    pub(crate) fn snapshot(&self) -> HealthSnapshot {
        self.snapshot_at(Instant::now())
    }

    fn snapshot_at(&self, now: Instant) -> HealthSnapshot {
        let (failed, last) = self.recent.failures_in_last(self.pass_rate_over);
        let (last, passed) = (u64::from(last), u64::from(last - failed));
        HealthSnapshot {
            status: self.status,
            failing: (self.suite_failing && self.status != State::Degraded)
                || self.service_down.is_some()
                || self.clock_skew.state().is_some()
                || !self.status.is_ok(),
            service_down: self.service_down.clone(),
            clock_skew: self.clock_skew.state().cloned(),
            stall: self.stalled_since.map(|since| StallState {
                since,
                cause: self.stall_cause.unwrap_or(StallCause::NoTraffic),
                quiet_seconds: now.saturating_duration_since(self.last_test_received).as_secs_f64(),
            }),
            last_suite_failure: self.last_suite_failure.clone(),
            counts: self.counts,
            consecutive_failures: self.consecutive_failures,
            total_failures: self.total_failures,
            unknown_verdicts: self.unknown_verdicts,
            pass_rate: PassRate { last, passed, rate: (last > 0).then(|| passed as f64 / last as f64) },
            runtime_median_seconds: self.runtime.median(),
            interval_median_seconds: self.between_tests.median(),
            lateness_median_seconds: self.lateness.median(),
        }
    }
}
