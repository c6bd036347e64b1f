//! `GET /metrics`: the instance in Prometheus / OpenMetrics text.
//!
//! Executions, runtimes, signal latencies and suite failures are observed as they happen
//! ([`ExecutionMetrics`]); case status, tests in flight and the instance's counters are read at each scrape.

use std::{
    collections::HashMap,
    sync::{atomic::AtomicU64, Arc, Mutex},
};

use axum::{extract::State, http::header, response::IntoResponse};
use prometheus_client::{
    encoding::{text::encode, EncodeLabel, EncodeLabelSet, LabelSetEncoder},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::{Registry, Unit},
};

use super::{foldable_histogram::FoldableHistogram, server::Instance};
use crate::{
    gate::{RecentVersions, DEFAULT_PLACES, OTHER},
    health::SuiteFailure,
    history::SignalStatus,
    observe::{ExecutionFinished, HealthEvent, Observer},
    wire::State as TestState,
};

/// The content type of OpenMetrics text.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The instance's counters that count inputs dropped or ignored, exported as one family by cause.
const DROPPED: [&str; 16] = [
    "tests_malformed",
    "tests_unsigned",
    "tests_bad_signature",
    "tests_unknown_case",
    "messages_too_large",
    "signals_malformed",
    "signals_unknown_case",
    "signals_unknown_name",
    "signals_stale",
    "signals_late",
    "signals_evicted",
    "signals_expired",
    "stream_messages_malformed",
    "headers_malformed",
    "headers_unsigned",
    "headers_bad_signature",
];

/// The instance's counters exported as a family with labels instead (observed as they happen).
const LABELLED: [&str; 1] = ["suite_failures"];

/// The states a case can be in, for the one-hot status gauge.
const CASE_STATES: [TestState; 7] = [
    TestState::Init,
    TestState::Pass,
    TestState::Degraded,
    TestState::Fail,
    TestState::Error,
    TestState::Timeout,
    TestState::Stall,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CaseLabels {
    case: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CaseStateLabels {
    case: Arc<str>,
    state: &'static str,
}

/// An execution's case and state, and the version that sampled it: a label only when it said (executions of
/// services without a version keep the series they always had).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct ExecutionLabels {
    case: Arc<str>,
    state: &'static str,
    version: Option<Arc<str>>,
}

impl EncodeLabelSet for ExecutionLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        ("case", &*self.case).encode(encoder.encode_label())?;
        ("state", self.state).encode(encoder.encode_label())?;
        if let Some(version) = &self.version {
            ("version", &**version).encode(encoder.encode_label())?;
        }
        Ok(())
    }
}

/// A runtime's case, and its version when it said.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct RuntimeLabels {
    case: Arc<str>,
    version: Option<Arc<str>>,
}

impl EncodeLabelSet for RuntimeLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        ("case", &*self.case).encode(encoder.encode_label())?;
        if let Some(version) = &self.version {
            ("version", &**version).encode(encoder.encode_label())?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignalLabels {
    case: Arc<str>,
    signal: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SuiteFailureLabels {
    case: Arc<str>,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CauseLabels {
    cause: &'static str,
}

/// A histogram of seconds: 1 ms to about 4.4 min, doubling.
fn seconds() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 19))
}

type SecondsFamily<S> = Family<S, Histogram, fn() -> Histogram>;

/// What is observed as executions finish and suites fail.
#[derive(Debug)]
pub(crate) struct ExecutionMetrics {
    executions: Family<ExecutionLabels, Counter>,
    runtime: Family<RuntimeLabels, FoldableHistogram>,
    /// Per case, the versions with series of their own (the last [`DEFAULT_PLACES`] seen); older ones are folded
    /// into `other`.
    versions: Mutex<HashMap<Arc<str>, RecentVersions>>,
    signal_latency: SecondsFamily<SignalLabels>,
    stage_latency: SecondsFamily<SignalLabels>,
    stage_missing: Family<SignalLabels, Counter>,
    stage_over_budget: Family<SignalLabels, Counter>,
    suite_failures: Family<SuiteFailureLabels, Counter>,
}

