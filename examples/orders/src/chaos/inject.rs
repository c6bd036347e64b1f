//! `orders inject`: the tutorial put through the faults and the hostile input of issues 10 and 15, one scenario
//! after the other, each on a fresh embedded log in a temporary directory, with real processes (this binary's
//! `worker` and `livecheck`) and real signals:
//!
//! - **full-disk**: the log on a small tmpfs, filled up by a filler file while orders come in, then freed;
//! - **deleted-log**: the log's files deleted mid-run; then both processes restarted;
//! - **sigterm**: the LiveCheck instance, then the worker, stopped with SIGTERM mid-run and restarted;
//! - **forged-headers**: with a signing secret, requests and bus messages carrying forged `LiveCheck-*` headers;
//! - **poison-rows**: rows another program could write inserted into the log's tables mid-run;
//! - **big-fields**: forged orders and signals with a 1 MB field against the instance, its peak RSS measured;
//! - **cache-flood**: orders with a 1 MB user id, which the tutorial's cache table keeps (known to fail);
//! - **offset-conflict**: rows written at partitions' heads behind the writers' backs (the heads not moved);
//! - **forged-executions**: with a signing secret, executions forged onto the pending-tests stream (issue 15);
//! - **replayed-executions**: every execution on the log written again byte for byte, before and after a restart;
//! - **big-executions**: executions with a 1 MB argument, the instance's `--max-in-flight-bytes` and peak RSS;
//! - **clock-skew**: executions from a service whose clock is 4 h behind: a `clock_skew` suite failure.
//!
//! Each scenario places orders (every one a test), injects its fault, waits for the reports, then reads the log
//! and counts, over the orders answered 200: messages lost (an execution, an order, a signal, an execution
//! hand-over or a cache entry that should be on the log and is not), reports lost (an execution without a report),
//! duplicated and wrong reports, and orders never executed. It prints a table of them per scenario and in total
//! (last line: JSON). Exit status 0 when every scenario passed, 1 when one failed, 3 when none failed but one could
//! not run (the full disk needs root to mount a tmpfs).

mod big_executions;
mod big_fields;
mod cache_flood;
mod clock_skew;
mod deleted_log;
mod disk;
mod forged_executions;
mod forged_headers;
mod forgery;
mod full_disk;
mod ledger;
mod logs;
mod offset_conflict;
mod outcome;
mod pending;
mod poison;
mod poison_rows;
mod replayed_executions;
mod rss;
mod sigterm;
mod stage;
mod table;
mod traffic;

use std::{path::Path, process::ExitCode, time::Instant};

use self::outcome::{ScenarioOutcome, Verdict};
use super::RunDir;

/// Options of `orders inject`.
#[derive(clap::Args, Debug)]
pub(crate) struct InjectArgs {
    /// A scenario to run (repeat the option for several); default: all of them, in the order listed.
    #[arg(long = "scenario", value_enum)]
    scenarios: Vec<Scenario>,
    /// A short run of each scenario (fewer orders), as the tests run them.
    #[arg(long)]
    short: bool,
    /// Keep the run's directory (each scenario's log and its processes' logs).
    #[arg(long)]
    keep: bool,
    /// Log level of the worker and the instances (their logs, JSON lines, are in each scenario's directory).
    #[arg(long, default_value = "warn")]
    process_log_level: String,
}

/// One fault-injection scenario.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scenario {
    /// The log's disk fills up while orders come in, then space is freed (needs root: mounts a tmpfs).
    FullDisk,
    /// The log's files are deleted mid-run; the processes are restarted.
    DeletedLog,
    /// SIGTERM to the LiveCheck instance and to the worker mid-run; both restarted.
    Sigterm,
    /// Forged LiveCheck-* headers (unsigned, badly signed, absurd expiry) with signing on.
    ForgedHeaders,
    /// Rows another program could write (non-UTF-8 keys, TEXT values, …) inserted mid-run.
    PoisonRows,
    /// Forged orders and signals with a 1 MB field; the instance's peak RSS.
    BigFields,
    /// Orders with a 1 MB user id, kept by the tutorial's cache table; the instance's peak RSS.
    CacheFlood,
    /// Rows written at partitions' heads by another program, the heads not moved: appends must heal.
    OffsetConflict,
    /// Forged executions on the pending-tests stream with signing on: none may run.
    ForgedExecutions,
    /// Byte-identical copies of reported executions, before and after a restart: none may get a second verdict.
    ReplayedExecutions,
    /// Executions with a 1 MB argument against `--max-in-flight-bytes`; the instance's peak RSS.
    BigExecutions,
    /// Executions from a service whose clock is 4 h behind: a `clock_skew` suite failure, cleared when in time.
    ClockSkew,
}

