//! The 1 MB-field attack on the tutorial's cache: 100 orders posted to the worker with a 1 MB user id — no test
//! context needed. The worker caches each order under its user in the `user-orders` table, and the LiveCheck
//! instance follows that table (the case checks each order is cached), so each process holds every key in
//! memory. The instance's peak RSS must stay within the same bound as under the signal flood (`big-fields`):
//! its peak before, plus `early_signal_bytes`, the read-ahead and the allowance.
//!
//! Two defences: the worker's `POST /order/create/` refuses ids over 256 bytes (400), and the table
//! (`livecheck::stream::Table`) holds at most its byte bound in memory (16 MiB for the tutorial's cache), dropping
//! the least recently changed users past it — for what reaches the changelog another way. (Before both, 100 such
//! orders took the instance from ~13 MiB to ~114 MiB, and kept it there.)

use std::time::Duration;

use super::{
    big_fields::{ALLOWANCE, FIELD_BYTES, FORGED, READ_AHEAD_BYTES},
    ledger::CACHE_CHANGELOG,
    outcome::ScenarioOutcome,
    rss::{mib, Memory, PeakRss},
    stage::{drain_timeout, random_hex, Stage},
    Context, Scenario,
};

/// The instance's `--early-signal-bytes` (as in `big-fields`).
const EARLY_SIGNAL_BYTES: u64 = 8 << 20;

pub(super) async fn run(context: &Context) -> anyhow::Result<ScenarioOutcome> {
    let (warm_up, rate) = context.pick((40, 15.0), (200, 20.0));
    let stage = Stage::start(context, &context.dir, |setup| {
        setup.instance_args.extend(["--early-signal-bytes".into(), EARLY_SIGNAL_BYTES.to_string()]);
    })
    .await?;
    let traffic = stage.traffic();
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let pid = stage.cluster.instance_pid(0).ok_or_else(|| anyhow::anyhow!("the instance is not running"))?;

    stage.timeline.note(format!("warm-up: {warm_up} genuine orders at {rate}/s"));
    let mut orders = traffic.place(warm_up, rate).await;
    if !stage.drain(&orders, drain_timeout(context)).await? {
        problems.push("the warm-up's orders were not all executed and reported in time".into());
    }
    let before = Memory::of(pid)?;
    stage.timeline.note(format!("instance (pid {pid}) before: RSS {}, peak {}", mib(before.rss), mib(before.peak)));
    let bound = before.peak + EARLY_SIGNAL_BYTES + READ_AHEAD_BYTES + ALLOWANCE;

    stage.timeline.note(format!("{FORGED} orders with a {FIELD_BYTES}-byte user id"));
    let big = "u".repeat(FIELD_BYTES);
    let mut flood = Vec::new();
    for _ in 0..FORGED {
        let order = serde_json::json!({
            "id": format!("flood-{}", random_hex(8)), "user_id": format!("{}{big}", random_hex(4)),
            "side": "sell", "quantity": 1.0, "price": 3.33, "fake": false,
        });
        flood.push(traffic.post(&order, &[]).await);
    }
    let answered = flood.iter().filter(|o| o.answered_ok()).count();
    notes.push(format!("{} orders with a 1 MB user id posted: {answered} answered 200", flood.len()));
    if answered > 0 {
        problems.push(format!("{answered} orders with a 1 MB user id were taken (answered 200)"));
    }
    orders.extend(flood);
    if !stage.drain(&orders, drain_timeout(context)).await? {
        problems.push("not every order answered 200 was executed and reported in time".into());
    }
    // The instance follows the cache's changelog on its own: give it time to read all of it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = Memory::of(pid)?;
    let peak = PeakRss { before, after, bound };
    stage.timeline.note(format!(
        "instance after: RSS {}, peak {} (bound {})",
        mib(after.rss),
        mib(after.peak),
        mib(bound)
    ));
    notes.push(format!(
        "instance peak RSS {} before, {} after (RSS now {}); bound {} (the {CACHE_CHANGELOG} table is bounded)",
        mib(before.peak),
        mib(after.peak),
        mib(after.rss),
        mib(bound)
    ));
    if !peak.within_bound() {
        problems.push(format!(
            "the instance's peak RSS went from {} to {}, over the bound {}",
            mib(before.peak),
            mib(after.peak),
            mib(bound)
        ));
    }
    let (figures, examples) = stage.account(&orders).await?;
    if !figures.losses().is_empty() {
        problems.extend(examples);
    }
    Ok(ScenarioOutcome::ran(Scenario::CacheFlood, figures, Some(peak), problems, notes))
}
