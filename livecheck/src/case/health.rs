//! The health of one case: counters, medians, alert policies and the suite state machine.
//!
//! A case fails as a whole — "the suite fails" — for one of five causes ([`SuiteFailureKind`]). Each cause is
//! reported (a suite report, a log line, an alert) once when it starts, whatever other cause came before it; the
//! same cause happening again is reported again only once `state_transition_delay` has passed since its last
//! report, and otherwise only updates the state.

use std::{collections::VecDeque, fmt, time::Duration};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{
    clock_skew::{Arrival, ClockSkew, ClockSkewState, SKEWED_IN_A_ROW},
    settings::{FailureRate, MinPassRate},
    CaseSettings,
};
use crate::wire::{timestamp, State};

/// Why a case failed as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuiteFailureKind {
    /// `max_consecutive_failures` failing tests in a row.
    ConsecutiveFailures,
    /// N of the last M executions failed ([`CaseSettings::failure_rate`]).
    FailureRate,
    /// The pass rate over a time window fell below its minimum ([`CaseSettings::min_pass_rate`]).
    PassRate,
    /// No test arrived for `warn_stalled_after`.
    Stall,
    /// A fake request found the service down ([`crate::Error::ServiceDown`]).
    ServiceDown,
    /// Executions arrived expired, or issued in the future, many in a row: this instance's clock and the
    /// services' disagree.
    ClockSkew,
}

impl SuiteFailureKind {
    const COUNT: usize = 6;

    /// The name in JSON: `consecutive_failures`, `failure_rate`, `pass_rate`, `stall`, `service_down`,
    /// `clock_skew`.
    pub fn as_str(self) -> &'static str {
        match self {
            SuiteFailureKind::ConsecutiveFailures => "consecutive_failures",
            SuiteFailureKind::FailureRate => "failure_rate",
            SuiteFailureKind::PassRate => "pass_rate",
            SuiteFailureKind::Stall => "stall",
            SuiteFailureKind::ServiceDown => "service_down",
            SuiteFailureKind::ClockSkew => "clock_skew",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for SuiteFailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A case failing as a whole: a failure policy was met, no tests arrive, or the service is down.
///
/// Serialized (as `last_suite_failure` of a [`HealthSnapshot`]) as `{"kind", "state", "reason", "at"}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SuiteFailure {
    /// The case.
    #[serde(skip)]
    pub case_name: String,
    /// The cause.
    pub kind: SuiteFailureKind,
    /// STALL for a stall, FAIL otherwise.
    pub state: State,
    /// Why, in words.
    pub reason: String,
    /// When it was decided.
    #[serde(serialize_with = "timestamp::serialize")]
    pub at: DateTime<Utc>,
}

/// A point-in-time view of a case's health, as this instance sees it (it judges the tests it runs).
///
/// Serialized with the field names of the JSON API:
///
/// ```json
/// {"status": "FAIL", "failing": true, "service_down": null, "stall": null, "clock_skew": null,
///  "last_suite_failure": {"kind": "failure_rate", "state": "FAIL", "reason": "8 of the last 10 executions failed",
///                         "at": "2026-11-25T01:51:06.369766Z"},
///  "counts": {"PASS": 10, "FAIL": 8, "ERROR": 0, "TIMEOUT": 0, "SKIP": 0},
///  "consecutive_failures": 3, "total_failures": 8, "pass_rate": {"last": 18, "passed": 10, "rate": 0.5556},
///  "runtime_median_seconds": 0.04, "interval_median_seconds": 1.0, "lateness_median_seconds": 0.0}
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct HealthSnapshot {
    /// INIT until a test finished; then the state of the last failing test or suite failure, until a passing test
    /// recovers the case (PASS).
    pub status: State,
    /// Whether the case is failing: a suite failure it has not recovered from, its service down, or a failing
    /// status.
    pub failing: bool,
    /// Since when the case's service is down, while it is.
    pub service_down: Option<ServiceDownState>,
    /// Since when the case is stalled (no test for `warn_stalled_after`), until a test arrives.
    pub stall: Option<StallState>,
    /// Since when its executions arrive expired or from the future, and by how much, until one arrives in time.
    pub clock_skew: Option<ClockSkewState>,
    /// The latest suite failure, reported or not; kept after recovery.
    pub last_suite_failure: Option<SuiteFailure>,
    /// Tests finished per state.
    pub counts: StateCounts,
    /// Failing tests in a row: reset by a passing test issued after the last failure.
    pub consecutive_failures: u32,
    /// Failing tests in all.
    pub total_failures: u64,
    /// Passing share of the last `max_history` finished executions.
    pub pass_rate: PassRate,
    /// Median runtime of the last `max_history` tests, in seconds.
    pub runtime_median_seconds: Option<f64>,
    /// Median time between two tests arriving, over the last `max_history`, in seconds.
    pub interval_median_seconds: Option<f64>,
    /// Median lateness of tests against `frequency`, in seconds, never negative: how much longer than `frequency`
    /// the time since the previous test was (0 for a test that came within `frequency`). `None` without
    /// `frequency`.
    pub lateness_median_seconds: Option<f64>,
}

impl HealthSnapshot {
    /// How many tests finished in `state`.
    pub fn count(&self, state: State) -> u64 {
        self.counts.get(state)
    }
}

/// Since when a case's service is down.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ServiceDownState {
    /// The first fake request that found it down.
    #[serde(serialize_with = "timestamp::serialize")]
    pub since: DateTime<Utc>,
    /// The URL that could not be reached, when known.
    pub url: Option<String>,
    /// What the last attempt failed with ("connection refused (after 10 retries)").
    pub last_error: String,
}

