//! The accounting: each execution of an order we placed, as the pending-tests stream has it, with the reports the
//! report stream has for it; and the same for the executions of the instances' own fake orders.

use std::collections::{BTreeMap, HashMap, HashSet};

use livecheck::{
    wire::{TestExecution, TestReport},
    State,
};

use super::StoredMessage;

/// An execution: a test id and its issue time (an id issued again is another execution).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct ExecutionKey {
    /// The test id (here the order id).
    pub(super) id: String,
    /// The issue timestamp, as RFC 3339.
    pub(super) issued: String,
}

impl ExecutionKey {
    fn of(execution: &TestExecution) -> Self {
        ExecutionKey { id: execution.id.clone(), issued: execution.timestamp.to_rfc3339() }
    }
}

/// What one report said.
#[derive(Clone, Debug)]
struct Outcome {
    state: State,
    error: Option<String>,
    /// The report is byte for byte one already on the stream: the same report stored twice (a producer's retry),
    /// not a second run.
    stored_again: bool,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.state.as_str())?;
        if let Some(error) = &self.error {
            write!(f, " ({})", error.lines().next().unwrap_or_default())?;
        }
        if self.stored_again {
            f.write_str(" (the same report stored again)")?;
        }
        Ok(())
    }
}

/// Executions and their reports, read from the log.
#[derive(Debug, Default)]
pub(super) struct Tally {
    /// The executions of our orders, each with what its reports said.
    ours: BTreeMap<ExecutionKey, Vec<Outcome>>,
    /// The executions of the instances' fake orders, each with how many reports it has.
    fake: HashMap<ExecutionKey, usize>,
    /// How many times each execution of ours is on the pending-tests stream (more than once: a producer's retry,
    /// or a replay).
    copies: HashMap<ExecutionKey, usize>,
    /// Orders we placed that have no execution on the pending-tests stream.
    pub(super) unpublished: Vec<String>,
    /// Reports on one of our orders for an execution the pending-tests stream does not have.
    pub(super) unmatched_reports: usize,
    /// Suite reports (`test: null`), per state.
    pub(super) suite_reports: BTreeMap<&'static str, usize>,
    /// Messages on either stream that did not decode.
    pub(super) undecodable: usize,
}

impl Tally {
    /// Matches the `pending` tests (TestExecution values) and the `reports` (TestReport values) with the orders we
    /// `placed`; any other execution is a fake order's.
    pub(super) fn count(placed: &HashSet<String>, pending: &[StoredMessage], reports: &[StoredMessage]) -> Self {
        let mut tally = Tally::default();
        let mut published = HashSet::new();
        for message in pending {
            let Ok(execution) = serde_json::from_slice::<TestExecution>(&message.value) else {
                tally.undecodable += 1;
                continue;
            };
            if placed.contains(&execution.id) {
                published.insert(execution.id.clone());
                tally.ours.entry(ExecutionKey::of(&execution)).or_default();
                *tally.copies.entry(ExecutionKey::of(&execution)).or_default() += 1;
            } else {
                tally.fake.entry(ExecutionKey::of(&execution)).or_default();
            }
        }
        tally.unpublished = placed.iter().filter(|id| !published.contains(*id)).cloned().collect();
        tally.unpublished.sort();
        let mut seen_reports = HashSet::new();
        for message in reports {
            let stored_again = !seen_reports.insert(message.value.as_slice());
            let Ok(report) = serde_json::from_slice::<TestReport>(&message.value) else {
                tally.undecodable += 1;
                continue;
            };
            let Some(execution) = &report.test else {
                *tally.suite_reports.entry(report.state.as_str()).or_default() += 1;
                continue;
            };
            let key = ExecutionKey::of(execution);
            if let Some(outcomes) = tally.ours.get_mut(&key) {
                outcomes.push(Outcome { state: report.state, error: report.error.clone(), stored_again });
            } else if let Some(count) = tally.fake.get_mut(&key) {
                *count += 1;
            } else if placed.contains(&key.id) {
                tally.unmatched_reports += 1;
            }
        }
        tally
    }

