//! `livecheck trigger`: starts an execution of a case by hand and waits for its verdict.

use std::{
    process::ExitCode,
    time::{Duration, Instant},
};

use clap::Args;
use livecheck::{LiveCheck, State, TestContext, TestReport};
use serde_json::{Map, Value};

use crate::{
    args,
    broker::BrokerArgs,
    follow::{Start, StreamFollower},
    output::{self, Paint},
    report_text,
};

/// Publishes an execution of CASE, as a service's `trigger` does, then waits for its report and prints the
/// verdict.
#[derive(Args, Debug)]
pub(crate) struct TriggerArgs {
    /// The case's name, as the LiveCheck instance registered it (e.g. orders.test_order).
    case: String,
    /// A named argument, KEY=VALUE: a value that parses as JSON (3, true, null, {"a": 1}, "quoted") is taken as
    /// JSON, anything else as a string. Repeat for more.
    #[arg(long = "arg", value_name = "KEY=VALUE", value_parser = args::key_value)]
    args: Vec<(String, Value)>,
    /// All arguments as JSON: an object gives named arguments, an array positional ones.
    #[arg(long, value_name = "JSON", value_parser = args::json, conflicts_with = "args")]
    args_json: Option<Value>,
    /// The test id (default: a new UUID).
    #[arg(long)]
    id: Option<String>,
    #[command(flatten)]
    broker: BrokerArgs,
    /// How long to wait for the report (e.g. 60s, 2m).
    #[arg(long, default_value = "60s", value_parser = args::duration)]
    timeout: Duration,
    /// How long the execution stays valid: an instance that gets to it after that skips it (default: the
    /// --timeout, so that a test nobody waits for any more does not run later).
    #[arg(long, value_parser = args::duration)]
    expires: Option<Duration>,
    /// Print the report as JSON instead of the verdict.
    #[arg(long)]
    json: bool,
}

impl TriggerArgs {
    /// A `--arg` key given twice, if any.
    pub(crate) fn repeated_key(&self) -> Option<&str> {
        let mut seen = std::collections::HashSet::new();
        self.args.iter().map(|(key, _)| key.as_str()).find(|key| !seen.insert(*key))
    }

    /// The arguments: `--args-json`, or the `--arg`s as an object (none: an empty object).
    fn arguments(&self) -> Value {
        match &self.args_json {
            Some(json) => json.clone(),
            None => Value::Object(self.args.iter().cloned().collect::<Map<_, _>>()),
        }
    }
}

/// Exit 0 on PASS, 1 on any other verdict, 2 when no report comes in time.
pub(crate) async fn run(args: TriggerArgs) -> anyhow::Result<ExitCode> {
    let transport = args.broker.connect()?;
    let streams = args.broker.streams();
    // Reads LIVECHECK_SIGNING_SECRET, so the test context is signed as the services sign it.
    let app = LiveCheck::builder().shared_transport(transport.clone()).streams(streams.clone()).build();
    // The report comes after the execution is published: start reading from the report stream's end now.
    let mut reports = StreamFollower::new(transport, &streams.reports, Start::End).await?;
    let expires = args.expires.unwrap_or(args.timeout);
    let arguments = args.arguments();
    let publish = app.trigger_by_name(&args.case, args.id.as_deref(), &arguments, expires);
    let test = tokio::time::timeout(args.timeout, publish).await.map_err(|_| {
        anyhow::anyhow!(
            "the broker {} did not take the execution within {}",
            args.broker.url(),
            args::seconds_text(args.timeout.as_secs_f64())
        )
    })??;
    eprintln!(
        "livecheck: triggered test {} of {} on {}; waiting up to {} for its report",
        test.id(),
        args.case,
        args.broker.url(),
        args::seconds_text(args.timeout.as_secs_f64())
    );
    let Some(report) = wait_for_report(&mut reports, &test, args.timeout, args.broker.idle_poll()).await? else {
        eprintln!(
            "livecheck: no report for test {} within {}: is a LiveCheck instance with case `{}` running on {}{}?",
            test.id(),
            args::seconds_text(args.timeout.as_secs_f64()),
            args.case,
            args.broker.url(),
            args.broker.prefix.as_deref().map(|p| format!(" with stream prefix `{p}`")).unwrap_or_default(),
        );
        return Ok(ExitCode::from(2));
    };
    let printed = if args.json {
        output::line(&serde_json::to_string(&report)?)
    } else {
        report_text::verdict(&report, Paint::for_stdout()).iter().try_for_each(|line| output::line(line))
    };
    // Stdout closed early: the exit code still tells the verdict.
    drop(printed);
    Ok(if report.state == State::Pass { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The report of `test` (same id, case and issue time), or `None` if none comes within `timeout`; the stream is
/// read again every `idle_poll` while nothing comes. Other reports, and messages that are not reports, are passed
/// over.
async fn wait_for_report(
    reports: &mut StreamFollower,
    test: &TestContext,
    timeout: Duration,
    idle_poll: Duration,
) -> anyhow::Result<Option<TestReport>> {
    let deadline = Instant::now() + timeout;
    loop {
        let batch = match reports.poll().await {
            Ok(batch) => batch,
            // A broker away for a moment: go on trying until the deadline.
            Err(error) if crate::broker::is_retriable(&error) && Instant::now() < deadline => {
                eprintln!("livecheck: warning: reading `{}`: {error:#}; trying again", reports.stream());
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            Err(error) => return Err(error),
        };
        for received in batch {
            let Ok(report) = serde_json::from_slice::<TestReport>(&received.message.value) else { continue };
            let ours = report.test.as_ref().is_some_and(|execution| {
                execution.id == test.id()
                    && execution.case_name == test.case_name()
                    && execution.timestamp == test.timestamp()
            });
            if ours {
                return Ok(Some(report));
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        tokio::time::sleep(left.min(idle_poll)).await;
    }
}
