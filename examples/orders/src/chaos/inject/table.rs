//! The run's table: per scenario and in total, the orders answered 200 and refused, messages lost, reports lost
//! (and duplicated, and not PASS), orders answered 200 but never executed, and the instance's peak RSS; then each
//! scenario's notes and problems, and a last line of JSON.

use super::{
    ledger::Figures,
    outcome::{ScenarioOutcome, Verdict},
    rss::mib,
};

/// Prints the table, the notes and the JSON line.
pub(super) fn print(outcomes: &[ScenarioOutcome]) {
    println!();
    println!(
        "{:<19} {:<8} {:>7} {:>8} {:>10} {:>8} {:>5} {:>6} {:>13} {:>10}  peak RSS of the instance",
        "scenario", "result", "200 OK", "refused", "msgs lost", "reports", "dup", "wrong", "200, never", "executed"
    );
    println!(
        "{:<19} {:<8} {:>7} {:>8} {:>10} {:>8} {:>5} {:>6} {:>13} {:>10}  (before → after, bound)",
        "", "", "", "", "", "lost", "", "", "executed", "twice"
    );
    let mut total = Figures::default();
    for outcome in outcomes {
        total.add(&outcome.figures);
        let result = match &outcome.verdict {
            Verdict::Passed => "PASS",
            Verdict::Failed => "FAIL",
            Verdict::NotRun(_) => "NOT RUN",
        };
        let rss = outcome.peak_rss.as_ref().map_or_else(
            || "—".to_owned(),
            |p| format!("{} → {} (≤ {})", mib(p.before.peak), mib(p.after.peak), mib(p.bound)),
        );
        print_row(outcome.scenario.name(), result, &outcome.figures, &rss);
    }
    print_row("total", verdict_of(outcomes), &total, "");
    for outcome in outcomes {
        println!("\n{} ({:.0} s):", outcome.scenario.name(), outcome.seconds);
        if let Verdict::NotRun(reason) = &outcome.verdict {
            println!("  NOT RUN: {reason}");
        }
        for note in &outcome.notes {
            println!("  - {note}");
        }
        for problem in &outcome.problems {
            println!("  PROBLEM: {problem}");
        }
    }
    println!("{}", json(outcomes, &total));
}

fn print_row(name: &str, result: &str, f: &Figures, rss: &str) {
    println!(
        "{name:<19} {result:<8} {:>7} {:>8} {:>10} {:>8} {:>5} {:>6} {:>13} {:>10}  {rss}",
        f.answered_ok,
        f.refused,
        f.messages_lost,
        f.reports_lost,
        f.reports_duplicated,
        f.reports_wrong,
        f.never_executed,
        f.executed_twice
    );
}

/// FAIL if a scenario failed, else NOT RUN if one did not run, else PASS.
fn verdict_of(outcomes: &[ScenarioOutcome]) -> &'static str {
    if outcomes.iter().any(|o| o.verdict == Verdict::Failed) {
        "FAIL"
    } else if outcomes.iter().any(|o| matches!(o.verdict, Verdict::NotRun(_))) {
        "NOT RUN"
    } else {
        "PASS"
    }
}

/// The run as one JSON object.
fn json(outcomes: &[ScenarioOutcome], total: &Figures) -> serde_json::Value {
    let scenarios: Vec<serde_json::Value> = outcomes
        .iter()
        .map(|o| {
            let (result, reason) = match &o.verdict {
                Verdict::Passed => ("PASS", None),
                Verdict::Failed => ("FAIL", None),
                Verdict::NotRun(reason) => ("NOT RUN", Some(reason.clone())),
            };
            serde_json::json!({
                "scenario": o.scenario.name(),
                "result": result,
                "not_run_reason": reason,
                "figures": o.figures,
                "peak_rss": o.peak_rss.as_ref().map(|p| serde_json::json!({
                    "before": p.before.peak, "after": p.after.peak, "bound": p.bound,
                    "rss_before": p.before.rss, "rss_after": p.after.rss, "within_bound": p.within_bound(),
                })),
                "problems": o.problems,
                "notes": o.notes,
                "seconds": (o.seconds * 10.0).round() / 10.0,
            })
        })
        .collect();
    serde_json::json!({
        "scenarios": scenarios,
        "total": total,
        "result": verdict_of(outcomes),
    })
}