/// Since when a case is stalled.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct StallState {
    /// When the stall was detected.
    #[serde(serialize_with = "timestamp::serialize")]
    pub since: DateTime<Utc>,
    /// Seconds since the last test arrived (or since the instance started, before the first).
    pub quiet_seconds: f64,
}

/// Tests finished per state, serialized as `{"PASS": 10, "FAIL": 1, "ERROR": 0, "TIMEOUT": 0, "SKIP": 0}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StateCounts {
    /// PASS.
    #[serde(rename = "PASS")]
    pub pass: u64,
    /// FAIL.
    #[serde(rename = "FAIL")]
    pub fail: u64,
    /// ERROR.
    #[serde(rename = "ERROR")]
    pub error: u64,
    /// TIMEOUT.
    #[serde(rename = "TIMEOUT")]
    pub timeout: u64,
    /// SKIP.
    #[serde(rename = "SKIP")]
    pub skip: u64,
}

impl StateCounts {
    /// How many tests finished in `state` (0 for INIT and STALL, which are not outcomes of a test).
    pub fn get(&self, state: State) -> u64 {
        match state {
            State::Pass => self.pass,
            State::Fail => self.fail,
            State::Error => self.error,
            State::Timeout => self.timeout,
            State::Skip => self.skip,
            State::Init | State::Stall => 0,
        }
    }

    /// Tests finished in all.
    pub fn total(&self) -> u64 {
        self.pass + self.fail + self.error + self.timeout + self.skip
    }

    fn add(&mut self, state: State) {
        match state {
            State::Pass => self.pass += 1,
            State::Fail => self.fail += 1,
            State::Error => self.error += 1,
            State::Timeout => self.timeout += 1,
            State::Skip => self.skip += 1,
            State::Init | State::Stall => {}
        }
    }
}