impl Default for ExecutionMetrics {
    fn default() -> Self {
        ExecutionMetrics {
            executions: Family::default(),
            runtime: Family::default(),
            versions: Mutex::default(),
            signal_latency: Family::new_with_constructor(seconds as fn() -> Histogram),
            stage_latency: Family::new_with_constructor(seconds as fn() -> Histogram),
            stage_missing: Family::default(),
            stage_over_budget: Family::default(),
            suite_failures: Family::default(),
        }
    }
}

impl Observer for ExecutionMetrics {
    fn execution_finished(&self, execution: &ExecutionFinished<'_>) {
        let report = execution.report;
        // Labels by the case's own name: one per case registered (reports only name cases this instance runs).
        let name: Arc<str> = execution.case.into();
        let version = execution.service_version.map(|version| self.version_label(&name, version));
        let labels = ExecutionLabels { case: name.clone(), state: report.state.as_str(), version: version.clone() };
        self.executions.get_or_create(&labels).inc();
        if let Some(runtime) = report.runtime {
            self.runtime.get_or_create(&RuntimeLabels { case: name.clone(), version }).observe(runtime);
        }
        // Only declared signals are labels: the label set stays bounded.
        for (signal, waited) in &report.signal_latency.0 {
            if let Some(signal) = execution.declared_signals.iter().find(|s| ***s == **signal) {
                let labels = SignalLabels { case: name.clone(), signal: signal.clone() };
                self.signal_latency.get_or_create(&labels).observe(*waited);
            }
        }
        // Stages: each declared signal's arrival after the test's issue, or its wait in vain.
        for outcome in execution.signals {
            let labels = || SignalLabels { case: name.clone(), signal: outcome.signal.clone() };
            match (outcome.status, outcome.after_issue_seconds) {
                (SignalStatus::Received, Some(after_issue)) => {
                    self.stage_latency.get_or_create(&labels()).observe(after_issue);
                }
                (SignalStatus::Missing, _) => {
                    self.stage_missing.get_or_create(&labels()).inc();
                }
                _ => {}
            }
        }
        for over in &report.over_budget {
            if let Some(signal) = execution.declared_signals.iter().find(|s| ***s == *over.signal) {
                let labels = SignalLabels { case: name.clone(), signal: signal.clone() };
                self.stage_over_budget.get_or_create(&labels).inc();
            }
        }
    }

    fn health_changed(&self, change: &HealthEvent<'_>) {
        if let HealthEvent::SuiteFailed { failure, .. } = change {
            let labels = SuiteFailureLabels { case: failure.case_name.as_str().into(), kind: kind(failure) };
            self.suite_failures.get_or_create(&labels).inc();
        }
    }
}

impl ExecutionMetrics {
    /// The label of `version` on `case`'s series: the version, which takes the place of the version seen longest
    /// ago when the case has [`DEFAULT_PLACES`] already (that version's series are folded into `other`).
    fn version_label(&self, case: &Arc<str>, version: &str) -> Arc<str> {
        let mut versions = crate::sync::lock(&self.versions);
        let recent = versions.entry(case.clone()).or_insert_with(|| RecentVersions::new(DEFAULT_PLACES));
        let (label, placed) = recent.see(version);
        if let Some(evicted) = placed.evicted {
            self.fold(case, evicted);
        }
        label
    }

    /// Moves the counts and runtimes of `case`'s `version` into its `other` series.
    fn fold(&self, case: &Arc<str>, version: Arc<str>) {
        let other: Arc<str> = OTHER.into();
        for state in TestState::ALL {
            let labels = ExecutionLabels { case: case.clone(), state: state.as_str(), version: Some(version.clone()) };
            let count = self.executions.get(&labels).map(|counter| counter.get());
            if let Some(count) = count {
                self.executions.remove(&labels);
                let folded = ExecutionLabels { version: Some(other.clone()), ..labels };
                self.executions.get_or_create(&folded).inc_by(count);
            }
        }
        let labels = RuntimeLabels { case: case.clone(), version: Some(version) };
        let runtimes = self.runtime.get(&labels).map(|histogram| histogram.clone());
        if let Some(runtimes) = runtimes {
            self.runtime.remove(&labels);
            self.runtime.get_or_create(&RuntimeLabels { case: case.clone(), version: Some(other) }).absorb(&runtimes);
        }
    }
}

