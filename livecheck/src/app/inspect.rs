//! What an instance can tell about its cases and their executions: the status of each case and the record of
//! recent and running executions (what the web API serves).

use std::{collections::HashMap, sync::Arc, time::Duration};

use super::LiveCheck;
use crate::{
    case::{CaseCore, CaseStatus, StageHealth},
    history::ExecutionRecord,
    runner::TestRun,
};

impl LiveCheck {
    /// Every case's status, failing cases first (status neither INIT nor PASS), then by name.
    pub fn case_statuses(&self) -> Vec<CaseStatus> {
        let mut running: HashMap<Arc<str>, (u64, Duration)> = HashMap::new();
        for run in self.shared.router.executing() {
            let (count, oldest) = running.entry(run.case.name.clone()).or_default();
            *count += 1;
            *oldest = (*oldest).max(run.elapsed());
        }
        let lagging = self.shared.lag.lagging().is_some();
        let mut statuses: Vec<CaseStatus> = self
            .registry
            .all()
            .iter()
            .map(|case| {
                let core = case.core();
                status(core, running.get(&core.name).copied(), lagging)
            })
            .collect();
        statuses.sort_by(|a, b| b.is_failing().cmp(&a.is_failing()).then_with(|| a.name.cmp(&b.name)));
        statuses
    }

    /// How far behind the end of its partitions of the pending-tests and bus streams this instance reads, while
    /// it is further than its [`lag_threshold`](crate::LiveCheckBuilder::lag_threshold); `None` otherwise.
    pub fn lagging(&self) -> Option<crate::instance::LagState> {
        self.shared.lag.lagging()
    }

    /// The status of the case named `name`.
    pub fn case_status(&self, name: &str) -> Option<CaseStatus> {
        let case = self.registry.get(name)?;
        let core = case.core();
        let running = self.executing_of(core);
        let oldest = running.iter().map(|run| run.elapsed()).max();
        let lagging = self.shared.lag.lagging().is_some();
        Some(status(core, oldest.map(|oldest| (running.len() as u64, oldest)), lagging))
    }

    /// Each signal the case named `case` declares — a stage of its flow — over its last
    /// [`STAGE_WINDOW`](crate::health::STAGE_WINDOW) executions that ran: how often it was reached, arrived or was
    /// missing, and its latency from the test's issue and from the previous stage. `None` for an unknown case.
    pub fn case_stages(&self, case: &str) -> Option<Vec<StageHealth>> {
        let case = self.registry.get(case)?;
        let core = case.core();
        let declared = core.signal_names.get().map_or(&[][..], Vec::as_slice);
        let stages = core.health().stages(declared);
        Some(stages)
    }

    /// The case's recent executions, newest (by issue time) first: all those running now, and the finished ones
    /// its history keeps (at most [`execution_history`](crate::LiveCheckBuilder::execution_history)). `None` for
    /// an unknown case.
    pub fn recent_executions(&self, case: &str) -> Option<Vec<ExecutionRecord>> {
        let case = self.registry.get(case)?;
        let core = case.core();
        let now = self.shared.clock.now();
        let mut records: Vec<ExecutionRecord> =
            self.executing_of(core).iter().map(|run| ExecutionRecord::running(run, now)).collect();
        records.extend(core.history().newest_first().map(|execution| ExecutionRecord::finished(execution, core)));
        let template = self.shared.config.trace_url.as_deref();
        let mut records: Vec<ExecutionRecord> = records.into_iter().map(|record| record.linked(template)).collect();
        records.sort_by_key(|record| std::cmp::Reverse((record.issued_at, record.started_at)));
        Some(records)
    }

    /// The execution with test id `id`: the one running now, else the newest one any case's history keeps.
    pub fn execution(&self, id: &str) -> Option<ExecutionRecord> {
        let template = self.shared.config.trace_url.as_deref();
        if let Some(run) = self.shared.router.executing_test(id) {
            return Some(ExecutionRecord::running(&run, self.shared.clock.now()).linked(template));
        }
        self.registry
            .all()
            .iter()
            .filter_map(|case| {
                let core = case.core();
                let history = core.history();
                history.find(id).map(|execution| ExecutionRecord::finished(execution, core))
            })
            .max_by_key(|record| (record.issued_at, record.started_at))
            .map(|record| record.linked(template))
    }

    /// The executions of `case` running now.
    fn executing_of(&self, case: &Arc<CaseCore>) -> Vec<Arc<TestRun>> {
        let mut running = self.shared.router.executing();
        running.retain(|run| Arc::ptr_eq(&run.case, case));
        running
    }
}

/// The status of `case`, with how many of its executions run now and for how long the oldest has.
fn status(case: &CaseCore, running: Option<(u64, Duration)>, instance_lagging: bool) -> CaseStatus {
    CaseStatus {
        name: case.name.to_string(),
        health: case.health().snapshot(),
        in_flight: running.map_or(0, |(count, _)| count),
        oldest_in_flight_seconds: running.map(|(_, oldest)| oldest.as_secs_f64()),
        instance_lagging,
    }
}
