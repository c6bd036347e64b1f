//! Stage budgets: a soft latency budget per stage, read from the case file — the most its signal should take to
//! arrive, counted from the test's issue (as the library's per-signal budgets count). A stage over its budget is
//! slow, not broken: a passing execution with a stage over its budget is DEGRADED (the library judges it, from
//! [`CaseSettings::signal_budget`]), and the test's log says which stage was over and by how much.
//!
//! [`settings_with_budgets`] is where the file's budgets meet the case's settings.

use std::time::Duration;

use crate::CaseSettings;

/// The case's settings with its stages' budgets (`(signal, budget from the test's issue)`).
pub(crate) fn settings_with_budgets(settings: CaseSettings, budgets: &[(&str, Duration)]) -> CaseSettings {
    budgets.iter().fold(settings, |settings, (signal, budget)| settings.signal_budget(*signal, *budget))
}

/// The log line of a stage whose signal came `after_issue` the test's issue, over its `budget`; `None` within it.
pub(crate) fn over_budget(signal: &str, after_issue: Duration, budget: Option<Duration>) -> Option<String> {
    let budget = budget?;
    (after_issue > budget)
        .then(|| format!("stage {signal} over its budget: {after_issue:?} after the issue > {budget:?}"))
}
