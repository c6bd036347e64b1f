//! `livecheck tail`: follows the report stream and prints each report.

use std::{process::ExitCode, time::Duration};

use clap::Args;
use livecheck::{transport::Received, TestReport};

use crate::{
    broker::BrokerArgs,
    follow::{Start, StreamFollower},
    output::{self, Paint},
    report_text,
};

/// Follows reports: one line each (finish time, case, test id, state, runtime, error), or JSON lines.
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
}

/// Prints reports until Ctrl-C (or SIGTERM) or until stdout is closed.
pub(crate) async fn run(args: TailArgs) -> anyhow::Result<ExitCode> {
    let transport = args.broker.connect()?;
    let stream = args.broker.streams().reports;
    let start = if args.from_beginning { Start::Beginning } else { Start::End };
    let mut follower = StreamFollower::new(transport, &stream, start).await?;
    eprintln!(
        "livecheck: following `{stream}` ({} partitions) on {}{} (Ctrl-C to stop)",
        follower.partitions(),
        args.broker.url(),
        args.case.as_deref().map(|case| format!(", case {case}")).unwrap_or_default()
    );
    let paint = Paint::for_stdout();
    let mut retry = Duration::from_millis(500);
    let interrupted = crate::interrupted();
    tokio::pin!(interrupted);
    loop {
        let batch = tokio::select! {
            () = &mut interrupted => return Ok(ExitCode::SUCCESS),
            batch = follower.poll() => batch,
        };
        let wait = match batch {
            Ok(batch) if batch.is_empty() => args.broker.idle_poll(),
            Ok(batch) => {
                retry = Duration::from_millis(500);
                for received in &batch {
                    if print(received, &args, paint).is_err() {
                        // The reader went away (`livecheck tail | head`): nothing more to do.
                        return Ok(ExitCode::SUCCESS);
                    }
                }
                continue;
            }
            Err(error) if crate::broker::is_retriable(&error) => {
                eprintln!("livecheck: warning: reading `{stream}`: {error:#}; trying again in {retry:?}");
                let wait = retry;
                retry = (retry * 2).min(Duration::from_secs(10));
                wait
            }
            Err(error) => return Err(error.context(format!("reading `{stream}` on {}", args.broker.url()))),
        };
        tokio::select! {
            () = &mut interrupted => return Ok(ExitCode::SUCCESS),
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Prints one report, or a warning for a message that is not one. An error means stdout is closed.
fn print(received: &Received, args: &TailArgs, paint: Paint) -> std::io::Result<()> {
    let report: TestReport = match serde_json::from_slice(&received.message.value) {
        Ok(report) => report,
        Err(error) => {
            eprintln!(
                "livecheck: warning: `{}` partition {} offset {} is not a report ({error}); skipped",
                received.stream, received.partition, received.offset
            );
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
