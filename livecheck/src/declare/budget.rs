//! Stage budgets: a soft latency budget per stage, read from the case file. A stage over its budget is slow, not
//! broken: the verdict stays what the contracts say, and the test's log says which stage was over and by how much.
//!
//! [`settings_with_budgets`] is where the budgets meet the case's settings when the library's `CaseSettings` takes
//! per-signal budgets (the DEGRADED verdict); today it hands the settings on as they are.

use std::time::Duration;

use crate::CaseSettings;

/// The case's settings with its stages' budgets (`(signal, budget)`), for the library to judge them.
pub(crate) fn settings_with_budgets(settings: CaseSettings, budgets: &[(&str, Duration)]) -> CaseSettings {
    let _ = budgets;
    settings
}

/// The log line of a stage that took `took`, over its `budget`; `None` within it.
pub(crate) fn over_budget(signal: &str, took: Duration, budget: Option<Duration>) -> Option<String> {
    let budget = budget?;
    (took > budget).then(|| format!("stage {signal} over its budget: {took:?} > {budget:?}"))
}