/// What made a suite fail.
fn kind(failure: &SuiteFailure) -> &'static str {
    failure.kind.as_str()
}

pub(super) async fn metrics(State(instance): State<Arc<Instance>>) -> impl IntoResponse {
    let mut text = String::new();
    if let Err(error) = encode(&mut text, &registry(&instance)) {
        // Writing to a String does not fail; should it, the scrape gets what was written.
        tracing::warn!(%error, "encoding the metrics failed");
    }
    ([(header::CONTENT_TYPE, OPENMETRICS)], text)
}

/// Every metric of the instance, as of now.
fn registry(instance: &Instance) -> Registry {
    let app = &instance.app;
    let mut registry = Registry::with_prefix("livecheck");
    {
        let observed = &instance.observed;
        registry.register(
            "executions",
            "Executions that reached a verdict, by case, state and (when the service said) the version that sampled them",
            observed.executions.clone(),
        );
        registry.register_with_unit(
            "test_runtime",
            "How long executions ran, by case and (when the service said) version",
            Unit::Seconds,
            observed.runtime.clone(),
        );
        registry.register_with_unit(
            "signal_latency",
            "How long executions waited for each signal, by case and signal",
            Unit::Seconds,
            observed.signal_latency.clone(),
        );
        registry.register_with_unit(
            "stage_latency",
            "Seconds from a test's issue to each declared signal's arrival, by case and signal",
            Unit::Seconds,
            observed.stage_latency.clone(),
        );
        registry.register(
            "stage_missing",
            "Executions that waited for a declared signal in vain, by case and signal",
            observed.stage_missing.clone(),
        );
        registry.register(
            "stage_over_budget",
            "DEGRADED executions in which a declared signal arrived later than its budget, by case and signal",
            observed.stage_over_budget.clone(),
        );
        registry.register(
            "suite_failures",
            "Suite failures by case and kind (consecutive_failures, failure_rate, pass_rate, stall, service_down, \
             clock_skew, degraded_rate)",
            observed.suite_failures.clone(),
        );
    }

    let status: Family<CaseStateLabels, Gauge> = Family::default();
    let failing: Family<CaseLabels, Gauge> = Family::default();
    let service_down: Family<CaseLabels, Gauge> = Family::default();
    let stalled: Family<CaseLabels, Gauge> = Family::default();
    let in_flight: Family<CaseLabels, Gauge> = Family::default();
    let oldest: Family<CaseLabels, Gauge<f64, AtomicU64>> = Family::default();
    let late: Family<SignalLabels, Counter> = Family::default();
    let duplicates: Family<SignalLabels, Counter> = Family::default();
    for case in app.case_statuses() {
        let name: Arc<str> = case.name.as_str().into();
        for stage in app.case_stages(&case.name).unwrap_or_default() {
            let labels = SignalLabels { case: name.clone(), signal: stage.signal.as_str().into() };
            late.get_or_create(&labels).inc_by(stage.late);
            duplicates.get_or_create(&labels).inc_by(stage.duplicates);
        }
        for state in CASE_STATES {
            let labels = CaseStateLabels { case: name.clone(), state: state.as_str() };
            status.get_or_create(&labels).set(i64::from(case.health.status == state));
        }
        let labels = CaseLabels { case: name };
        failing.get_or_create(&labels).set(i64::from(case.is_failing()));
        service_down.get_or_create(&labels).set(i64::from(case.health.service_down.is_some()));
        stalled.get_or_create(&labels).set(i64::from(case.health.stall.is_some()));
        in_flight.get_or_create(&labels).set(case.in_flight as i64);
        oldest.get_or_create(&labels).set(case.oldest_in_flight_seconds.unwrap_or(0.0));
    }
    registry.register("case_status", "1 for each case's current status, 0 for the other states", status);
    registry.register("stage_late", "Signals that came after their test's verdict, by case and signal", late);
    registry.register(
        "stage_duplicates",
        "Signals a test had received already (sent twice for one test), by case and signal",
        duplicates,
    );
    registry.register(
        "case_failing",
        "1 when the case is failing (a suite failure not recovered from, its service down, or a failing status)",
        failing,
    );
    registry.register("case_service_down", "1 while a fake request finds the case's service down", service_down);
    registry.register("case_stalled", "1 while the case is stalled (no test for warn_stalled_after)", stalled);
    registry.register("tests_in_flight", "Executions running now, by case", in_flight);
    registry.register_with_unit(
        "oldest_in_flight",
        "How long the oldest execution running now has been running, by case (0 when none runs)",
        Unit::Seconds,
        oldest,
    );

    let connections = &instance.connections;
    registry.register("web_connections_open", "Connections to this web server open now", connections.open.clone());
    registry.register(
        "web_connections_refused",
        "Connections to this web server closed at once because it held its most connections",
        connections.refused.clone(),
    );
    registry.register(
        "web_connections_timed_out",
        "Connections to this web server closed by a timeout: header_read (a request's headers, or the TLS \
         handshake, too slow) or idle",
        connections.timed_out.clone(),
    );
    registry.register(
        "web_tls_handshakes_failed",
        "Connections to this HTTPS web server closed because their TLS handshake failed",
        connections.tls_failed.clone(),
    );

    let leader: Gauge = Gauge::default();
    leader.set(i64::from(instance.is_leader()));
    registry.register("leader", "1 when this instance is its group's leader (it makes the fake requests)", leader);
    let lag = app.lagging();
    let lagging: Gauge = Gauge::default();
    lagging.set(i64::from(lag.is_some()));
    registry.register(
        "lagging",
        "1 while this instance is further behind its streams than its lag_threshold (its TIMEOUTs are then unknown)",
        lagging,
    );
    for (name, help, behind) in [
        (
            "pending_tests_behind",
            "Pending tests on this instance's partitions not read yet, while it lags (0 otherwise)",
            lag.as_ref().map_or(0, |l| l.pending_tests_behind),
        ),
        (
            "signals_behind",
            "Signals on this instance's partitions of the bus not read yet, while it lags (0 otherwise)",
            lag.as_ref().map_or(0, |l| l.signals_behind),
        ),
    ] {
        let gauge: Gauge = Gauge::default();
        gauge.set(behind as i64);
        registry.register(name, help, gauge);
    }

    let counters = app.metrics();
    let dropped: Family<CauseLabels, Counter> = Family::default();
    for (name, help, value) in counters.counters() {
        if LABELLED.contains(&name) {
            continue;
        }
        if let Some(cause) = DROPPED.iter().find(|cause| **cause == name) {
            dropped.get_or_create(&CauseLabels { cause }).inc_by(value);
        } else {
            let counter: Counter = Counter::default();
            counter.inc_by(value);
            // (The encoder ends the help text with a full stop.)
            registry.register(name, help.trim().trim_end_matches('.'), counter);
        }
    }
    registry.register(
        "inputs_dropped",
        "Inputs dropped or handled as no test, by cause (malformed, unknown case or signal, stale, late, over a \
         limit, expired, unsigned or badly signed headers and executions)",
        dropped,
    );
    for (name, help, value) in [
        ("alerts_delivered", "Alerts a webhook accepted", counters.alerts_delivered),
        ("alerts_failed", "Alerts given up on after their attempts", counters.alerts_failed),
        ("alerts_dropped", "Alerts dropped because the queue of alerts to send was full", counters.alerts_dropped),
        (
            "group_rejoins",
            "Times the instance rejoined its group to have unowned partitions assigned",
            counters.group_rejoins,
        ),
    ] {
        let counter: Counter = Counter::default();
        counter.inc_by(value);
        registry.register(name, help, counter);
    }
    for (name, help, value) in [
        ("tests_executing", "Tests executing now", counters.tests_executing),
        ("signals_held", "Signals held now for tests that have not started executing", counters.signals_held),
        ("signals_held_bytes", "The bytes those signals take", counters.signals_held_bytes),
        (
            "reports_remembered",
            "Reported executions remembered so that copies are not run again",
            counters.reports_remembered,
        ),
        (
            "unowned_partitions",
            "Partitions of the group with tests or signals waiting and no member consuming them",
            counters.unowned_partitions,
        ),
    ] {
        let gauge: Gauge = Gauge::default();
        gauge.set(value as i64);
        registry.register(name, help, gauge);
    }
    registry
}
