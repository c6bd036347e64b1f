//! `livecheck`: look at and drive LiveCheck from a shell.
//!
//! ```text
//! livecheck status [--url http://127.0.0.1:9999] [--json]   # the cases of a running instance; exit 1 if one fails
//! livecheck tail [--broker URL] [--case NAME] [--json]      # follow the reports; exit 2 if the broker is silent
//! livecheck trigger CASE [--arg key=value]… [--timeout 60s] # run a test by hand; exit 0 on PASS
//! livecheck gate --case C --canary V2 --baseline V1         # gate a rollout; exit 0 / 1 failed / 3 inconclusive
//! livecheck serve --cases FILE|DIR [--broker URL]           # an instance running declarative case files
//! livecheck check-cases FILE|DIR                            # validate case files; exit 1 naming file and line
//! ```
//!
//! Exit codes: 0 all well (every case passing, the test passed); 1 a case is failing, or the test's verdict is not
//! PASS; 2 no answer (the instance or broker cannot be reached, no report in time, bad arguments).

mod args;
mod broker;
mod check_cases;
mod follow;
mod gate;
mod output;
mod report_text;
mod serve;
mod status;
mod tail;
mod trigger;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

const EXIT_CODES: &str = "Exit codes:
  0  all well: every case is passing (status), the test passed (trigger), stopped by Ctrl-C (tail)
  1  a case is failing (status), the test's verdict is not PASS (trigger), the canary failed (gate)
  2  no answer: the instance or broker cannot be reached, no report in time, bad arguments
  3  inconclusive (gate): not enough executions yet, or worse but not significantly yet";

#[derive(Parser)]
#[command(name = "livecheck", version, about = "Look at and drive LiveCheck: status, reports, tests by hand")]
#[command(after_help = EXIT_CODES)]
struct Cli {
    /// Log level of the library's own messages on stderr (error, warn, info, debug, trace, off).
    #[arg(short = 'l', long, default_value = "warn", global = true)]
    loglevel: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The cases of a running LiveCheck instance, failing first (its JSON API, `GET /api/status`).
    ///
    /// Exit 1 when a case is failing, 0 otherwise, 2 when the instance cannot be reached.
    #[command(after_help = EXIT_CODES)]
    Status(status::StatusArgs),
    /// Follows test reports on the broker, as they are published: a line each, or JSON lines.
    ///
    /// Reads every partition of the report stream outside any consumer group and commits nothing: the
    /// instances do not notice it. A message that is not a report is a warning on stderr. Ctrl-C stops it.
    Tail(tail::TailArgs),
    /// Starts a test of CASE by hand and waits for its verdict.
    ///
    /// Publishes the execution as a service's `trigger` does (with signed test context when
    /// LIVECHECK_SIGNING_SECRET is set), then waits for its report. Exit 0 on PASS, 1 on any other verdict, 2
    /// when no report comes within --timeout.
    #[command(after_help = EXIT_CODES)]
    Trigger(trigger::TriggerArgs),
    /// Whether a canary version may go on: its executions of a case compared with the baseline version's, by a
    /// running instance (`GET /api/gate`).
    ///
    /// Exit 0 successful, 1 failed (the reason names the stage and the contract), 3 inconclusive (never a pass
    /// by default), 2 when the instance cannot be reached.
    #[command(after_help = EXIT_CODES)]
    Gate(gate::GateArgs),
    /// Runs a LiveCheck instance with its web server on the cases of case files (YAML or TOML).
    ///
    /// Reloads them on SIGHUP and when they change (tests in flight run again on the new instance, none lost);
    /// SIGINT or SIGTERM stop it. The web server's write and read tokens come from LIVECHECK_WEB_TOKEN and
    /// LIVECHECK_WEB_READ_TOKEN, signing from LIVECHECK_SIGNING_SECRET. Exit 2 when the cases or the broker are
    /// wrong at the start.
    Serve(serve::ServeArgs),
    /// Checks case files without running them: exit 0 when valid, 1 with FILE:LINE:COLUMN and what is wrong.
    CheckCases(check_cases::CheckCasesArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Trigger(args) = &cli.command {
        if let Some(key) = args.repeated_key() {
            Cli::command()
                .error(clap::error::ErrorKind::ArgumentConflict, format!("--arg `{key}` is given twice"))
                .exit();
        }
    }
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.loglevel).unwrap_or_else(|error| {
        Cli::command().error(clap::error::ErrorKind::InvalidValue, format!("--loglevel: {error}")).exit()
    });
    // Colours only for a terminal, as the command's own output (escape codes in a log file or a pipe are noise).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    // A closed stderr is not written about on stderr (tracing-subscriber would panic trying).
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .log_internal_errors(false)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return fail(&anyhow::Error::new(error).context("starting the async runtime")),
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Status(args) => status::run(args).await,
            Command::Tail(args) => tail::run(args).await,
            Command::Trigger(args) => trigger::run(args).await,
            Command::Gate(args) => gate::run(args).await,
            Command::Serve(args) => serve::run(args).await,
            Command::CheckCases(args) => Ok(check_cases::run(&args)),
        }
    });
    // Blocking reads still under way (a broker that does not answer) do not hold the exit up.
    runtime.shutdown_background();
    result.unwrap_or_else(|error| fail(&error))
}

fn fail(error: &anyhow::Error) -> ExitCode {
    crate::output::warn(&format!("livecheck: error: {error:#}"));
    ExitCode::from(2)
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM; never if neither can be watched.
pub(crate) async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                result = tokio::signal::ctrl_c() => if result.is_err() { std::future::pending::<()>().await },
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
