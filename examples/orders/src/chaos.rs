//! `orders chaos`: the tutorial under load while its LiveCheck instances are killed, restarted, added and removed;
//! then a check, from the log itself, that every execution got exactly one report, and that it is PASS.
//!
//! Real processes on the embedded log, loopback only: one `worker` (every order a test execution) and a group of
//! `livecheck` instances, each started from this binary. Orders come at a steady rate; meanwhile instances are
//! SIGKILLed and restarted, one is stopped with SIGINT and restarted, and one more joins and later leaves. After
//! the load the harness waits for the reports, reads the pending-tests and report streams and counts, per
//! execution (test id and issue time): issued, reported, lost (no report), duplicated (several), wrong (not PASS).
//! It prints each fault with its time, a summary, and a last line of JSON; it exits with failure unless nothing
//! was lost, duplicated or wrong and every order was issued as an execution.

mod cluster;
mod faults;
pub(crate) mod inject;
mod load;
mod process;
mod tally;
mod verdict;

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context;

use self::{cluster::Cluster, faults::FaultRecord, tally::Tally, verdict::Verdict};

/// The pending-tests stream.
const PENDING_STREAM: &str = "livecheck";
/// The report stream.
const REPORT_STREAM: &str = "livecheck-report";
/// How often the report stream is read while waiting for the reports.
const DRAIN_POLL: Duration = Duration::from_secs(1);

/// Options of `orders chaos`.
#[derive(clap::Args, Debug)]
pub(crate) struct ChaosArgs {
    /// Orders to place; each one is a test execution.
    #[arg(long, default_value_t = 1000)]
    executions: usize,
    /// Orders per second.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// LiveCheck instances in the group (besides the one added and removed mid-run).
    #[arg(long, default_value_t = 2)]
    instances: usize,
    /// SIGKILLs of a random instance, spread over the load; each is restarted after 0.5-3 s.
    #[arg(long, default_value_t = 10)]
    kills: usize,
    /// Graceful stops (SIGINT) of a random instance, each restarted after 0.5-3 s.
    #[arg(long, default_value_t = 1)]
    graceful_restarts: usize,
    /// Do not add an instance mid-run (and stop it with SIGINT later).
    #[arg(long)]
    no_extra_instance: bool,
    /// Seconds to wait after the load for every execution's report.
    #[arg(long, default_value_t = 90.0)]
    drain_timeout: f64,
    /// Seconds after the last fault before the run may end: an instance taking over partitions re-runs the
    /// executions that were not committed within this time, and a second report shows up.
    #[arg(long, default_value_t = 10.0)]
    settle: f64,
    /// Keep the run's directory (the log when the harness made it, and each process's log).
    #[arg(long)]
    keep: bool,
    /// Log level of the worker and the instances (their logs are in the run's directory).
    #[arg(long, default_value = "warn")]
    process_log_level: String,
}

/// Prints what happens, with the seconds since the run started.
struct Timeline {
    started: Instant,
}

impl Timeline {
    fn note(&self, what: impl std::fmt::Display) {
        println!("[{:6.1} s] {what}", self.started.elapsed().as_secs_f64());
    }
}

/// A message as stored in the log (the harness needs only its key and value).
#[derive(Clone, Debug)]
struct StoredMessage {
    /// Its key (the test id on LiveCheck's streams).
    key: Option<String>,
    /// Its value (JSON on LiveCheck's streams).
    value: Vec<u8>,
}

/// Every message of `stream` on `broker` (any broker URL) up to its end when called.
///
/// The only place `orders chaos` touches the transport: it reads each partition outside any group, from the
/// start. (`orders inject` also writes forged messages, and rows with SQL.)
async fn read_stream(broker: &str, stream: &str) -> anyhow::Result<Vec<StoredMessage>> {
    let transport = livecheck::transport::from_url(broker)?;
    let mut messages = Vec::new();
    for (partition, end) in transport.end_offsets(stream).await?.into_iter().enumerate() {
        let mut next = 0;
        while next < end {
            let page = transport.read(stream, partition as u32, next, 1000).await?;
            let Some(last) = page.last() else { break };
            next = last.offset + 1;
            let read = page.iter().filter(|r| r.offset < end);
            messages.extend(read.map(|r| StoredMessage { key: r.message.key.clone(), value: r.message.value.clone() }));
        }
    }
    Ok(messages)
}

/// The run's directory, removed when dropped unless kept.
struct RunDir {
    path: PathBuf,
    keep: bool,
}

impl RunDir {
    fn create(keep: bool) -> anyhow::Result<Self> {
        Self::create_named("chaos", keep)
    }

