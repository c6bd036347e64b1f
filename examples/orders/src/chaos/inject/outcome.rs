//! What one scenario found: its verdict, its figures, what went wrong and what else is worth knowing.

use super::{ledger::Figures, rss::PeakRss, Scenario};

/// Whether the scenario passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Ran, and found no problem.
    Passed,
    /// Ran (or tried to), and found problems.
    Failed,
    /// Could not run, for this reason (e.g. mounting a tmpfs is not permitted).
    NotRun(String),
}

/// One scenario's result.
#[derive(Debug)]
pub(super) struct ScenarioOutcome {
    pub(super) scenario: Scenario,
    pub(super) verdict: Verdict,
    /// The counts over the orders answered 200.
    pub(super) figures: Figures,
    /// The LiveCheck instance's peak memory, where the scenario measures it.
    pub(super) peak_rss: Option<PeakRss>,
    /// Why it failed (empty when it passed).
    pub(super) problems: Vec<String>,
    /// Other figures: how the fault went, what was counted.
    pub(super) notes: Vec<String>,
    /// How long it took.
    pub(super) seconds: f64,
}

impl ScenarioOutcome {
    /// The outcome of a scenario that ran: passed unless there are `problems` or the figures show a loss.
    pub(super) fn ran(
        scenario: Scenario,
        figures: Figures,
        peak_rss: Option<PeakRss>,
        mut problems: Vec<String>,
        notes: Vec<String>,
    ) -> Self {
        problems.extend(figures.losses());
        let verdict = if problems.is_empty() { Verdict::Passed } else { Verdict::Failed };
        ScenarioOutcome { scenario, verdict, figures, peak_rss, problems, notes, seconds: 0.0 }
    }

    /// A scenario that could not run, and why.
    pub(super) fn not_run(scenario: Scenario, reason: String) -> Self {
        ScenarioOutcome {
            scenario,
            verdict: Verdict::NotRun(reason),
            figures: Figures::default(),
            peak_rss: None,
            problems: Vec::new(),
            notes: Vec::new(),
            seconds: 0.0,
        }
    }

    /// A scenario that stopped on an error (a process that did not start, the log unreadable): failed.
    pub(super) fn could_not_finish(scenario: Scenario, error: &anyhow::Error) -> Self {
        ScenarioOutcome {
            verdict: Verdict::Failed,
            problems: vec![format!("the scenario stopped on an error: {error:#}")],
            ..Self::not_run(scenario, String::new())
        }
    }

    /// Prints the verdict with its problems, as the scenario ends.
    pub(super) fn print_verdict(&self) {
        match &self.verdict {
            Verdict::Passed => println!("{}: PASSED in {:.1} s", self.scenario.name(), self.seconds),
            Verdict::Failed => {
                println!("{}: FAILED in {:.1} s", self.scenario.name(), self.seconds);
                for problem in &self.problems {
                    println!("  problem: {problem}");
                }
            }
            Verdict::NotRun(reason) => {
                println!("{}: NOT RUN — {reason}", self.scenario.name());
            }
        }
    }
}
