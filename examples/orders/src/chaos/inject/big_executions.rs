//! Executions with 1 MB arguments against the LiveCheck instance's memory, with its bound on the bytes of pending
//! tests it holds set on its command line (`--max-in-flight-bytes`) and no signing secret (the worst case: anyone
//! on the broker can write executions). After a warm-up with genuine orders, the instance's peak RSS (`VmHWM`) is
//! read; then [`BIG`] executions of `orders.test_order` whose `side` is 1 MB are written straight onto the
//! pending-tests stream. They wait for signals that never come (the stage timeout, 30 s each): the instance holds
//! what its bound lets in and leaves the rest on the log. Once it stops taking more, its peak RSS is read again.
//! It must stay within the peak before plus `max_in_flight_bytes`, plus what the embedded log reads ahead of the
//! app ([`READ_AHEAD_BYTES`]), plus the [`ALLOWANCE`] of the big-fields scenario: the bound does not depend on how
//! many big executions come. (Bounded by count alone, 100 at once, they lifted it by their whole size.)
//!
//! The big executions are not waited for: the processes are killed with the stage. The figures are the warm-up's.

use std::time::{Duration, Instant};

use livecheck::Clock;

use super::{
    big_fields::{ALLOWANCE, FIELD_BYTES, READ_AHEAD_BYTES},
    forgery::CASE,
    outcome::ScenarioOutcome,
    pending::outsider,
    rss::{mib, Memory, PeakRss},
    stage::{drain_timeout, random_hex, Stage},
    Context, Scenario,
};

/// The instance's `--max-in-flight-bytes`.
const MAX_IN_FLIGHT_BYTES: u64 = 4 << 20;
/// Executions with a 1 MB argument.
const BIG: usize = 60;
/// How long they claim to be valid.
const EXPIRES_AFTER: Duration = Duration::from_secs(3 * 3600);
/// The instance holds them once it has taken no new test for this long…
const QUIET_FOR: Duration = Duration::from_secs(3);
/// … and at most this long after they were written.
const HELD_WITHIN: Duration = Duration::from_secs(15);

pub(super) async fn run(context: &Context) -> anyhow::Result<ScenarioOutcome> {
    let (warm_up, rate) = context.pick((40, 15.0), (200, 20.0));
    let stage = Stage::start(context, &context.dir, |setup| {
        setup.instance_args.extend(["--max-in-flight-bytes".into(), MAX_IN_FLIGHT_BYTES.to_string()]);
    })
    .await?;
    let traffic = stage.traffic();
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let pid = stage.cluster.instance_pid(0).ok_or_else(|| anyhow::anyhow!("the instance is not running"))?;

    stage.timeline.note(format!("warm-up: {warm_up} genuine orders at {rate}/s"));
    let orders = traffic.place(warm_up, rate).await;
    if !stage.drain(&orders, drain_timeout(context)).await? {
        problems.push("the warm-up's orders were not all executed and reported in time".into());
    }
    // The big executions never finish while the stage runs: the warm-up is what is accounted.
    let (figures, examples) = stage.account(&orders).await?;
    if !figures.losses().is_empty() {
        problems.extend(examples);
    }
    let before = Memory::of(pid)?;
    stage.timeline.note(format!("instance (pid {pid}) before: RSS {}, peak {}", mib(before.rss), mib(before.peak)));
    let bound = before.peak + MAX_IN_FLIGHT_BYTES + READ_AHEAD_BYTES + ALLOWANCE;

    stage
        .timeline
        .note(format!("writing {BIG} executions with a {FIELD_BYTES}-byte side onto the pending-tests stream"));
    let received_before = stage.instance_metric("tests_received").await.unwrap_or(0);
    let transport = livecheck::transport::from_url(&stage.broker)?;
    let writer = outsider(&transport, "", Clock::System);
    let args = serde_json::json!({"side": "x".repeat(FIELD_BYTES)});
    for _ in 0..BIG {
        let id = format!("big-execution-{}", random_hex(8));
        writer.trigger_by_name(CASE, Some(&id), &args, EXPIRES_AFTER).await?;
    }
    drop((writer, args, transport));
    let (taken, executing) = wait_until_held(&stage, received_before).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = Memory::of(pid)?;
    let peak = PeakRss { before, after, bound };
    stage.timeline.note(format!("held: RSS {}, peak {} (bound {})", mib(after.rss), mib(after.peak), mib(bound)));
    notes.push(format!(
        "{BIG} executions of {FIELD_BYTES} bytes written; the instance took {taken} tests (tests_received), \
         {executing} executing, the rest left on the log"
    ));
    notes.push(format!(
        "instance peak RSS: {} before, {} holding them; bound {} = peak before + max_in_flight_bytes {} + \
         read-ahead {} + allowance {}",
        mib(before.peak),
        mib(after.peak),
        mib(bound),
        mib(MAX_IN_FLIGHT_BYTES),
        mib(READ_AHEAD_BYTES),
        mib(ALLOWANCE)
    ));
    if executing == 0 {
        problems.push("no big execution was executing: the instance did not take them, nothing was measured".into());
    }
    if !peak.within_bound() {
        problems.push(format!(
            "the instance's peak RSS went from {} to {}, over the bound {}",
            mib(before.peak),
            mib(after.peak),
            mib(bound)
        ));
    }
    Ok(ScenarioOutcome::ran(Scenario::BigExecutions, figures, Some(peak), problems, notes))
}

/// Waits until the instance has taken no new test (`tests_received`) for [`QUIET_FOR`] with at least one
/// executing, at most [`HELD_WITHIN`]: the tests it took since `received_before`, and how many execute.
async fn wait_until_held(stage: &Stage, received_before: u64) -> (u64, u64) {
    let started = Instant::now();
    let (mut received, mut changed) = (received_before, Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = stage.instance_metric("tests_received").await.unwrap_or(received);
        let executing = stage.instance_metric("tests_executing").await.unwrap_or(0);
        if now != received {
            (received, changed) = (now, Instant::now());
        }
        let held = executing > 0 && received > received_before && changed.elapsed() >= QUIET_FOR;
        if held || started.elapsed() >= HELD_WITHIN {
            stage.timeline.note(format!(
                "{} tests taken, {executing} executing, none taken for {:.1} s",
                received - received_before,
                changed.elapsed().as_secs_f64()
            ));
            return (received - received_before, executing);
        }
    }
}
