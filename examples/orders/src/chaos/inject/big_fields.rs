//! The 1 MB-field attack on the LiveCheck instance's memory, with its byte limits set on its command line
//! (`--early-signal-bytes`, `--max-message-bytes`) and no signing secret (the worst case: forged context is
//! believed). After a warm-up with genuine orders, the instance's peak RSS (`VmHWM`) is read; then
//!
//! 1. 100 orders are posted to the worker with forged test headers and a 1 MB field (`side`) — the worker refuses
//!    them now (400: a side is buy or sell), where it used to believe the context and signal a 1 MB order — and
//!    100 signals with a 1 MB value, and 10 over `max_message_bytes`, are written straight onto the bus, for tests
//!    that never start: held by the instance within `early_signal_bytes`;
//! 2. 200 more 1 MB signals are written onto the bus as fast as possible (a burst the instance reads behind);
//!
//! and once the instance has read them its peak RSS is read again. It must stay within the peak before plus
//! `early_signal_bytes`, plus what the embedded log reads ahead of the app ([`READ_AHEAD_BYTES`]), plus a stated
//! [`ALLOWANCE`]: the bound does not depend on how many big messages come. Genuine orders placed after the
//! attack must still PASS.

use std::time::Duration;

use livecheck::{transport::Message, wire::SignalEvent};

use super::{
    forgery::{Forgery, CASE},
    ledger::BUS_STREAM,
    outcome::ScenarioOutcome,
    rss::{mib, Memory, PeakRss},
    stage::{drain_timeout, random_hex, Stage},
    Context, Scenario,
};

/// The big field.
pub(super) const FIELD_BYTES: usize = 1_000_000;
/// Forged orders, and forged signals, with a big field.
pub(super) const FORGED: usize = 100;
/// Forged signals over `max_message_bytes`.
const OVERSIZED: usize = 10;
/// Forged signals of the burst.
const BURST: usize = 200;
/// The instance's `--early-signal-bytes`.
const EARLY_SIGNAL_BYTES: u64 = 8 << 20;
/// The instance's `--max-message-bytes`.
const MAX_MESSAGE_BYTES: u64 = 1 << 20;
/// The most the embedded log's group member reads ahead of the instance (the library's
/// `READ_AHEAD_BYTES`).
pub(super) const READ_AHEAD_BYTES: u64 = 8 << 20;
/// What the peak may grow by besides the configured limits and the read-ahead, whatever the number of big
/// messages: SQLite's page cache of the two connections that read the big rows (2 MiB each), a message's
/// transient copies on its way (SQLite assembles the value, the row's bytes, the decoded value: a few
/// `max_message_bytes`), and the allocator's per-thread arenas keeping freed blocks. Measured above the limits
/// and the read-ahead on the 2-core machine: 10–17 MiB.
pub(super) const ALLOWANCE: u64 = 24 << 20;

