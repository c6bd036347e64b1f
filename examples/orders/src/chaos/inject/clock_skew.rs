//! Clock skew: while the worker runs, a service whose wall clock is 4 h behind the instance's (an outsider's
//! LiveCheck app with [`Clock::FollowTokio`] anchored 4 h in the past) triggers [`SKEWED`] executions of
//! `orders.test_order` valid for 3 h: by the instance's clock each arrives expired an hour ago. Each alone is
//! skipped; ten in a row are a suite failure of their own kind. The instance must publish a suite report FAIL
//! whose error starts with `clock skew`, and its `GET /api/cases/orders.test_order` must show `clock_skew` with the
//! measured skew (14 400 s, give or take [`SKEW_TOLERANCE_SECONDS`]) and `last_suite_failure.kind` `clock_skew`.
//! Then genuine orders, placed in time, must all PASS, and `clock_skew` be gone.
//!
//! The instance makes a fake order every 0.5 s, whose execution arrives in time and ends a row of skewed ones: the
//! skewed executions are written right after one (the instance's `fake_requests` counter moved), and the case's
//! status is read while it shows the row. Should a fake order's execution still fall among them, they are written
//! again, at most [`ATTEMPTS`] times.

use std::time::{Duration, Instant};

use livecheck::Clock;

use super::{
    forgery::CASE,
    ledger::LogContents,
    outcome::ScenarioOutcome,
    pending::outsider,
    stage::{drain_timeout, random_hex, Stage},
    Context, Scenario,
};

/// How far behind the outsider's clock is.
const BEHIND_SECONDS: i64 = 4 * 3600;
/// How far the measured skew may be from it (the executions' time on the stream, the processes' start).
const SKEW_TOLERANCE_SECONDS: f64 = 120.0;
/// Skewed executions written in a row.
const SKEWED: usize = 12;
/// Arriving skewed in a row, the case fails for it (the library's count).
const SKEWED_IN_A_ROW: u64 = 10;
/// How long the skewed executions claim to be valid (less than how far behind: they arrive expired).
const EXPIRES_AFTER: Duration = Duration::from_secs(3 * 3600);
/// Rows of skewed executions written at most.
const ATTEMPTS: usize = 3;
/// How long the case's status is watched after a row was written.
const WATCH_FOR: Duration = Duration::from_millis(1500);