    /// Executions of our orders.
    pub(super) fn issued(&self) -> usize {
        self.ours.len()
    }

    /// Executions of our orders with at least one report.
    pub(super) fn reported(&self) -> usize {
        self.ours.values().filter(|outcomes| !outcomes.is_empty()).count()
    }

    /// Whether every execution of our orders has a report.
    pub(super) fn all_reported(&self) -> bool {
        self.ours.values().all(|outcomes| !outcomes.is_empty())
    }

    /// Executions of our orders without a report.
    pub(super) fn lost(&self) -> Vec<&ExecutionKey> {
        self.ours.iter().filter(|(_, outcomes)| outcomes.is_empty()).map(|(key, _)| key).collect()
    }

    /// Executions of our orders with more than one report, and what each said.
    pub(super) fn duplicated(&self) -> Vec<(&ExecutionKey, String)> {
        self.with_outcomes(|outcomes| outcomes.len() > 1)
    }

    /// Executions of our orders with a report that is not PASS, and what each said.
    pub(super) fn wrong(&self) -> Vec<(&ExecutionKey, String)> {
        self.with_outcomes(|outcomes| outcomes.iter().any(|outcome| outcome.state != State::Pass))
    }

    /// Reports on our orders, per state.
    pub(super) fn states(&self) -> BTreeMap<&'static str, usize> {
        let mut states = BTreeMap::new();
        for outcome in self.ours.values().flatten() {
            *states.entry(outcome.state.as_str()).or_default() += 1;
        }
        states
    }

    /// Executions of fake orders.
    pub(super) fn fake(&self) -> usize {
        self.fake.len()
    }

    /// Executions of fake orders with exactly one report (those still running at the end have none).
    pub(super) fn fake_reported_once(&self) -> usize {
        self.fake.values().filter(|count| **count == 1).count()
    }

    fn with_outcomes(&self, selected: impl Fn(&[Outcome]) -> bool) -> Vec<(&ExecutionKey, String)> {
        self.ours
            .iter()
            .filter(|(_, outcomes)| selected(outcomes))
            .map(|(key, outcomes)| {
                let said: Vec<String> = outcomes.iter().map(Outcome::to_string).collect();
                let mut said = said.join(", ");
                if let Some(copies) = self.copies.get(key).filter(|copies| **copies > 1) {
                    said.push_str(&format!("; the execution is on the pending-tests stream {copies} times"));
                }
                (key, said)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use livecheck::wire::TestExecution;

    use super::*;

    fn stored(value: Vec<u8>) -> StoredMessage {
        StoredMessage { key: None, value }
    }

    fn execution(id: &str, second: u32) -> TestExecution {
        let issued = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, second).unwrap();
        TestExecution::new(id, "orders.test_order", issued, issued + chrono::Duration::minutes(1), &()).unwrap()
    }

    fn report(execution: &TestExecution, runtime: f64) -> Vec<u8> {
        let mut report = TestReport::new("orders.test_order", State::Pass, Some(execution.clone()));
        report.runtime = Some(runtime);
        serde_json::to_vec(&report).unwrap()
    }

    #[test]
    fn a_duplicate_says_whether_it_is_a_report_stored_twice_or_an_execution_published_twice() {
        let placed: HashSet<String> = ["a", "b"].map(String::from).into();
        let (a, b) = (execution("a", 1), execution("b", 2));
        let pending: Vec<StoredMessage> = [&a, &b, &b].iter().map(|e| stored(serde_json::to_vec(e).unwrap())).collect();
        let reports = [report(&a, 0.1), report(&a, 0.1), report(&b, 0.1), report(&b, 0.2)].map(stored);
        let tally = Tally::count(&placed, &pending, &reports);
        let duplicated: HashMap<&str, String> =
            tally.duplicated().into_iter().map(|(key, said)| (key.id.as_str(), said)).collect();
        assert_eq!(duplicated["a"], "PASS, PASS (the same report stored again)");
        assert_eq!(duplicated["b"], "PASS, PASS; the execution is on the pending-tests stream 2 times");
    }
}
