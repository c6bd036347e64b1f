//! `livecheck status`: the cases of a running LiveCheck instance, from its JSON API (`GET /api/status`).

use std::{process::ExitCode, time::Duration};

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Args;
use serde::Deserialize;

use crate::{
    args::{self, seconds_text},
    output::{self, pad, Paint, Tone},
};

/// Prints the instance's cases, failing first: status, pass rate, counts, runtime median, tests in flight and why
/// a case is failing. Exit 1 when a case is failing.
#[derive(Args, Debug)]
pub(crate) struct StatusArgs {
    /// Where the LiveCheck instance serves its API.
    #[arg(long, env = "LIVECHECK_URL", default_value = "http://127.0.0.1:9999")]
    url: String,
    /// Print the JSON as the instance answered it.
    #[arg(long)]
    json: bool,
    /// How long to wait for the answer.
    #[arg(long, default_value = "10s", value_parser = args::duration)]
    timeout: Duration,
    /// A PEM certificate to trust for an https:// --url, besides the system's: the instance's own (self-signed)
    /// certificate, or its CA's.
    #[arg(long, value_name = "PEM", env = "LIVECHECK_CA_CERT")]
    ca_cert: Option<std::path::PathBuf>,
}

/// `GET /api/status`, as far as the table needs it; fields the table does not show are ignored, missing ones
/// shown as unknown.
#[derive(Debug, Deserialize)]
pub(crate) struct StatusPage {
    #[serde(default)]
    instance: Option<Instance>,
    cases: Vec<CaseStatus>,
    /// Every instance of the group the asked one heard of (newer instances; absent before).
    #[serde(default)]
    instances: Vec<GroupMember>,
}