pub(super) async fn run(context: &Context) -> anyhow::Result<ScenarioOutcome> {
    let (count, rate) = context.pick((40, 15.0), (200, 20.0));
    let stage = Stage::start(context, &context.dir, |_| {}).await?;
    let traffic = stage.traffic();
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let case_path = format!("/api/cases/{CASE}");

    let transport = livecheck::transport::from_url(&stage.broker)?;
    let behind = chrono::Duration::seconds(BEHIND_SECONDS);
    let clock = Clock::FollowTokio { wall: chrono::Utc::now() - behind, instant: tokio::time::Instant::now() };
    let skewed_service = outsider(&transport, "", clock);
    let args = serde_json::json!({"side": "sell"});
    let mut seen = None;
    for attempt in 1..=ATTEMPTS {
        after_a_fake_order(&stage).await;
        stage.timeline.note(format!(
            "attempt {attempt}: {SKEWED} executions from a service {} h behind, valid {} h",
            BEHIND_SECONDS / 3600,
            EXPIRES_AFTER.as_secs() / 3600
        ));
        for _ in 0..SKEWED {
            let id = format!("skewed-{attempt}-{}", random_hex(6));
            skewed_service.trigger_by_name(CASE, Some(&id), &args, EXPIRES_AFTER).await?;
        }
        seen = watch_the_row(&stage, &case_path).await;
        if seen.is_some() {
            break;
        }
        stage.timeline.note("the status never showed the row in full: an execution in time fell among them");
    }
    let Some(case) = seen else {
        problems.push(format!(
            "in {ATTEMPTS} attempts the case's status never showed {SKEWED_IN_A_ROW} skewed executions in a row with \
             last_suite_failure clock_skew"
        ));
        return Ok(ScenarioOutcome::ran(Scenario::ClockSkew, Default::default(), None, problems, notes));
    };
    let skew = &case["clock_skew"];
    let skew_seconds = skew["skew_seconds"].as_f64().unwrap_or(f64::NAN);
    stage.timeline.note(format!("{case_path}: clock_skew {skew}, last_suite_failure {}", case["last_suite_failure"]));
    if (skew_seconds - BEHIND_SECONDS as f64).abs() > SKEW_TOLERANCE_SECONDS {
        problems.push(format!("clock_skew.skew_seconds is {skew_seconds}, expected {BEHIND_SECONDS} ± 120"));
    }

    // The suite failure is on the report stream.
    let reported = suite_failure_reported(&stage).await?;
    match &reported {
        Some(error) => stage.timeline.note(format!("suite report FAIL: {error}")),
        None => problems.push("no suite report FAIL with an error starting with `clock skew`".into()),
    }
    let minutes = (skew_seconds / 60.0).round() as i64;
    notes.push(format!(
        "clock skew detected: {} h {} min ({skew_seconds:.0} s over {} executions in a row); suite failure \
         clock_skew {}",
        minutes / 60,
        minutes % 60,
        skew["executions"],
        if reported.is_some() { "reported" } else { "NOT reported" }
    ));

    // Executions in time end it.
    stage.timeline.note(format!("placing {count} genuine orders at {rate}/s"));
    let orders = traffic.place(count, rate).await;
    if !stage.drain(&orders, drain_timeout(context)).await? {
        problems.push("not every order answered 200 was executed and reported in time".into());
    }
    let after = stage.cluster.instance_api(0, &case_path).await;
    let cleared = after.as_ref().is_some_and(|case| case["clock_skew"].is_null());
    notes.push(format!(
        "after {} orders in time: clock_skew {}",
        orders.len(),
        if cleared { "null again" } else { "still set" }
    ));
    if !cleared {
        problems.push(format!(
            "clock_skew is not null after executions in time: {}",
            after.map_or("(no answer)".to_owned(), |case| case["clock_skew"].to_string())
        ));
    }
    let (figures, examples) = stage.account(&orders).await?;
    if !figures.losses().is_empty() {
        problems.extend(examples);
    }
    Ok(ScenarioOutcome::ran(Scenario::ClockSkew, figures, None, problems, notes))
}

/// Returns right after the instance made a fake order (its `fake_requests` counter moved, and its execution had
/// time to be written): the next one is half a second away.
async fn after_a_fake_order(stage: &Stage) {
    let first = stage.instance_metric("fake_requests").await;
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && stage.instance_metric("fake_requests").await == first {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(60)).await;
}

/// Watches the case's status for [`WATCH_FOR`]: the status once it shows [`SKEWED_IN_A_ROW`] skewed executions in
/// a row and `last_suite_failure.kind` `clock_skew`, if it does.
async fn watch_the_row(stage: &Stage, case_path: &str) -> Option<serde_json::Value> {
    let deadline = Instant::now() + WATCH_FOR;
    while Instant::now() < deadline {
        if let Some(case) = stage.cluster.instance_api(0, case_path).await {
            let in_a_row = case["clock_skew"]["executions"].as_u64().unwrap_or(0);
            if in_a_row >= SKEWED_IN_A_ROW && case["last_suite_failure"]["kind"] == "clock_skew" {
                return Some(case);
            }
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    None
}

/// The error of a suite report FAIL starting with `clock skew` on the report stream, waiting up to 10 s for it.
async fn suite_failure_reported(stage: &Stage) -> anyhow::Result<Option<String>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let contents = LogContents::read(&stage.broker, false).await?;
        let found = contents.suite_report_list().into_iter().find_map(|(state, error)| {
            error.filter(|error| state == livecheck::State::Fail && error.starts_with("clock skew"))
        });
        if found.is_some() || Instant::now() >= deadline {
            return Ok(found);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
