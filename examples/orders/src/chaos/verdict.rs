//! The run's verdict: whether it found a problem, up to ten examples of each, a summary line and a JSON line.

use std::path::PathBuf;

use super::{faults::FaultRecord, load::LoadOutcome, tally::ExecutionKey, tally::Tally};

/// Examples printed of each kind of problem.
const EXAMPLES: usize = 10;

/// What the run found.
pub(super) struct Verdict {
    /// The orders the run was asked to place.
    pub(super) requested: usize,
    pub(super) load: LoadOutcome,
    pub(super) tally: Tally,
    pub(super) faults: FaultRecord,
    /// Whether every execution had a report before the drain timeout.
    pub(super) drained: bool,
    pub(super) drain_seconds: f64,
}

impl Verdict {
    /// No execution lost, duplicated or wrong; every order requested issued as an execution; and the faults went
    /// as planned (no process exited by itself or ignored a SIGINT).
    pub(super) fn passed(&self) -> bool {
        let (tally, faults) = (&self.tally, &self.faults);
        tally.lost().is_empty()
            && tally.duplicated().is_empty()
            && tally.wrong().is_empty()
            && tally.issued() == self.requested
            && faults.unexpected_exits.is_empty()
            && faults.stop_timeouts == 0
            && faults.errors.is_empty()
    }

    /// Prints up to ten examples of each problem, each execution with what its reports said and the lines of the
    /// processes' `logs` (name, file) that mention it.
    pub(super) fn print_problems(&self, logs: &[(String, PathBuf)]) {
        let logs: Vec<(&str, String)> = logs
            .iter()
            .map(|(name, path)| (name.as_str(), std::fs::read_to_string(path).unwrap_or_default()))
            .collect();
        let lost: Vec<(&ExecutionKey, String)> =
            self.tally.lost().into_iter().map(|key| (key, String::new())).collect();
        print_executions("lost (no report)", &lost, &logs);
        print_executions("duplicated", &self.tally.duplicated(), &logs);
        print_executions("wrong (not PASS)", &self.tally.wrong(), &logs);
        print_list("orders without an execution on the pending stream", &self.tally.unpublished);
        print_list("HTTP failures", &self.load.http_failures);
        print_list("unexpected exits", &self.faults.unexpected_exits);
        print_list("faults that failed", &self.faults.errors);
        // What the processes saw go wrong (e.g. partitions of the group left without a consumer).
        let errors: Vec<String> = logs
            .iter()
            .flat_map(|(name, log)| {
                let errors = log.lines().filter(|line| line.contains("ERROR"));
                errors.map(move |line| format!("{name}: {}", line.chars().take(300).collect::<String>()))
            })
            .collect();
        print_list("errors the processes logged", &errors);
    }

    /// Prints a line for people, then one of JSON.
    pub(super) fn print_summary(&self) {
        let (load, tally, faults) = (&self.load, &self.tally, &self.faults);
        let drained = if self.drained { "drained" } else { "NOT drained" };
        println!(
            "orders chaos {}: {} orders placed ({} HTTP failures); {} executions issued, {} reported, {} lost, \
             {} duplicated, {} wrong; reports {}; {} kills, {} graceful restarts, {} instance added and {} removed; \
             {} fake executions ({} reported once); {drained} in {:.1} s",
            if self.passed() { "PASSED" } else { "FAILED" },
            load.placed.len(),
            load.http_failures.len(),
            tally.issued(),
            tally.reported(),
            tally.lost().len(),
            tally.duplicated().len(),
            tally.wrong().len(),
            serde_json::json!(tally.states()),
            faults.kills,
            faults.graceful_restarts,
            faults.instances_added,
            faults.instances_removed,
            tally.fake(),
            tally.fake_reported_once(),
            self.drain_seconds,
        );
        println!("{}", self.json());
    }

    /// The run's figures as one JSON object.
    fn json(&self) -> serde_json::Value {
        let (load, tally, faults) = (&self.load, &self.tally, &self.faults);
        serde_json::json!({
            "executions": self.requested,
            "placed": load.placed.len(),
            "http_failures": load.http_failures.len(),
            "issued": tally.issued(),
            "reported": tally.reported(),
            "lost": tally.lost().len(),
            "duplicated": tally.duplicated().len(),
            "wrong": tally.wrong().len(),
            "unpublished": tally.unpublished.len(),
            "unmatched_reports": tally.unmatched_reports,
            "undecodable": tally.undecodable,
            "states": tally.states(),
            "fake": tally.fake(),
            "fake_reported_once": tally.fake_reported_once(),
            "suite_reports": tally.suite_reports,
            "kills": faults.kills,
            "graceful_restarts": faults.graceful_restarts,
            "instances_added": faults.instances_added,
            "instances_removed": faults.instances_removed,
            "stop_timeouts": faults.stop_timeouts,
            "unexpected_exits": faults.unexpected_exits.len(),
            "fault_errors": faults.errors.len(),
            "drained": self.drained,
            "drain_seconds": (self.drain_seconds * 10.0).round() / 10.0,
            "passed": self.passed(),
        })
    }
}

/// Prints how many `executions` have `problem` and up to ten of them, with what their reports said and the lines
/// of the `logs` that mention them.
fn print_executions(problem: &str, executions: &[(&ExecutionKey, String)], logs: &[(&str, String)]) {
    if executions.is_empty() {
        return;
    }
    println!("{} executions {problem}, for example:", executions.len());
    for (key, said) in executions.iter().take(EXAMPLES) {
        println!("  {} issued {}{}{said}", key.id, key.issued, if said.is_empty() { "" } else { ": " });
        for (name, log) in logs {
            for line in log.lines().filter(|line| line.contains(&key.id)).take(3) {
                println!("    {name}: {}", line.chars().take(300).collect::<String>());
            }
        }
    }
}

/// Prints how many `items` there are and up to ten of them.
fn print_list(what: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    println!("{} {what}, for example:", items.len());
    for item in items.iter().take(EXAMPLES) {
        println!("  {item}");
    }
}