/// One instance of the group, as `/api/status`'s `instances` lists it.
#[derive(Debug, Deserialize)]
struct GroupMember {
    instance: String,
    #[serde(default)]
    leader: bool,
    #[serde(default)]
    cases: Vec<GroupCase>,
    #[serde(default)]
    recent_failures: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct GroupCase {
    name: String,
    #[serde(default)]
    failing: bool,
}

#[derive(Debug, Deserialize)]
struct Instance {
    started_at: Option<String>,
    #[serde(default)]
    leader: bool,
    transport: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CaseStatus {
    name: String,
    status: String,
    #[serde(default)]
    failing: bool,
    service_down: Option<ServiceDown>,
    stall: Option<Stall>,
    last_suite_failure: Option<SuiteFailure>,
    #[serde(default)]
    counts: Counts,
    pass_rate: Option<PassRate>,
    runtime_median_seconds: Option<f64>,
    #[serde(default)]
    in_flight: u64,
    oldest_in_flight_seconds: Option<f64>,
    #[serde(default)]
    instance_lagging: bool,
    #[serde(default)]
    unknown_verdicts: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
struct Counts {
    #[serde(default)]
    pass: u64,
    #[serde(default)]
    degraded: u64,
    #[serde(default)]
    fail: u64,
    #[serde(default)]
    error: u64,
    #[serde(default)]
    timeout: u64,
    #[serde(default)]
    skip: u64,
}

#[derive(Debug, Deserialize)]
struct PassRate {
    #[serde(default)]
    last: u64,
    #[serde(default)]
    passed: u64,
    rate: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct ServiceDown {
    since: Option<String>,
    url: Option<String>,
    last_error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Stall {
    since: Option<String>,
    quiet_seconds: Option<f64>,
    cause: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SuiteFailure {
    kind: Option<String>,
    state: Option<String>,
    reason: Option<String>,
    at: Option<String>,
}

/// Exit 1 when any case is failing, 0 otherwise; an instance that cannot be reached or answers something else
/// than its status is an error (exit 2).
pub(crate) async fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    // `127.0.0.1:9999` is taken as `http://127.0.0.1:9999`.
    let base = if args.url.contains("://") { args.url.clone() } else { format!("http://{}", args.url) };
    let base = base.trim_end_matches('/');
    let url = format!("{base}/api/status");
    let mut client = reqwest::Client::builder().timeout(args.timeout);
    if let Some(path) = &args.ca_cert {
        let pem = std::fs::read(path).with_context(|| format!("--ca-cert: cannot read `{}`", path.display()))?;
        let certificate = reqwest::Certificate::from_pem(&pem)
            .with_context(|| format!("--ca-cert: `{}` is not a PEM certificate", path.display()))?;
        client = client.add_root_certificate(certificate);
    }
    let client = client.build().context("setting up the HTTP client")?;
    let response =
        client.get(&url).send().await.with_context(|| format!("cannot reach the LiveCheck instance at {base}"))?;
    let code = response.status();
    let body = response.text().await.with_context(|| format!("reading the answer of {url}"))?;
    if !code.is_success() {
        let excerpt: String = body.chars().take(200).collect();
        anyhow::bail!("{url} answered HTTP {code}: {excerpt} (is {base} a LiveCheck instance with its web server on?)");
    }
    let page: StatusPage = serde_json::from_str(&body)
        .with_context(|| format!("{url} did not answer a LiveCheck status (is {base} a LiveCheck instance?)"))?;
    let shown = if args.json {
        output::line(body.trim_end())
    } else {
        render(&page, Paint::for_stdout()).iter().try_for_each(|line| output::line(line))
    };
    // Stdout closed early: the exit code still tells.
    drop(shown);
    Ok(if page.cases.iter().any(|case| case.failing) { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// The lines printed: a line about the instance, then the table of cases in the order the instance gave them
/// (failing first).
pub(crate) fn render(page: &StatusPage, paint: Paint) -> Vec<String> {
    let mut lines = Vec::new();
    let failing = page.cases.iter().filter(|case| case.failing).count();
    let plural = if page.cases.len() == 1 { "" } else { "s" };
    let mut about = format!("{} case{plural}, {failing} failing", page.cases.len());
    if let Some(instance) = &page.instance {
        about.push_str(&format!("; instance {}", if instance.leader { "leader" } else { "not leader" }));
        if let Some(started) = &instance.started_at {
            about.push_str(&format!(", started {}", time_text(started)));
        }
        if let Some(transport) = &instance.transport {
            about.push_str(&format!(", on {transport}"));
        }
    }
    lines.push(about);
    if page.cases.is_empty() {
        return lines;
    }
    let header = ["CASE", "STATUS", "PASS RATE", "PASS/DEGR/FAIL/ERR/TIMEOUT/SKIP", "RUNTIME", "IN FLIGHT", "CAUSE"];
    let rows: Vec<[String; 7]> = page.cases.iter().map(row).collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|column| {
            rows.iter().map(|row| row[column].chars().count()).chain([header[column].len()]).max().unwrap_or(0)
        })
        .collect();
    let last = header.len() - 1;
    let join = |cells: Vec<String>| cells.join("  ").trim_end().to_owned();
    lines.push(paint.bold(&join(
        header.iter().enumerate().map(|(i, h)| if i == last { (*h).to_owned() } else { pad(h, widths[i]) }).collect(),
    )));
    for (case, row) in page.cases.iter().zip(&rows) {
        let tone = if case.failing { Tone::Bad } else { Tone::of_state(&case.status) };
        let cells = row
            .iter()
            .enumerate()
            .map(|(i, cell)| match i {
                1 => paint.tone(&pad(cell, widths[i]), tone),
                i if i == last => cell.clone(),
                _ => pad(cell, widths[i]),
            })
            .collect();
        lines.push(join(cells));
    }
    if page.instances.len() > 1 {
        lines.push(format!("group: {} instances", page.instances.len()));
        for member in &page.instances {
            let failing: Vec<&str> = member.cases.iter().filter(|c| c.failing).map(|c| c.name.as_str()).collect();
            let id: String = member.instance.chars().take(8).collect();
            let role = if member.leader { "leader" } else { "member" };
            let failing = if failing.is_empty() { "none".to_owned() } else { failing.join(", ") };
            let recent = member.recent_failures.len();
            lines.push(format!("  {id}  {role:<6}  failing: {failing}; {recent} recent executions not passed"));
        }
    }
    lines
}

fn row(case: &CaseStatus) -> [String; 7] {
    let pass_rate = match &case.pass_rate {
        Some(PassRate { rate: Some(rate), last, passed }) => format!("{:.0}% ({passed}/{last})", rate * 100.0),
        _ => "-".into(),
    };
    let c = &case.counts;
    let counts = format!("{}/{}/{}/{}/{}/{}", c.pass, c.degraded, c.fail, c.error, c.timeout, c.skip);
    let runtime = case.runtime_median_seconds.map_or_else(|| "-".into(), seconds_text);
    let in_flight = match case.oldest_in_flight_seconds {
        Some(oldest) if case.in_flight > 0 => format!("{} (oldest {})", case.in_flight, seconds_text(oldest)),
        _ => case.in_flight.to_string(),
    };
    [case.name.clone(), case.status.clone(), pass_rate, counts, runtime, in_flight, cause(case)]
}

/// Why a case is failing, or what last went wrong with it: service down, stalled, last suite failure.
fn cause(case: &CaseStatus) -> String {
    let mut causes = Vec::new();
    if let Some(down) = &case.service_down {
        let mut text = "service down".to_owned();
        if let Some(since) = &down.since {
            text.push_str(&format!(" since {}", time_text(since)));
        }
        let detail: Vec<&str> = [down.url.as_deref(), down.last_error.as_deref()].into_iter().flatten().collect();
        if !detail.is_empty() {
            text.push_str(&format!(" ({})", detail.join(": ")));
        }
        causes.push(text);
    }
    if let Some(stall) = &case.stall {
        let mut text = "stalled".to_owned();
        if let Some(since) = &stall.since {
            text.push_str(&format!(" since {}", time_text(since)));
        }
        let why = match stall.cause.as_deref() {
            Some("no_traffic") => Some("no service reported traffic"),
            Some("not_sampled") => Some("traffic, none sampled"),
            Some("tests_not_arriving") => Some("sampled tests do not reach the instance"),
            _ => None,
        };
        match (stall.quiet_seconds, why) {
            (Some(quiet), Some(why)) => text.push_str(&format!(" (no test for {}; {why})", seconds_text(quiet))),
            (Some(quiet), None) => text.push_str(&format!(" (no test for {})", seconds_text(quiet))),
            (None, Some(why)) => text.push_str(&format!(" ({why})")),
            (None, None) => {}
        }
        causes.push(text);
    }
    if case.instance_lagging {
        causes.push(format!("instance lagging: TIMEOUTs unknown ({} so far)", case.unknown_verdicts));
    }
    if let Some(failure) = &case.last_suite_failure {
        let mut text = "last suite failure".to_owned();
        if let Some(at) = &failure.at {
            text.push_str(&format!(" {}", time_text(at)));
        }
        let what: Vec<&str> = [failure.state.as_deref(), failure.kind.as_deref()].into_iter().flatten().collect();
        if !what.is_empty() {
            text.push_str(&format!(" {}", what.join(" ")));
        }
        if let Some(reason) = &failure.reason {
            text.push_str(&format!(": {reason}"));
        }
        causes.push(text);
    }
    causes.join("; ").lines().collect::<Vec<_>>().join(" | ")
}

/// An RFC 3339 time as `2026-01-02 03:04:05Z`, or as given when it is not one.
fn time_text(text: &str) -> String {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc).format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|_| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
      "instance": {"started_at": "2026-01-02T03:00:00Z", "leader": true, "transport": "sqlite:///tmp/lc.db",
                   "metrics": {"tests_received": 3}},
      "cases": [
        {"name": "test_order", "status": "FAIL", "failing": true,
         "service_down": {"since": "2026-01-02T03:04:05.123Z", "url": "http://localhost:6066", "last_error": "connection refused"},
         "stall": null,
         "last_suite_failure": {"kind": "failure_rate", "state": "FAIL", "reason": "8 of the last 10 executions failed", "at": "2026-01-02T03:04:00Z"},
         "counts": {"PASS": 10, "FAIL": 1, "ERROR": 0, "TIMEOUT": 2, "SKIP": 0},
         "consecutive_failures": 0, "total_failures": 1,
         "pass_rate": {"last": 20, "passed": 19, "rate": 0.95},
         "runtime_median_seconds": 0.04, "interval_median_seconds": 1.0, "lateness_median_seconds": 0.0,
         "in_flight": 2, "oldest_in_flight_seconds": 12.5},
        {"name": "ping", "status": "INIT", "failing": false, "service_down": null, "stall": null,
         "last_suite_failure": null, "counts": {"PASS": 0, "FAIL": 0, "ERROR": 0, "TIMEOUT": 0, "SKIP": 0},
         "pass_rate": {"last": 0, "passed": 0, "rate": null}, "runtime_median_seconds": null,
         "in_flight": 0, "oldest_in_flight_seconds": null}
      ]
    }"#;

    #[test]
    fn the_group_is_listed_when_the_instance_heard_of_others() {
        let mut page: serde_json::Value = serde_json::from_str(SAMPLE).unwrap();
        page["instances"] = serde_json::json!([
            {"instance": "0a1b2c3d-aaaa", "leader": true, "cases": [{"name": "test_order", "failing": true}],
             "recent_failures": [{}, {}]},
            {"instance": "9f8e7d6c-bbbb", "leader": false, "cases": [{"name": "test_order", "failing": false}],
             "recent_failures": []}
        ]);
        let lines = render(&serde_json::from_value(page).unwrap(), Paint::plain());
        let group: Vec<&String> = lines.iter().skip_while(|l| !l.starts_with("group:")).collect();
        assert_eq!(group[0], "group: 2 instances");
        assert_eq!(group[1], "  0a1b2c3d  leader  failing: test_order; 2 recent executions not passed");
        assert_eq!(group[2], "  9f8e7d6c  member  failing: none; 0 recent executions not passed");
        // One instance alone: no group lines.
        let alone: StatusPage = serde_json::from_str(SAMPLE).unwrap();
        assert!(render(&alone, Paint::plain()).iter().all(|l| !l.starts_with("group:")));
    }

    #[test]
    fn the_table_keeps_the_instance_order_and_says_why_a_case_fails() {
        let page: StatusPage = serde_json::from_str(SAMPLE).unwrap();
        let lines = render(&page, Paint::plain());
        assert_eq!(
            lines[0],
            "2 cases, 1 failing; instance leader, started 2026-01-02 03:00:00Z, on sqlite:///tmp/lc.db"
        );
        assert!(
            lines[1].starts_with("CASE        STATUS  PASS RATE    PASS/DEGR/FAIL/ERR/TIMEOUT/SKIP  RUNTIME"),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].starts_with(
                "test_order  FAIL    95% (19/20)  10/0/1/0/2/0                     40ms     2 (oldest 12.50s)"
            ),
            "{}",
            lines[2]
        );
        assert!(lines[2].ends_with(
            "service down since 2026-01-02 03:04:05Z (http://localhost:6066: connection refused); last suite failure \
             2026-01-02 03:04:00Z FAIL failure_rate: 8 of the last 10 executions failed"
        ), "{}", lines[2]);
        assert!(
            lines[3].starts_with("ping        INIT    -            0/0/0/0/0/0                      -        0"),
            "{}",
            lines[3]
        );
        assert_eq!(lines.len(), 4);
    }

    #[test]
    fn a_stall_is_a_cause_and_missing_fields_are_shown_as_unknown() {
        let page: StatusPage = serde_json::from_str(
            r#"{"cases": [{"name": "c", "status": "STALL", "failing": true,
                "stall": {"since": "2026-01-02T03:04:05Z", "quiet_seconds": 31.2}}]}"#,
        )
        .unwrap();
        let lines = render(&page, Paint::plain());
        assert_eq!(lines[0], "1 case, 1 failing");
        assert!(lines[2].ends_with("stalled since 2026-01-02 03:04:05Z (no test for 31.20s)"), "{}", lines[2]);

        let page: StatusPage = serde_json::from_str(
            r#"{"cases": [{"name": "c", "status": "STALL", "failing": true, "instance_lagging": true,
                "unknown_verdicts": 3, "stall": {"quiet_seconds": 40, "cause": "tests_not_arriving"}}]}"#,
        )
        .unwrap();
        let lines = render(&page, Paint::plain());
        assert!(
            lines[2].ends_with(
                "stalled (no test for 40.00s; sampled tests do not reach the instance); instance lagging: TIMEOUTs \
                 unknown (3 so far)"
            ),
            "{}",
            lines[2]
        );
    }
}
