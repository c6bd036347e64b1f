//! `livecheck trigger`: starts an execution of a case by hand and waits for its verdict.

use std::{
    process::ExitCode,
    time::{Duration, Instant},
};

use clap::Args;
use livecheck::{wire::TestReport, LiveCheck, State, TestContext};
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
    /// How long the whole command may take (e.g. 60s, 2m): reaching the broker, publishing the execution and
    /// waiting for its report.
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

/// Exit 0 on PASS, 1 on any other verdict, 2 when no report comes in time. `--timeout` bounds the whole run:
/// looking up the report stream, publishing the execution and waiting for its report.
pub(crate) async fn run(args: TriggerArgs) -> anyhow::Result<ExitCode> {
    let deadline = Instant::now() + args.timeout;
    let transport = args.broker.connect()?;
    let streams = args.broker.streams();
    // Reads LIVECHECK_SIGNING_SECRET, so the test context is signed as the services sign it.
    let app = LiveCheck::builder().shared_transport(transport.clone()).streams(streams.clone()).build();
    // The report comes after the execution is published: start reading from the report stream's end now.
    let follow = StreamFollower::new(transport, &streams.reports, Start::End);
    let mut reports = within(deadline, follow).await.ok_or_else(|| args.broker.silent(args.timeout))??;
    let expires = args.expires.unwrap_or(args.timeout);
    let arguments = args.arguments();
    let publish = app.trigger_by_name(&args.case, args.id.as_deref(), &arguments, expires);
    let test = within(deadline, publish).await.ok_or_else(|| {
        anyhow::anyhow!(
            "the broker {} did not take the execution within {}",
            args.broker.url(),
            args::seconds_text(args.timeout.as_secs_f64())
        )
    })??;
    crate::output::warn(&format!(
        "livecheck: triggered test {} of {} on {}; waiting up to {} for its report",
        test.id(),
        args.case,
        args.broker.url(),
        args::seconds_text(deadline.saturating_duration_since(Instant::now()).as_secs_f64())
    ));
    let report = match wait_for_report(&mut reports, &test, deadline, args.broker.idle_poll()).await? {
        Waited::Report(report) => *report,
        Waited::BrokerSilent => return Err(args.broker.silent(args.timeout)),
        Waited::NoReport => {
            crate::output::warn(&format!(
                "livecheck: no report for test {} within {}: is a LiveCheck instance with case `{}` running on \
                 {}{}?",
                test.id(),
                args::seconds_text(args.timeout.as_secs_f64()),
                args.case,
                args.broker.url(),
                args.broker.prefix.as_deref().map(|p| format!(" with stream prefix `{p}`")).unwrap_or_default(),
            ));
            return Ok(ExitCode::from(2));
        }
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

/// `work`'s output, or `None` when `deadline` passes first (the work is dropped).
async fn within<T>(deadline: Instant, work: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::time::timeout_at(deadline.into(), work).await.ok()
}

/// How waiting for a report ended.
enum Waited {
    Report(Box<TestReport>),
    /// The deadline passed while the report stream could be read: no report came.
    NoReport,
    /// The deadline passed while the broker did not answer: no read finished, or the last one failed.
    BrokerSilent,
}

/// The report of `test` (same id, case and issue time), if one comes before `deadline`; the stream is read again
/// every `idle_poll` while nothing comes. Other reports, and messages that are not reports, are passed over.
async fn wait_for_report(
    reports: &mut StreamFollower,
    test: &TestContext,
    deadline: Instant,
    idle_poll: Duration,
) -> anyhow::Result<Waited> {
    // Whether the last read that finished succeeded (none finished yet: unknown).
    let mut answered = None;
    let cut = |answered: Option<bool>| if answered == Some(true) { Waited::NoReport } else { Waited::BrokerSilent };
    loop {
        let batch = match within(deadline, reports.poll()).await {
            None => return Ok(cut(answered)),
            Some(Ok(batch)) => {
                answered = Some(true);
                batch
            }
            // A broker away for a moment: go on trying until the deadline.
            Some(Err(error)) if crate::broker::is_retriable(&error) => {
                answered = Some(false);
                crate::output::warn(&format!(
                    "livecheck: warning: reading `{}`: {error:#}; trying again",
                    reports.stream()
                ));
                if within(deadline, tokio::time::sleep(Duration::from_millis(500))).await.is_none() {
                    return Ok(Waited::BrokerSilent);
                }
                continue;
            }
            Some(Err(error)) => return Err(error),
        };
        for received in batch {
            let Ok(report) = serde_json::from_slice::<TestReport>(&received.message.value) else { continue };
            let ours = report.test.as_ref().is_some_and(|execution| {
                execution.id == test.id()
                    && execution.case_name == test.case_name()
                    && execution.timestamp == test.timestamp()
            });
            if ours {
                return Ok(Waited::Report(Box::new(report)));
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Waited::NoReport);
        }
        tokio::time::sleep(left.min(idle_poll)).await;
    }
}
