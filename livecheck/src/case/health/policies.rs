//! The failure policies a failing test is checked against: consecutive failures, "N of the last M executions
//! failed" ([`CaseSettings::failure_rate`]) and "pass rate below X over W" ([`CaseSettings::min_pass_rate`]).
//!
//! [`CaseSettings::failure_rate`]: crate::CaseSettings::failure_rate
//! [`CaseSettings::min_pass_rate`]: crate::CaseSettings::min_pass_rate

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::{CaseHealth, SuiteFailure, SuiteFailureKind};
use crate::wire::State;

impl CaseHealth {
    /// The failure policies a failing test just met (each is a suite failure of its kind).
    pub(super) fn policies_met(&self, now: Instant, now_wall: DateTime<Utc>) -> Vec<SuiteFailure> {
        let mut met = Vec::new();
        if self.consecutive_failures >= self.max_consecutive_failures {
            let mut reason = format!("failed after {} consecutive failures", self.consecutive_failures);
            self.name_missing_stage(&mut reason, self.consecutive_failures as usize);
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
    pub(super) fn failure_rate_met(&self) -> Option<String> {
        let policy = self.failure_rate?;
        let (failed, seen) = self.recent.failures_in_last(policy.of_last as usize);
        (failed >= policy.failures).then(|| {
            let mut reason = format!("{failed} of the last {seen} executions failed");
            self.name_missing_stage(&mut reason, failed as usize);
            reason
        })
    }

    /// Why the "more than X degraded over W" policy is met now, if it is: naming the stage over its budget most
    /// often.
    pub(super) fn degraded_rate_met(&self, now: Instant) -> Option<String> {
        let (policy, window) = self.max_degraded_rate.as_ref()?;
        let (not_degraded, finished) = window.counts(now);
        let degraded = finished - not_degraded;
        if finished < self.min_pass_rate_executions || degraded as f64 <= policy.max_rate * finished as f64 {
            return None;
        }
        let mut reason = format!(
            "{:.1} % degraded ({degraded} of {finished} executions) over the last {} is above {:.1} %",
            100.0 * degraded as f64 / finished as f64,
            duration_text(policy.window),
            100.0 * policy.max_rate,
        );
        if let Some((signal, over, of)) = self.stages.most_over_budget() {
            reason.push_str(&format!("; `{signal}` over budget in {over} of the last {of} executions"));
        }
        Some(reason)
    }

    /// Adds to `reason` the stage missing in most of the last `failures` failed executions, when there is one:
    /// `; `order_executed` missing in 33 of the last 33 failures`.
    fn name_missing_stage(&self, reason: &mut String, failures: usize) {
        if let Some(stage) = self.stages.missing_in_failures(failures) {
            reason.push_str(&format!("; {stage}"));
        }
    }

    /// Why the "pass rate below X over W" policy is met now, if it is.
    pub(super) fn pass_rate_met(&self, now: Instant) -> Option<String> {
        let (policy, window) = self.min_pass_rate.as_ref()?;
        let (passed, finished) = window.counts(now);
        if finished < self.min_pass_rate_executions || passed as f64 >= policy.min_rate * finished as f64 {
            return None;
        }
        let mut reason = format!(
            "pass rate {:.1} % ({passed} of {finished} executions passed) over the last {} is below {:.1} %",
            100.0 * passed as f64 / finished as f64,
            duration_text(policy.window),
            100.0 * policy.min_rate,
        );
        self.name_missing_stage(&mut reason, (finished - passed) as usize);
        Some(reason)
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::tests::{Fixture, SECOND};
    use crate::{
        case::{CaseSettings, SuiteFailureKind},
        wire::State,
    };

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
    fn a_policy_met_names_the_stage_missing_in_most_of_its_failures() {
        use std::sync::Arc;

        use crate::{case::HealthChange, history::SignalStatus, observe::SignalOutcome};

        let (sent, executed): (Arc<str>, Arc<str>) = ("sent".into(), "executed".into());
        let outcome = |signal: &Arc<str>, status, after_issue_seconds| SignalOutcome {
            signal: signal.clone(),
            status,
            after_issue_seconds,
            service_version: None,
        };
        let broken =
            [outcome(&sent, SignalStatus::Received, Some(0.1)), outcome(&executed, SignalStatus::Missing, None)];
        let healthy =
            [outcome(&sent, SignalStatus::Received, Some(0.1)), outcome(&executed, SignalStatus::Received, Some(0.3))];
        let mut f = Fixture::new(CaseSettings::new("c").failure_rate(3, 5).max_consecutive_failures(4));
        let mut test = |state, signals: &[SignalOutcome]| {
            f.wait(SECOND); // a pass issued after the last failure ends a run of failures
            f.test_with(state, signals)
        };
        test(State::Pass, &healthy);
        test(State::Timeout, &broken);
        test(State::Pass, &healthy);
        test(State::Timeout, &broken);
        let HealthChange::SuiteFailed(failures) = test(State::Timeout, &broken) else { panic!("3 of 5") };
        assert_eq!(
            failures[0].reason,
            "3 of the last 5 executions failed; `executed` missing in 3 of the last 3 failures"
        );
        test(State::Timeout, &broken);
        let HealthChange::SuiteFailed(failures) = test(State::Fail, &healthy) else { panic!("4 in a row") };
        assert_eq!(failures[0].kind, SuiteFailureKind::ConsecutiveFailures);
        assert_eq!(
            failures[0].reason,
            "failed after 4 consecutive failures; `executed` missing in 3 of the last 4 failures"
        );
        // A failure whose signals all came names no stage.
        let mut g = Fixture::new(CaseSettings::new("c").max_consecutive_failures(1));
        let HealthChange::SuiteFailed(failures) = g.test_with(State::Fail, &healthy) else { panic!("1 in a row") };
        assert_eq!(failures[0].reason, "failed after 1 consecutive failures");
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
}
