//! The health of one case: counters, medians and the suite state machine.

use std::{collections::VecDeque, time::Duration};

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::CaseSettings;
use crate::wire::State;

/// A case failing as a whole: too many failures in a row, no tests arriving, or the service being down.
#[derive(Clone, Debug, PartialEq)]
pub struct SuiteFailure {
    /// The case.
    pub case_name: String,
    /// FAIL or STALL.
    pub state: State,
    /// Why, in words.
    pub reason: String,
}

/// A point-in-time view of a case's health.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct HealthSnapshot {
    /// The case's status: INIT until a test finished, then the state of the last failure or PASS.
    pub status: State,
    /// Tests finished per state.
    pub counts: Vec<(State, u64)>,
    /// Failing tests in a row.
    pub consecutive_failures: u32,
    /// Failing tests in all.
    pub total_failures: u64,
    /// Median runtime of the last `max_history` tests, in seconds.
    pub runtime_median: Option<f64>,
    /// Median time between tests, in seconds.
    pub frequency_median: Option<f64>,
    /// Median lateness of tests against `frequency`, in seconds.
    pub latency_median: Option<f64>,
}

impl HealthSnapshot {
    /// How many tests finished in `state`.
    pub fn count(&self, state: State) -> u64 {
        self.counts.iter().find(|(s, _)| *s == state).map_or(0, |(_, n)| *n)
    }
}

/// What a finished test did to the case.
#[derive(Debug, PartialEq)]
pub(crate) enum HealthChange {
    Nothing,
    SuiteFailed(SuiteFailure),
    Recovered,
}

pub(crate) struct CaseHealth {
    case_name: String,
    max_consecutive_failures: u32,
    state_transition_delay: Duration,
    warn_stalled_after: Duration,
    frequency: Option<Duration>,
    status: State,
    counts: [u64; State::ALL.len()],
    consecutive_failures: u32,
    total_failures: u64,
    last_test_received: Instant,
    /// Monotonic and wall-clock time of the last failure (test or suite): the wall time is compared with test issue
    /// times, the monotonic time with delays. Never across.
    last_failure: Option<(Instant, DateTime<Utc>)>,
    /// When the last suite report was due: a failing suite is re-reported at most once per
    /// `state_transition_delay`.
    last_suite_report: Option<Instant>,
    /// A suite failure happened and the case has not recovered since.
    suite_failing: bool,
    last_stall_alert: Option<Instant>,
    runtime: History,
    between_tests: History,
    lateness: History,
}

impl CaseHealth {
    pub(crate) fn new(settings: &CaseSettings, now: Instant) -> Self {
        CaseHealth {
            case_name: settings.name.clone(),
            max_consecutive_failures: settings.max_consecutive_failures.max(1),
            state_transition_delay: settings.state_transition_delay,
            warn_stalled_after: settings.warn_stalled_after,
            frequency: settings.frequency,
            status: State::Init,
            counts: [0; State::ALL.len()],
            consecutive_failures: 0,
            total_failures: 0,
            last_test_received: now,
            last_failure: None,
            last_suite_report: None,
            suite_failing: false,
            last_stall_alert: None,
            runtime: History::new(settings.max_history),
            between_tests: History::new(settings.max_history),
            lateness: History::new(settings.max_history),
        }
    }

    /// A test arrived (it may still be skipped).
    pub(crate) fn test_received(&mut self, now: Instant) {
        let since = now.saturating_duration_since(self.last_test_received).as_secs_f64();
        self.between_tests.push(since);
        if let Some(frequency) = self.frequency {
            self.lateness.push(since - frequency.as_secs_f64());
        }
        self.last_test_received = now;
    }

    /// A test finished in `state`; `issued` is its issue time.
    pub(crate) fn test_finished(
        &mut self,
        state: State,
        issued: DateTime<Utc>,
        runtime: Option<f64>,
        now: Instant,
        now_wall: DateTime<Utc>,
    ) -> HealthChange {
        self.counts[index(state)] += 1;
        if let Some(runtime) = runtime {
            self.runtime.push(runtime);
        }
        match state {
            State::Fail | State::Error | State::Timeout => {
                self.status = state;
                self.consecutive_failures += 1;
                self.total_failures += 1;
                self.last_failure = Some((now, now_wall));
                if self.consecutive_failures >= self.max_consecutive_failures {
                    return HealthChange::SuiteFailed(SuiteFailure {
                        case_name: self.case_name.clone(),
                        state: State::Fail,
                        reason: format!("failed after {} consecutive failures", self.consecutive_failures),
                    });
                }
                HealthChange::Nothing
            }
            State::Pass => self.passed(issued, now),
            _ => HealthChange::Nothing,
        }
    }

    /// Only a passing test issued after the last failure, once `state_transition_delay` has passed since it,
    /// recovers the case.
    fn passed(&mut self, issued: DateTime<Utc>, now: Instant) -> HealthChange {
        let recovers = match self.last_failure {
            _ if self.status == State::Pass => true,
            None => true,
            Some((failed_at, failed_at_wall)) => {
                issued > failed_at_wall && now.saturating_duration_since(failed_at) >= self.state_transition_delay
            }
        };
        if !recovers {
            return HealthChange::Nothing;
        }
        self.status = State::Pass;
        self.consecutive_failures = 0;
        if std::mem::take(&mut self.suite_failing) {
            HealthChange::Recovered
        } else {
            HealthChange::Nothing
        }
    }

    /// Records a suite failure (its time counts as the last failure); returns whether a suite report is due: the
    /// case was ok before, or the last suite report is older than `state_transition_delay`.
    pub(crate) fn suite_failed(&mut self, failure: &SuiteFailure, now: Instant, now_wall: DateTime<Utc>) -> bool {
        let due = self.status.is_ok()
            || self.last_suite_report.is_none_or(|t| now.saturating_duration_since(t) > self.state_transition_delay);
        self.status = failure.state;
        self.suite_failing = true;
        self.last_failure = Some((now, now_wall));
        if due {
            self.last_suite_report = Some(now);
        }
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
    pub(crate) fn check_stalled(&mut self, now: Instant) -> Option<SuiteFailure> {
        if now < self.next_stall_check() {
            return None;
        }
        self.last_stall_alert = Some(now);
        let quiet = now.saturating_duration_since(self.last_test_received);
        Some(SuiteFailure {
            case_name: self.case_name.clone(),
            state: State::Stall,
            reason: format!("no test received for {:.1} s", quiet.as_secs_f64()),
        })
    }

    pub(crate) fn snapshot(&self) -> HealthSnapshot {
        HealthSnapshot {
            status: self.status,
            counts: State::ALL.iter().map(|s| (*s, self.counts[index(*s)])).collect(),
            consecutive_failures: self.consecutive_failures,
            total_failures: self.total_failures,
            runtime_median: self.runtime.median(),
            frequency_median: self.between_tests.median(),
            latency_median: self.lateness.median(),
        }
    }
}

fn index(state: State) -> usize {
    State::ALL.iter().position(|s| *s == state).unwrap_or(0)
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
}
