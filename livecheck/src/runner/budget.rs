//! Latency budgets: which stages of a passing execution arrived later than their budget allows (it is then
//! DEGRADED).

use chrono::{DateTime, Utc};

use super::TestRun;
use crate::wire::OverBudget;

/// The declared signals of `run` that arrived later after the test's issue than their budget, at `now_wall`
/// (when the run ends). Signals that did not arrive are not over budget: a wait for them that timed out is a
/// TIMEOUT, and one never waited for is no stage of this execution.
pub(crate) fn over_budget(run: &TestRun, now_wall: DateTime<Utc>) -> Vec<OverBudget> {
    let budgets = &run.case.settings.signal_budgets;
    if budgets.is_empty() {
        return Vec::new();
    }
    let arrivals = run.signals.arrivals();
    let started_after_issue = run.started_after_issue(now_wall, run.elapsed().as_secs_f64());
    budgets
        .iter()
        .filter_map(|(signal, budget)| {
            let arrived = (*arrivals.get(run.case.signal_index(signal)?)?)?;
            let latency = (started_after_issue + arrived).max(0.0);
            let budget = budget.as_secs_f64();
            (latency > budget).then(|| OverBudget::new(signal.clone(), budget, latency))
        })
        .collect()
}
