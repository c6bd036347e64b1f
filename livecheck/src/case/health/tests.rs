//! The state machine's tests, and the fixture the policies' tests share.

use super::*;

pub(super) const SECOND: Duration = Duration::from_secs(1);

/// A case's health with a wall clock that moves with the monotonic one, as `Clock::follow_tokio` does.
pub(super) struct Fixture {
    pub(super) health: CaseHealth,
    start: Instant,
    start_wall: DateTime<Utc>,
    now: Duration,
}

impl Fixture {
    pub(super) fn new(settings: CaseSettings) -> Self {
        let start = Instant::now();
        Fixture { health: CaseHealth::new(&settings, start), start, start_wall: Utc::now(), now: Duration::ZERO }
    }

    pub(super) fn instant(&self) -> Instant {
        self.start + self.now
    }

    pub(super) fn wall(&self) -> DateTime<Utc> {
        self.start_wall + chrono::Duration::from_std(self.now).unwrap()
    }

    pub(super) fn wait(&mut self, d: Duration) {
        self.now += d;
    }

    /// A test issued now that finishes now in `state`.
    pub(super) fn test(&mut self, state: State) -> HealthChange {
        self.test_with(state, &[])
    }

    /// A test issued now that finishes now in `state`, its signals' outcomes `signals`.
    pub(super) fn test_with(&mut self, state: State, signals: &[SignalOutcome]) -> HealthChange {
        let (now, wall) = (self.instant(), self.wall());
        self.health.test_received(now);
        self.health.test_finished(state, wall - chrono::Duration::milliseconds(1), Some(0.01), signals, now, wall)
    }

    /// The kinds of the suite failures a test in `state` causes, and whether each is to be reported.
    pub(super) fn failures(&mut self, state: State) -> Vec<(SuiteFailureKind, bool)> {
        let HealthChange::SuiteFailed(failures) = self.test(state) else { return Vec::new() };
        let now = self.instant();
        failures.iter().map(|f| (f.kind, self.health.suite_failed(f, now))).collect()
    }
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
    f.health.test_finished(State::Pass, wall - chrono::Duration::seconds(5), None, &[], now, wall);
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
    assert_eq!(*f.health.lateness.samples(), [0.0, 0.0, 0.0, 0.4]);
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
    assert_eq!(
        json["counts"],
        serde_json::json!({"PASS": 1, "DEGRADED": 0, "FAIL": 0, "ERROR": 0, "TIMEOUT": 0, "SKIP": 1})
    );
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
            "unknown_verdicts",
            "pass_rate",
            "runtime_median_seconds",
            "interval_median_seconds",
            "lateness_median_seconds"
        ]
    );
}