/// The passing share of the last finished executions (SKIP excluded).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct PassRate {
    /// How many executions it is over (at most `max_history`).
    pub last: u64,
    /// How many of them passed.
    pub passed: u64,
    /// `passed / last`; `None` when there are none.
    pub rate: Option<f64>,
}

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
    failure_rate: Option<FailureRate>,
    min_pass_rate: Option<(MinPassRate, WindowCounts)>,
    min_pass_rate_executions: u64,
    /// How many executions [`PassRate`] is over.
    pass_rate_over: usize,
    status: State,
    counts: StateCounts,
    consecutive_failures: u32,
    total_failures: u64,
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
    last_stall_alert: Option<Instant>,
    service_down: Option<ServiceDownState>,
    clock_skew: ClockSkew,
    recent: RecentOutcomes,
    runtime: History,
    between_tests: History,
    lateness: History,
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
            failure_rate: settings.failure_rate,
            min_pass_rate: settings.min_pass_rate.map(|p| (p, WindowCounts::new(p.window, now))),
            min_pass_rate_executions: u64::from(settings.min_pass_rate_executions.max(1)),
            pass_rate_over: settings.max_history.max(1),
            status: State::Init,
            counts: StateCounts::default(),
            consecutive_failures: 0,
            total_failures: 0,
            last_test_received: now,
            any_test_received: false,
            last_failure: None,
            suite_failing: false,
            reported: [None; SuiteFailureKind::COUNT],
            last_suite_failure: None,
            stalled_since: None,
            last_stall_alert: None,
            service_down: None,
            clock_skew: ClockSkew::default(),
            recent: RecentOutcomes::new(settings.max_history.max(of_last)),
            runtime: History::new(settings.max_history),
            between_tests: History::new(settings.max_history),
            lateness: History::new(settings.max_history),
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

    /// A test finished in `state`; `issued` is its issue time. Returns the suite failures it caused, or the
    /// recovery it brought.
    pub(crate) fn test_finished(
        &mut self,
        state: State,
        issued: DateTime<Utc>,
        runtime: Option<f64>,
        now: Instant,
        now_wall: DateTime<Utc>,
    ) -> HealthChange {
        self.counts.add(state);
        if let Some(runtime) = runtime {
            self.runtime.push(runtime);
        }
        let failed = match state {
            State::Fail | State::Error | State::Timeout => true,
            State::Pass => false,
            _ => return HealthChange::Nothing,
        };
        self.recent.push(failed);
        if let Some((_, window)) = &mut self.min_pass_rate {
            window.record(now, !failed);
        }
        if !failed {
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

    /// The failure policies a failing test just met (each is a suite failure of its kind).
    fn policies_met(&self, now: Instant, now_wall: DateTime<Utc>) -> Vec<SuiteFailure> {
        let mut met = Vec::new();
        if self.consecutive_failures >= self.max_consecutive_failures {
            let reason = format!("failed after {} consecutive failures", self.consecutive_failures);
            met.push(self.failure(SuiteFailureKind::ConsecutiveFailures, State::Fail, reason, now_wall));
        }
        if let Some(reason) = self.failure_rate_met() {
            met.push(self.failure(SuiteFailureKind::FailureRate, State::Fail, reason, now_wall));
        }
        if let Some(reason) = self.pass_rate_met(now) {
            met.push(self.failure(SuiteFailureKind::PassRate, State::Fail, reason, now_wall));
        }
        met
    }

    /// Why the "N of the last M" policy is met now, if it is.
    fn failure_rate_met(&self) -> Option<String> {
        let policy = self.failure_rate?;
        let (failed, seen) = self.recent.failures_in_last(policy.of_last as usize);
        (failed >= policy.failures).then(|| format!("{failed} of the last {seen} executions failed"))
    }

    /// Why the "pass rate below X over W" policy is met now, if it is.
    fn pass_rate_met(&self, now: Instant) -> Option<String> {
        let (policy, window) = self.min_pass_rate.as_ref()?;
        let (passed, finished) = window.counts(now);
        if finished < self.min_pass_rate_executions || passed as f64 >= policy.min_rate * finished as f64 {
            return None;
        }
        Some(format!(
            "pass rate {:.1} % ({passed} of {finished} executions passed) over the last {} is below {:.1} %",
            100.0 * passed as f64 / finished as f64,
            duration_text(policy.window),
            100.0 * policy.min_rate,
        ))
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
        if self.status == State::Pass {
            return HealthChange::Nothing;
        }
        let delay_passed = self
            .last_failure
            .is_none_or(|(failed_at, _)| now.saturating_duration_since(failed_at) >= self.state_transition_delay);
        if !issued_after_failure
            || !delay_passed
            || self.failure_rate_met().is_some()
            || self.pass_rate_met(now).is_some()
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
        let reason = format!("no test received for {:.1} s", quiet.as_secs_f64());
        Some(self.failure(SuiteFailureKind::Stall, State::Stall, reason, now_wall))
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

    pub(crate) fn snapshot(&self) -> HealthSnapshot {
        self.snapshot_at(Instant::now())
    }

    fn snapshot_at(&self, now: Instant) -> HealthSnapshot {
        let (failed, last) = self.recent.failures_in_last(self.pass_rate_over);
        let (last, passed) = (u64::from(last), u64::from(last - failed));
        HealthSnapshot {
            status: self.status,
            failing: self.suite_failing
                || self.service_down.is_some()
                || self.clock_skew.state().is_some()
                || !self.status.is_ok(),
            service_down: self.service_down.clone(),
            clock_skew: self.clock_skew.state().cloned(),
            stall: self.stalled_since.map(|since| StallState {
                since,
                quiet_seconds: now.saturating_duration_since(self.last_test_received).as_secs_f64(),
            }),
            last_suite_failure: self.last_suite_failure.clone(),
            counts: self.counts,
            consecutive_failures: self.consecutive_failures,
            total_failures: self.total_failures,
            pass_rate: PassRate { last, passed, rate: (last > 0).then(|| passed as f64 / last as f64) },
            runtime_median_seconds: self.runtime.median(),
            interval_median_seconds: self.between_tests.median(),
            lateness_median_seconds: self.lateness.median(),
        }
    }
}

/// `90 s`, `10 min`, `2 h`.
fn duration_text(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() == 0 && secs > 0 && secs % 3600 == 0 {
        format!("{} h", secs / 3600)
    } else if d.subsec_nanos() == 0 && secs > 0 && secs % 60 == 0 {
        format!("{} min", secs / 60)
    } else {
        format!("{} s", d.as_secs_f64())
    }
}

/// Whether each of the last finished executions (SKIP excluded) failed, newest last.
struct RecentOutcomes {
    capacity: usize,
    failed: VecDeque<bool>,
}

impl RecentOutcomes {
    fn new(capacity: usize) -> Self {
        RecentOutcomes { capacity: capacity.max(1), failed: VecDeque::new() }
    }

    fn push(&mut self, failed: bool) {
        if self.failed.len() == self.capacity {
            self.failed.pop_front();
        }
        self.failed.push_back(failed);
    }

    /// How many of the last `n` failed, and how many there are (fewer than `n` early on).
    fn failures_in_last(&self, n: usize) -> (u32, u32) {
        let last = self.failed.iter().rev().take(n);
        let seen = last.len() as u32;
        (last.filter(|failed| **failed).count() as u32, seen)
    }
}

/// Steps a [`WindowCounts`] window is counted in.
const WINDOW_STEPS: u64 = 60;

/// Passed and finished executions over a sliding time window, counted per step of 1/60 of the window: memory
/// stays bounded whatever the rate of tests. The window covers the current step and the 60 before it: the last
/// `window`, and at most one step more.
struct WindowCounts {
    step: Duration,
    origin: Instant,
    /// Oldest first; only steps that had executions.
    steps: VecDeque<StepCounts>,
}

struct StepCounts {
    step: u64,
    passed: u64,
    finished: u64,
}

impl WindowCounts {
    fn new(window: Duration, origin: Instant) -> Self {
        let step = (window / WINDOW_STEPS as u32).max(Duration::from_nanos(1));
        WindowCounts { step, origin, steps: VecDeque::new() }
    }

    fn step_of(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.origin).as_nanos() / self.step.as_nanos();
        u64::try_from(since).unwrap_or(u64::MAX)
    }

    fn record(&mut self, now: Instant, passed: bool) {
        let step = self.step_of(now);
        match self.steps.back_mut() {
            Some(last) if last.step == step => {
                last.finished += 1;
                last.passed += u64::from(passed);
            }
            _ => self.steps.push_back(StepCounts { step, passed: u64::from(passed), finished: 1 }),
        }
        while self.steps.front().is_some_and(|oldest| oldest.step.saturating_add(WINDOW_STEPS) < step) {
            self.steps.pop_front();
        }
    }

    /// (passed, finished) within the window that ends at `now`.
    fn counts(&self, now: Instant) -> (u64, u64) {
        let current = self.step_of(now);
        self.steps
            .iter()
            .filter(|s| s.step.saturating_add(WINDOW_STEPS) >= current)
            .fold((0, 0), |(passed, finished), s| (passed + s.passed, finished + s.finished))
    }
}

/// The last `capacity` samples.
struct History {
    capacity: usize,
    samples: VecDeque<f64>,
}

impl History {
    fn new(capacity: usize) -> Self {
        History { capacity: capacity.max(1), samples: VecDeque::new() }
    }

    fn push(&mut self, sample: f64) {
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    fn median(&self) -> Option<f64> {
        if self.samples.is_empty() {
            return None;
        }
        let mut sorted: Vec<f64> = self.samples.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let mid = sorted.len() / 2;
        Some(if sorted.len() % 2 == 0 { (sorted[mid - 1] + sorted[mid]) / 2.0 } else { sorted[mid] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    /// A case's health with a wall clock that moves with the monotonic one, as `Clock::follow_tokio` does.
    struct Fixture {
        health: CaseHealth,
        start: Instant,
        start_wall: DateTime<Utc>,
        now: Duration,
    }

    impl Fixture {
        fn new(settings: CaseSettings) -> Self {
            let start = Instant::now();
            Fixture { health: CaseHealth::new(&settings, start), start, start_wall: Utc::now(), now: Duration::ZERO }
        }

        fn instant(&self) -> Instant {
            self.start + self.now
        }

        fn wall(&self) -> DateTime<Utc> {
            self.start_wall + chrono::Duration::from_std(self.now).unwrap()
        }

        fn wait(&mut self, d: Duration) {
            self.now += d;
        }

        /// A test issued now that finishes now in `state`.
        fn test(&mut self, state: State) -> HealthChange {
            let (now, wall) = (self.instant(), self.wall());
            self.health.test_received(now);
            self.health.test_finished(state, wall - chrono::Duration::milliseconds(1), Some(0.01), now, wall)
        }

        /// The kinds of the suite failures a test in `state` causes, and whether each is to be reported.
        fn failures(&mut self, state: State) -> Vec<(SuiteFailureKind, bool)> {
            let HealthChange::SuiteFailed(failures) = self.test(state) else { return Vec::new() };
            let now = self.instant();
            failures.iter().map(|f| (f.kind, self.health.suite_failed(f, now))).collect()
        }
    }

    #[test]
    fn median_is_over_the_last_samples_only() {
        let mut h = History::new(3);
        for x in [100.0, 1.0, 2.0, 3.0] {
            h.push(x);
        }
        assert_eq!(h.median(), Some(2.0));
        h.push(5.0);
        assert_eq!(h.median(), Some(3.0));
        let mut even = History::new(4);
        for x in [1.0, 2.0, 3.0, 4.0] {
            even.push(x);
        }
        assert_eq!(even.median(), Some(2.5));
    }

    #[test]
    fn failures_are_counted_over_the_last_n_outcomes_only() {
        let mut recent = RecentOutcomes::new(5);
        assert_eq!(recent.failures_in_last(3), (0, 0));
        for failed in [true, true, false, true] {
            recent.push(failed);
        }
        assert_eq!(recent.failures_in_last(10), (3, 4), "fewer than asked for: all there are");
        assert_eq!(recent.failures_in_last(2), (1, 2));
        recent.push(false);
        recent.push(false);
        assert_eq!(recent.failures_in_last(5), (2, 5), "the first outcome fell out of the capacity");
    }

    #[test]
    fn the_pass_rate_window_slides_and_stays_bounded() {
        let origin = Instant::now();
        let mut window = WindowCounts::new(Duration::from_secs(60), origin); // steps of 1 s
        window.record(origin, false);
        window.record(origin + Duration::from_millis(500), true);
        window.record(origin + Duration::from_secs(30), true);
        assert_eq!(window.counts(origin + Duration::from_secs(30)), (2, 3));
        // 60.5 s later the first step is exactly 60 steps back: still inside (the window plus at most one step).
        assert_eq!(window.counts(origin + Duration::from_millis(60_500)), (2, 3));
        assert_eq!(window.counts(origin + Duration::from_secs(61)), (1, 1), "the first second left the window");
        assert_eq!(window.counts(origin + Duration::from_secs(91)), (0, 0));
        for i in 0..10_000u64 {
            window.record(origin + Duration::from_millis(100_000 + 37 * i), i % 2 == 0);
        }
        assert!(window.steps.len() <= WINDOW_STEPS as usize + 1, "{} steps kept", window.steps.len());
    }

    #[test]
    fn n_of_the_last_m_executions_failing_fails_the_suite_once_skips_not_counted() {
        let mut f = Fixture::new(CaseSettings::new("c").failure_rate(3, 5));
        for state in [State::Fail, State::Pass, State::Timeout, State::Skip, State::Skip, State::Pass] {
            assert_eq!(f.failures(state), vec![]);
        }
        // Last five (SKIP excluded): FAIL PASS TIMEOUT PASS ERROR → 3 of 5.
        assert_eq!(f.failures(State::Error), vec![(SuiteFailureKind::FailureRate, true)]);
        let last = f.health.snapshot_at(f.instant()).last_suite_failure.unwrap();
        assert_eq!(last.reason, "3 of the last 5 executions failed");
        // Still met on the next failure, within state_transition_delay: counted, not reported.
        assert_eq!(f.failures(State::Fail), vec![(SuiteFailureKind::FailureRate, false)]);
    }

    #[test]
    fn the_pass_rate_policy_needs_its_minimum_of_executions_within_the_window() {
        let settings = CaseSettings::new("c").min_pass_rate(0.8, Duration::from_secs(600)).min_pass_rate_executions(4);
        let mut f = Fixture::new(settings);
        assert_eq!(f.failures(State::Fail), vec![], "one failure of one is not a pass rate of 0 %");
        f.wait(SECOND);
        assert_eq!(f.failures(State::Pass), vec![]);
        assert_eq!(f.failures(State::Pass), vec![]);
        // 4 executions, 2 passed: 50 % < 80 %.
        assert_eq!(f.failures(State::Fail), vec![(SuiteFailureKind::PassRate, true)]);
        let reason = f.health.snapshot_at(f.instant()).last_suite_failure.unwrap().reason;
        assert_eq!(reason, "pass rate 50.0 % (2 of 4 executions passed) over the last 10 min is below 80.0 %");

        // Eleven minutes of passes later the failures are out of the window: 9 of 10 passed, 90 % ≥ 80 %.
        let mut g = Fixture::new(
            CaseSettings::new("c").min_pass_rate(0.8, Duration::from_secs(600)).min_pass_rate_executions(4),
        );
        for _ in 0..3 {
            g.test(State::Fail);
        }
        g.wait(Duration::from_secs(660));
        for _ in 0..9 {
            g.test(State::Pass);
        }
        assert_eq!(g.failures(State::Fail), vec![]);
    }

    #[test]
    fn a_distinct_cause_is_reported_whatever_came_before_the_same_one_only_after_the_delay() {
        let settings = CaseSettings::new("c").max_consecutive_failures(2).failure_rate(3, 4);
        let mut f = Fixture::new(settings.warn_stalled_after(Duration::from_secs(5)));
        f.wait(Duration::from_secs(6));
        let stall = f.health.check_stalled(f.instant(), f.wall()).unwrap();
        assert!(f.health.suite_failed(&stall, f.instant()), "a stall starts: reported");
        assert_eq!(f.health.snapshot_at(f.instant()).stall.unwrap().quiet_seconds, 6.0);
        f.wait(SECOND);
        assert_eq!(f.failures(State::Fail), vec![]);
        assert!(f.health.snapshot_at(f.instant()).stall.is_none(), "a test arrived: no longer stalled");
        assert_eq!(
            f.failures(State::Fail),
            vec![(SuiteFailureKind::ConsecutiveFailures, true)],
            "within state_transition_delay of the stall, yet another cause: reported"
        );
        assert_eq!(
            f.failures(State::Fail),
            vec![(SuiteFailureKind::ConsecutiveFailures, false), (SuiteFailureKind::FailureRate, true)]
        );
        let down = f.health.service_down(Some("http://svc/".into()), "connection refused".into(), f.wall());
        assert!(f.health.suite_failed(&down, f.instant()), "service down is a cause of its own");
        assert!(!f.health.suite_failed(&down, f.instant()), "the same, again within the delay");
        let snapshot = f.health.snapshot_at(f.instant());
        assert_eq!(snapshot.status, State::Fail);
        assert_eq!(snapshot.service_down.unwrap().url.as_deref(), Some("http://svc/"));
        assert!(f.health.service_reachable().is_some());
        assert!(f.health.snapshot_at(f.instant()).failing, "reachable again, but no test passed since");
        assert!(f.health.suite_failed(&down, f.instant()), "down again after being up: a new start");
        f.wait(Duration::from_secs(61));
        assert_eq!(
            f.failures(State::Fail),
            vec![(SuiteFailureKind::ConsecutiveFailures, true), (SuiteFailureKind::FailureRate, true)]
        );
    }

    #[test]
    fn consecutive_failures_are_failures_in_a_row() {
        let mut f = Fixture::new(CaseSettings::new("c"));
        f.test(State::Fail);
        f.test(State::Timeout);
        assert_eq!(f.health.snapshot_at(f.instant()).consecutive_failures, 2);
        // A pass issued before the last failure does not break the run.
        let (now, wall) = (f.instant(), f.wall());
        f.health.test_finished(State::Pass, wall - chrono::Duration::seconds(5), None, now, wall);
        assert_eq!(f.health.snapshot_at(now).consecutive_failures, 2);
        f.wait(SECOND);
        f.test(State::Pass);
        let snapshot = f.health.snapshot_at(f.instant());
        assert_eq!(snapshot.consecutive_failures, 0, "a pass issued after the failure breaks the run");
        assert_eq!(snapshot.status, State::Timeout, "the status waits for state_transition_delay");
        assert_eq!(snapshot.total_failures, 2);
    }

    #[test]
    fn recovery_waits_until_no_rate_policy_is_met() {
        let mut f = Fixture::new(CaseSettings::new("c").failure_rate(2, 4));
        f.test(State::Fail);
        assert_eq!(f.failures(State::Fail), vec![(SuiteFailureKind::FailureRate, true)]);
        f.wait(Duration::from_secs(61));
        assert_eq!(f.test(State::Pass), HealthChange::Nothing, "2 of the last 3 failed");
        assert_eq!(f.test(State::Pass), HealthChange::Nothing, "2 of the last 4 failed");
        assert_eq!(f.test(State::Pass), HealthChange::Recovered(SuiteFailureKind::FailureRate));
        let snapshot = f.health.snapshot_at(f.instant());
        assert_eq!((snapshot.status, snapshot.failing), (State::Pass, false));
        assert_eq!(snapshot.pass_rate, PassRate { last: 5, passed: 3, rate: Some(0.6) });
    }

    #[test]
    fn lateness_is_never_negative() {
        let mut f = Fixture::new(CaseSettings::new("c").frequency(Duration::from_millis(500)));
        f.test(State::Pass);
        // Real traffic between the fake requests: gaps shorter than the frequency are 0 late, not negative.
        for gap_ms in [157, 343, 500, 900] {
            f.wait(Duration::from_millis(gap_ms));
            f.test(State::Pass);
        }
        let snapshot = f.health.snapshot_at(f.instant());
        assert_eq!(f.health.lateness.samples, [0.0, 0.0, 0.0, 0.4]);
        assert_eq!(snapshot.lateness_median_seconds, Some(0.0));
        let interval = snapshot.interval_median_seconds.unwrap();
        assert!((interval - 0.4215).abs() < 1e-9, "the time before the first test is not counted: {interval}");
    }

    #[test]
    fn the_snapshot_serializes_with_the_api_names() {
        let mut f = Fixture::new(CaseSettings::new("c"));
        f.test(State::Pass);
        f.test(State::Skip);
        let json = serde_json::to_value(f.health.snapshot_at(f.instant())).unwrap();
        assert_eq!(json["counts"], serde_json::json!({"PASS": 1, "FAIL": 0, "ERROR": 0, "TIMEOUT": 0, "SKIP": 1}));
        assert_eq!(json["pass_rate"], serde_json::json!({"last": 1, "passed": 1, "rate": 1.0}));
        let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "status",
                "failing",
                "service_down",
                "stall",
                "clock_skew",
                "last_suite_failure",
                "counts",
                "consecutive_failures",
                "total_failures",
                "pass_rate",
                "runtime_median_seconds",
                "interval_median_seconds",
                "lateness_median_seconds"
            ]
        );
    }
}
