//! `livecheck gate`: the verdict on a canary version against its baseline, from a running instance's JSON API
//! (`GET /api/gate`), as a CI/CD step: exit 0 successful, 1 failed, 3 inconclusive (2: no answer).

use std::{process::ExitCode, time::Duration};

use anyhow::Context;
use clap::Args;
use serde::Deserialize;

use crate::{args, output};

/// Asks the instance whether CANARY may go on: its executions of CASE compared with BASELINE's.
#[derive(Args, Debug)]
pub(crate) struct GateArgs {
    /// Where the LiveCheck instance serves its API.
    #[arg(long, env = "LIVECHECK_URL", default_value = "http://127.0.0.1:9999")]
    url: String,
    /// The case whose executions are compared.
    #[arg(long)]
    case: String,
    /// The new version.
    #[arg(long)]
    canary: String,
    /// The version it is compared with.
    #[arg(long)]
    baseline: String,
    /// Compare the last N executions of each version (default: all the instance keeps, 2000).
    #[arg(long, value_name = "N", conflicts_with = "window")]
    last: Option<usize>,
    /// Compare the executions that finished within this long (`10m`, `1h`).
    #[arg(long, value_parser = args::duration)]
    window: Option<Duration>,
    /// Executions of each version needed for a verdict (default 30).
    #[arg(long)]
    min_executions: Option<u64>,
    /// The largest pass-rate drop tolerated, as a fraction (default 0.01).
    #[arg(long)]
    max_pass_rate_drop: Option<f64>,
    /// The largest rise of a median latency tolerated, as a fraction (default 0.2).
    #[arg(long)]
    max_latency_increase: Option<f64>,
    /// The chance of a false alarm tolerated (default 0.05).
    #[arg(long)]
    significance: Option<f64>,
    /// Print the JSON as the instance answered it.
    #[arg(long)]
    json: bool,
    /// How long to wait for the answer.
    #[arg(long, default_value = "10s", value_parser = args::duration)]
    timeout: Duration,
}

/// The verdict, as far as the command shows it.
#[derive(Debug, Deserialize)]
struct Verdict {
    outcome: String,
    reason: String,
}

pub(crate) async fn run(args: GateArgs) -> anyhow::Result<ExitCode> {
    let base = if args.url.contains("://") { args.url.clone() } else { format!("http://{}", args.url) };
    let base = base.trim_end_matches('/');
    let mut query: Vec<(&str, String)> =
        vec![("case", args.case.clone()), ("canary", args.canary.clone()), ("baseline", args.baseline.clone())];
    let optional = [
        ("last", args.last.map(|n| n.to_string())),
        ("window_seconds", args.window.map(|w| w.as_secs_f64().to_string())),
        ("min_executions", args.min_executions.map(|n| n.to_string())),
        ("max_pass_rate_drop", args.max_pass_rate_drop.map(|f| f.to_string())),
        ("max_latency_increase", args.max_latency_increase.map(|f| f.to_string())),
        ("significance", args.significance.map(|f| f.to_string())),
    ];
    query.extend(optional.into_iter().filter_map(|(name, value)| value.map(|v| (name, v))));
    let url = format!("{base}/api/gate");
    let client = reqwest::Client::builder().timeout(args.timeout).build().context("setting up the HTTP client")?;
    let response = client
        .get(&url)
        .query(&query)
        .send()
        .await
        .with_context(|| format!("cannot reach the LiveCheck instance at {base}"))?;
    let code = response.status();
    let body = response.text().await.with_context(|| format!("reading the answer of {url}"))?;
    if !code.is_success() {
        let excerpt: String = body.chars().take(300).collect();
        anyhow::bail!("{url} answered HTTP {code}: {excerpt}");
    }
    let verdict: Verdict = serde_json::from_str(&body)
        .with_context(|| format!("{url} did not answer a gate verdict (is {base} a LiveCheck instance?)"))?;
    let shown = if args.json {
        output::line(body.trim_end())
    } else {
        output::line(&format!("{}: {}", verdict.outcome.to_uppercase(), verdict.reason))
    };
    drop(shown);
    Ok(match verdict.outcome.as_str() {
        "successful" => ExitCode::SUCCESS,
        "failed" => ExitCode::from(1),
        _ => ExitCode::from(3),
    })
}
