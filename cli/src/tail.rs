//! `livecheck tail`: follows the report stream and prints each report.

use std::{
    process::ExitCode,
    time::{Duration, Instant},
};

use clap::Args;
use livecheck::{transport::Received, wire::TestReport};

use crate::{
    args,
    broker::BrokerArgs,
    follow::{Start, StreamFollower},
    output::{self, Paint},
    report_text,
};

/// Follows reports: one line each (finish time, case, test id, state, runtime, trace id, error), or JSON lines.
#[derive(Args, Debug)]
pub(crate) struct TailArgs {
    #[command(flatten)]
    broker: BrokerArgs,
    /// Only the reports of this case.
    #[arg(long, value_name = "NAME")]
    case: Option<String>,
    /// Print each report as one line of JSON (the report as published).
    #[arg(long)]
    json: bool,
    /// Start with the oldest report the broker still keeps, instead of the next one published.
    #[arg(long)]
    from_beginning: bool,
    /// How long the broker may go without answering, at the start or while following, before the command gives
    /// up (exit 2), e.g. 30s, 2m.
    #[arg(long, default_value = "30s", value_parser = args::duration)]
    timeout: Duration,
}

/// Prints reports until Ctrl-C (or SIGTERM) or until stdout is closed; an error when the broker does not answer
/// for `--timeout`.
pub(crate) async fn run(args: TailArgs) -> anyhow::Result<ExitCode> {
    let transport = args.broker.connect()?;
    let stream = args.broker.streams().reports;
    let start = if args.from_beginning { Start::Beginning } else { Start::End };
    let interrupted = crate::interrupted();
    tokio::pin!(interrupted);
    let follow = tokio::time::timeout(args.timeout, StreamFollower::new(transport.clone(), &stream, start));
    let mut follower = tokio::select! {
        () = &mut interrupted => return Ok(ExitCode::SUCCESS),
        follower = follow => follower.map_err(|_| args.broker.silent(args.timeout))??,
    };
    output::warn(&format!(
        "livecheck: following `{stream}` ({} partitions) on {}{} (Ctrl-C to stop)",
        follower.partitions(),
        args.broker.url(),
        args.case.as_deref().map(|case| format!(", case {case}")).unwrap_or_default()
    ));
    if let Some(case) = &args.case {
        // A misspelt case follows nothing and says nothing: tell when it never reported on this stream.
        let reported = tokio::select! {
            () = &mut interrupted => return Ok(ExitCode::SUCCESS),
            reported = tokio::time::timeout(args.timeout, cases_reported(transport, &stream)) => reported,
        };
        if let Ok(Ok(reported)) = reported {
            if !reported.contains(case) {
                let known: Vec<&str> = reported.iter().map(String::as_str).take(20).collect();
                let known = if known.is_empty() { "none yet".to_owned() } else { known.join(", ") };
                output::warn(&format!(
                    "livecheck: warning: no case `{case}` has reported on `{stream}` (cases that did: {known}); \
                     following it anyway"
                ));
            }
        }
    }
    let paint = Paint::for_stdout();
    let mut retry = Duration::from_millis(500);
    // Since when the broker has not answered (every read since failed).
    let mut silent_since: Option<Instant> = None;
    loop {
        let left = silent_since.map_or(args.timeout, |since| args.timeout.saturating_sub(since.elapsed()));
        let batch = tokio::select! {
            () = &mut interrupted => return Ok(ExitCode::SUCCESS),
            batch = tokio::time::timeout(left, follower.poll()) => batch,
        };
        let wait = match batch {
            Err(_) => return Err(args.broker.silent(args.timeout)),
            Ok(Ok(batch)) if batch.is_empty() => {
                silent_since = None;
                args.broker.idle_poll()
            }
            Ok(Ok(batch)) => {
                (silent_since, retry) = (None, Duration::from_millis(500));
                for received in &batch {
                    if print(received, &args, paint).is_err() {
                        // The reader went away (`livecheck tail | head`): nothing more to do.
                        return Ok(ExitCode::SUCCESS);
                    }
                }
                continue;
            }
            Ok(Err(error)) if crate::broker::is_retriable(&error) => {
                let since = *silent_since.get_or_insert_with(Instant::now);
                let left = args.timeout.saturating_sub(since.elapsed());
                if left.is_zero() {
                    return Err(error.context(args.broker.silent(args.timeout).to_string()));
                }
                output::warn(&format!("livecheck: warning: reading `{stream}`: {error:#}; trying again in {retry:?}"));
                let wait = retry.min(left);
                retry = (retry * 2).min(Duration::from_secs(10));
                wait
            }
            Ok(Err(error)) => return Err(error.context(format!("reading `{stream}` on {}", args.broker.url()))),
        };
        tokio::select! {
            () = &mut interrupted => return Ok(ExitCode::SUCCESS),
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Reports read at most to find the cases that reported on the stream.
const CASES_SCAN_LIMIT: usize = 200_000;

/// The names of the cases with a report on `stream` now (read from its start, up to [`CASES_SCAN_LIMIT`]).
async fn cases_reported(
    transport: std::sync::Arc<dyn livecheck::transport::Transport>,
    stream: &str,
) -> anyhow::Result<std::collections::BTreeSet<String>> {
    #[derive(serde::Deserialize)]
    struct CaseOf {
        case_name: String,
    }
    let mut scan = StreamFollower::new(transport, stream, Start::Beginning).await?;
    let (mut cases, mut read) = (std::collections::BTreeSet::new(), 0);
    loop {
        let batch = scan.poll().await?;
        if batch.is_empty() || read >= CASES_SCAN_LIMIT {
            return Ok(cases);
        }
        read += batch.len();
        for received in batch {
            if let Ok(report) = serde_json::from_slice::<CaseOf>(&received.message.value) {
                cases.insert(report.case_name);
            }
        }
    }
}

/// Prints one report, or a warning for a message that is not one. An error means stdout is closed.
fn print(received: &Received, args: &TailArgs, paint: Paint) -> std::io::Result<()> {
    let report: TestReport = match serde_json::from_slice(&received.message.value) {
        Ok(report) => report,
        Err(error) => {
            output::warn(&format!(
                "livecheck: warning: `{}` partition {} offset {} is not a report ({error}); skipped",
                received.stream, received.partition, received.offset
            ));
            return Ok(());
        }
    };
    if args.case.as_ref().is_some_and(|case| *case != report.case_name) {
        return Ok(());
    }
    if args.json {
        // A report always encodes; should it not, the line says so rather than stopping the tail.
        let line = serde_json::to_string(&report)
            .unwrap_or_else(|error| serde_json::json!({"error": error.to_string()}).to_string());
        output::line(&line)
    } else {
        output::line(&report_text::one_line(&report, paint))
    }
}