pub(super) async fn run(context: &Context) -> anyhow::Result<ScenarioOutcome> {
    let (warm_up, after, rate) = context.pick((40, 40, 15.0), (200, 200, 20.0));
    let stage = Stage::start(context, &context.dir, |setup| {
        setup.instance_args.extend([
            "--early-signal-bytes".into(),
            EARLY_SIGNAL_BYTES.to_string(),
            "--max-message-bytes".into(),
            MAX_MESSAGE_BYTES.to_string(),
        ]);
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
    let received_before = stage.instance_metric("signals_received").await.unwrap_or(0);
    let before = Memory::of(pid)?;
    stage.timeline.note(format!("instance (pid {pid}) before: RSS {}, peak {}", mib(before.rss), mib(before.peak)));
    let bound = before.peak + EARLY_SIGNAL_BYTES + READ_AHEAD_BYTES + ALLOWANCE;

    stage.timeline.note(format!("wave 1: {FORGED} forged orders with a {FIELD_BYTES}-byte field"));
    let big = "x".repeat(FIELD_BYTES);
    for _ in 0..FORGED {
        let id = format!("forged-big-{}", random_hex(8));
        let order = serde_json::json!({
            "id": id, "user_id": format!("forger-{}", random_hex(8)), "side": big,
            "quantity": 1.0, "price": 3.33, "fake": false,
        });
        orders.push(traffic.post(&order, &Forgery::Unsigned.headers(&id).await?).await);
    }
    stage.timeline.note(format!("wave 1: {FORGED} forged signals of {FIELD_BYTES} bytes, {OVERSIZED} over the limit"));
    let bus = livecheck::transport::from_url(&stage.broker)?;
    for i in 0..FORGED + OVERSIZED {
        let size = if i < FORGED { FIELD_BYTES } else { 2 * MAX_MESSAGE_BYTES as usize };
        publish_forged_signal(bus.as_ref(), size).await?;
    }
    // The worker signals four stages of each forged order; the instance must have read all of them.
    let mut expected = received_before + (4 * FORGED + FORGED + OVERSIZED) as u64;
    let received = stage.wait_for_metric("signals_received", expected, Duration::from_secs(120)).await;
    if received.is_none_or(|r| r < expected) {
        problems.push(format!("after wave 1 the instance had read {received:?} signals, expected {expected}"));
    }
    let wave_1 = Memory::of(pid)?;
    stage.timeline.note(format!("after wave 1: RSS {}, peak {}", mib(wave_1.rss), mib(wave_1.peak)));

    stage.timeline.note(format!("wave 2: a burst of {BURST} forged signals of {FIELD_BYTES} bytes"));
    for _ in 0..BURST {
        publish_forged_signal(bus.as_ref(), FIELD_BYTES).await?;
    }
    drop(bus);
    expected += BURST as u64;
    let received = stage.wait_for_metric("signals_received", expected, Duration::from_secs(120)).await;
    if received.is_none_or(|r| r < expected) {
        problems.push(format!("after wave 2 the instance had read {received:?} signals, expected {expected}"));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after_attack = Memory::of(pid)?;
    let peak = PeakRss { before, after: after_attack, bound };
    stage.timeline.note(format!(
        "after wave 2: RSS {}, peak {} (bound {})",
        mib(after_attack.rss),
        mib(after_attack.peak),
        mib(bound)
    ));
    notes.push(format!(
        "instance peak RSS: {} before, {} after wave 1, {} after wave 2; bound {} = peak before + early_signal_bytes \
         {} + read-ahead {} + allowance {}",
        mib(before.peak),
        mib(wave_1.peak),
        mib(after_attack.peak),
        mib(bound),
        mib(EARLY_SIGNAL_BYTES),
        mib(READ_AHEAD_BYTES),
        mib(ALLOWANCE)
    ));
    if !peak.within_bound() {
        problems.push(format!(
            "the instance's peak RSS went from {} to {}, over the bound {}",
            mib(before.peak),
            mib(after_attack.peak),
            mib(bound)
        ));
    }
    let metric = |name| stage.instance_metric(name);
    let (held, evicted, too_large) =
        (metric("signals_held_bytes").await, metric("signals_evicted").await, metric("messages_too_large").await);
    notes.push(format!(
        "held signals {} (limit {}), {} evicted, {} too large dropped",
        held.map_or("?".into(), mib),
        mib(EARLY_SIGNAL_BYTES),
        evicted.unwrap_or(0),
        too_large.unwrap_or(0)
    ));
    if held.is_none_or(|held| held > EARLY_SIGNAL_BYTES) {
        problems.push(format!("the instance holds {held:?} bytes of signals, over its limit {EARLY_SIGNAL_BYTES}"));
    }
    if evicted.is_none_or(|n| n == 0) {
        problems.push("no held signal was evicted: the attack did not reach the limit".into());
    }
    if too_large.is_none_or(|n| n < OVERSIZED as u64) {
        problems.push(format!("{too_large:?} messages dropped as too large, expected at least {OVERSIZED}"));
    }

    stage.timeline.note(format!("after the attack: {after} genuine orders at {rate}/s"));
    orders.extend(traffic.place(after, rate).await);
    if !stage.drain(&orders, drain_timeout(context)).await? {
        problems.push("not every order answered 200 was executed and reported in time".into());
    }
    let (figures, examples) = stage.account(&orders).await?;
    if !figures.losses().is_empty() {
        problems.extend(examples);
    }
    Ok(ScenarioOutcome::ran(Scenario::BigFields, figures, Some(peak), problems, notes))
}

/// Writes onto the bus a signal for a test that does not exist, with forged context and a value of about `size`
/// bytes.
async fn publish_forged_signal(bus: &dyn livecheck::transport::Transport, size: usize) -> anyhow::Result<()> {
    let id = format!("forged-signal-{}", random_hex(8));
    let value = serde_json::value::to_raw_value(&serde_json::json!({ "pad": "x".repeat(size) }))?;
    let event = SignalEvent::new("order_sent_to_db", CASE, &*id, value);
    let headers = Forgery::Unsigned.headers(&id).await?.into_iter().collect();
    bus.publish(BUS_STREAM, Message { key: Some(id), value: serde_json::to_vec(&event)?, headers }).await?;
    Ok(())
}