    /// A new directory `livecheck-{what}-…` in the temporary directory.
    fn create_named(what: &str, keep: bool) -> anyhow::Result<Self> {
        let name = format!("livecheck-{what}-{}-{:x}", std::process::id(), fastrand::u32(..));
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(RunDir { path, keep })
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Runs the harness; whether the run found no problem. `broker` is the log to use (default: a new one in the
/// run's directory), `cache` the orders cache the processes get.
pub(crate) async fn run(args: ChaosArgs, broker: Option<&str>, cache: Option<&str>) -> anyhow::Result<bool> {
    anyhow::ensure!(args.rate.is_finite() && args.rate > 0.0, "--rate must be a positive number");
    anyhow::ensure!(args.instances > 0, "--instances must be at least 1");
    anyhow::ensure!(args.drain_timeout.is_finite() && args.drain_timeout >= 0.0, "--drain-timeout must be >= 0");
    anyhow::ensure!(args.settle.is_finite() && args.settle >= 0.0, "--settle must be >= 0");
    let dir = RunDir::create(args.keep)?;
    let broker = match broker {
        Some(broker) => broker.to_owned(),
        None => format!("sqlite://{}", dir.path.join("livecheck.sqlite3").display()),
    };
    // However the run ends, its future is dropped before `dir`: the processes (its cluster) are killed first.
    tokio::select! {
        passed = run_in(&args, &dir.path, &broker, cache) => passed,
        () = crate::until_interrupted() => anyhow::bail!("interrupted; stopped every process"),
    }
}

async fn run_in(args: &ChaosArgs, dir: &Path, broker: &str, cache: Option<&str>) -> anyhow::Result<bool> {
    let timeline = Timeline { started: Instant::now() };
    timeline.note(format!("run directory {}; broker {broker}", dir.display()));
    let setup = cluster::Setup { cache: cache.map(str::to_owned), ..cluster::Setup::new(&args.process_log_level) };
    let (mut cluster, started) = Cluster::start(dir, broker, setup, args.instances).await?;
    for note in started {
        timeline.note(note);
    }
    let window = Duration::from_secs_f64(args.executions as f64 / args.rate);
    timeline.note(format!(
        "placing {} orders at {}/s ({:.1} s) while injecting faults",
        args.executions,
        args.rate,
        window.as_secs_f64()
    ));
    let plan = faults::FaultPlan::new(window, args.kills, args.graceful_restarts, !args.no_extra_instance);
    let http = reqwest::Client::new();
    let worker_url = cluster.worker_url();
    let load_started = Instant::now();
    let load = async {
        let load = load::place_orders(&http, &worker_url, args.executions, args.rate).await;
        timeline.note(format!(
            "load done: {} orders placed, {} HTTP failures, in {:.1} s",
            load.placed.len(),
            load.http_failures.len(),
            load_started.elapsed().as_secs_f64()
        ));
        load
    };
    let (load, mut faults) = tokio::join!(load, faults::inject(plan, &mut cluster, load_started, &timeline));
    timeline.note("faults done; waiting for the reports");
    let placed: HashSet<String> = load.placed.iter().cloned().collect();
    let drain_started = Instant::now();
    let (tally, drained) = drain(args, broker, &placed, &mut cluster, &mut faults, &timeline).await?;
    let drain_seconds = drain_started.elapsed().as_secs_f64();

    let verdict = Verdict { requested: args.executions, load, tally, faults, drained, drain_seconds };
    if !verdict.passed() {
        verdict.print_problems(&cluster.logs());
        if !args.keep {
            println!("(run again with --keep to keep the log and the processes' logs)");
        }
    }
    verdict.print_summary();
    Ok(verdict.passed())
}

/// Waits until every execution of the `placed` orders has a report, no instance is executing a test and `settle`
/// has passed since the last fault — or until the drain timeout. The last tally, and whether it drained.
async fn drain(
    args: &ChaosArgs,
    broker: &str,
    placed: &HashSet<String>,
    cluster: &mut Cluster,
    faults: &mut FaultRecord,
    timeline: &Timeline,
) -> anyhow::Result<(Tally, bool)> {
    let deadline = Instant::now() + Duration::from_secs_f64(args.drain_timeout);
    let settle = Duration::from_secs_f64(args.settle);
    let mut last_progress = Instant::now();
    loop {
        faults.check_exits(cluster, timeline);
        let pending = read_stream(broker, PENDING_STREAM).await?;
        let reports = read_stream(broker, REPORT_STREAM).await?;
        let tally = Tally::count(placed, &pending, &reports);
        let executing = cluster.tests_executing().await;
        let settled = faults.last_fault.is_none_or(|last| last.elapsed() >= settle);
        if tally.all_reported() && executing == 0 && settled {
            return Ok((tally, true));
        }
        if Instant::now() >= deadline {
            timeline.note(format!("drain timeout: {} of {} executions reported", tally.reported(), tally.issued()));
            return Ok((tally, false));
        }
        if last_progress.elapsed() >= Duration::from_secs(5) {
            timeline.note(format!(
                "draining: {} of {} executions reported, {executing} tests executing",
                tally.reported(),
                tally.issued()
            ));
            last_progress = Instant::now();
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
}