impl Scenario {
    const ALL: [Scenario; 12] = [
        Scenario::FullDisk,
        Scenario::DeletedLog,
        Scenario::Sigterm,
        Scenario::ForgedHeaders,
        Scenario::PoisonRows,
        Scenario::BigFields,
        Scenario::CacheFlood,
        Scenario::OffsetConflict,
        Scenario::ForgedExecutions,
        Scenario::ReplayedExecutions,
        Scenario::BigExecutions,
        Scenario::ClockSkew,
    ];

    /// Its name on the command line and in the table.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Scenario::FullDisk => "full-disk",
            Scenario::DeletedLog => "deleted-log",
            Scenario::Sigterm => "sigterm",
            Scenario::ForgedHeaders => "forged-headers",
            Scenario::PoisonRows => "poison-rows",
            Scenario::BigFields => "big-fields",
            Scenario::CacheFlood => "cache-flood",
            Scenario::OffsetConflict => "offset-conflict",
            Scenario::ForgedExecutions => "forged-executions",
            Scenario::ReplayedExecutions => "replayed-executions",
            Scenario::BigExecutions => "big-executions",
            Scenario::ClockSkew => "clock-skew",
        }
    }
}

/// What every scenario is given: where to put its files, how long to run, how its processes log.
pub(super) struct Context {
    /// The scenario's own directory (its log, unless on a tmpfs, and its processes' logs).
    dir: std::path::PathBuf,
    /// Short runs (the tests') or long ones (the bench's).
    short: bool,
    /// `-l` of the processes.
    log_level: String,
}

impl Context {
    /// `short` in a short run, `long` otherwise.
    fn pick<T>(&self, short: T, long: T) -> T {
        if self.short {
            short
        } else {
            long
        }
    }
}

/// Runs the scenarios asked for, prints the table; the exit code.
pub(crate) async fn run(args: InjectArgs) -> anyhow::Result<ExitCode> {
    let scenarios = if args.scenarios.is_empty() { Scenario::ALL.to_vec() } else { args.scenarios.clone() };
    let root = RunDir::create_named("inject", args.keep)?;
    println!("orders inject: {} scenario(s) in {}", scenarios.len(), root.path.display());
    // However the run ends, each scenario's future is dropped before `root`: its processes are killed and its
    // tmpfs unmounted first.
    let outcomes = tokio::select! {
        outcomes = run_all(&args, &scenarios, &root.path) => outcomes,
        () = crate::until_interrupted() => anyhow::bail!("interrupted; stopped every process"),
    };
    table::print(&outcomes);
    if !args.keep && outcomes.iter().any(|o| !matches!(o.verdict, Verdict::Passed)) {
        println!("(run again with --keep to keep the logs)");
    }
    Ok(if outcomes.iter().any(|o| matches!(o.verdict, Verdict::Failed)) {
        ExitCode::FAILURE
    } else if outcomes.iter().any(|o| matches!(o.verdict, Verdict::NotRun(_))) {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

async fn run_all(args: &InjectArgs, scenarios: &[Scenario], root: &Path) -> Vec<ScenarioOutcome> {
    let mut outcomes = Vec::new();
    for scenario in scenarios {
        println!("\n=== {} ===", scenario.name());
        let dir = root.join(scenario.name());
        let context = Context { dir, short: args.short, log_level: args.process_log_level.clone() };
        let started = Instant::now();
        let run = async {
            std::fs::create_dir_all(&context.dir)?;
            match scenario {
                Scenario::FullDisk => full_disk::run(&context).await,
                Scenario::DeletedLog => deleted_log::run(&context).await,
                Scenario::Sigterm => sigterm::run(&context).await,
                Scenario::ForgedHeaders => forged_headers::run(&context).await,
                Scenario::PoisonRows => poison_rows::run(&context).await,
                Scenario::BigFields => big_fields::run(&context).await,
                Scenario::CacheFlood => cache_flood::run(&context).await,
                Scenario::OffsetConflict => offset_conflict::run(&context).await,
                Scenario::ForgedExecutions => forged_executions::run(&context).await,
                Scenario::ReplayedExecutions => replayed_executions::run(&context).await,
                Scenario::BigExecutions => big_executions::run(&context).await,
                Scenario::ClockSkew => clock_skew::run(&context).await,
            }
        };
        let mut outcome = match run.await {
            Ok(outcome) => outcome,
            Err(error) => ScenarioOutcome::could_not_finish(*scenario, &error),
        };
        outcome.seconds = started.elapsed().as_secs_f64();
        outcome.print_verdict();
        outcomes.push(outcome);
    }
    outcomes
}
