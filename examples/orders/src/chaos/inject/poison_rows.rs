//! Poison rows: while orders come in, rows another program could write — a key that is not UTF-8 (as BLOB or as
//! TEXT), a value stored as TEXT that is not JSON, an integer key, headers that do not decode, a NULL value — are
//! inserted twice into partitions of the pending-tests stream, the bus and the worker's `orders` stream. Each must
//! be skipped and counted (a poison row: logged with its stream, partition and offset; a row that reads but does
//! not decode: counted as malformed), and every genuine execution must still be reported PASS — the partitions,
//! and those read after them, go on.

use std::time::{Duration, Instant};

use super::{
    ledger::{BUS_STREAM, ORDERS_STREAM},
    logs::ProcessLog,
    outcome::ScenarioOutcome,
    poison::{self, Inserted, PoisonRow},
    stage::{drain_timeout, Stage},
    Context, Scenario,
};
use crate::chaos::PENDING_STREAM;

/// The message the embedded log's readers log for a skipped row.
const SKIPPED: &str = "a stored row is not a message (poison message); skipped it";

pub(super) async fn run(context: &Context) -> anyhow::Result<ScenarioOutcome> {
    let (count, rate) = context.pick((100, 15.0), (600, 20.0));
    let stage = Stage::start(context, &context.dir, |_| {}).await?;
    let traffic = stage.traffic();
    let window = Duration::from_secs_f64(count as f64 / rate);
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    stage.timeline.note(format!("placing {count} orders at {rate}/s; inserting poison rows at 30 % and 65 %"));
    let load_started = Instant::now();
    let insert = async {
        let (mut inserted, mut refused) = (Vec::new(), Vec::new());
        for (batch, at) in [0.3, 0.65].into_iter().enumerate() {
            tokio::time::sleep_until((load_started + window.mul_f64(at)).into()).await;
            for stream in [PENDING_STREAM, BUS_STREAM, ORDERS_STREAM] {
                for (i, row) in PoisonRow::ALL.into_iter().enumerate() {
                    let partition = (batch * PoisonRow::ALL.len() + i) as u32;
                    match poison::insert(&stage.log_file, stream, partition, row).await? {
                        Ok(row) => inserted.push(row),
                        Err(reason) => refused.push(format!("{row:?} into {stream}: {reason}")),
                    }
                }
            }
            stage.timeline.note(format!("inserted {} poison rows so far", inserted.len()));
        }
        anyhow::Ok((inserted, refused))
    };
    let (orders, inserted) = tokio::join!(traffic.place(count, rate), insert);
    let (inserted, refused) = inserted?;
    if !stage.drain(&orders, drain_timeout(context)).await? {
        problems.push("not every order answered 200 was executed and reported in time".into());
    }
    let (figures, examples) = stage.account(&orders).await?;
    if !figures.losses().is_empty() {
        problems.extend(examples);
    }
    notes.push(format!("{} rows inserted; refused by the database: {}", inserted.len(), refused.join("; ")));

    // Every poison row read by a process was logged as skipped, with its place: the instance reads the
    // pending-tests stream and the bus, the worker the orders.
    let instance_log = ProcessLog::read(&stage.cluster.log_of("livecheck-1"));
    let worker_log = ProcessLog::read(&stage.cluster.log_of("worker"));
    let mut skipped = 0;
    for row in inserted.iter().filter(|row| row.row.is_poison()) {
        let log = if row.stream == ORDERS_STREAM { &worker_log } else { &instance_log };
        match log.fields_of(SKIPPED).into_iter().filter(|fields| is_at(fields, row)).count() {
            1 => skipped += 1,
            n => problems.push(format!(
                "{:?} at {} partition {} offset {} was logged as skipped {n} times, not once",
                row.row, row.stream, row.partition, row.offset
            )),
        }
    }
    notes.push(format!("{skipped} poison rows skipped, each logged once with stream, partition and offset"));

    // Rows that read but do not decode are dropped and counted by the instance.
    let malformed =
        |stream: &str| inserted.iter().filter(|row| row.stream == stream && !row.row.is_poison()).count() as u64;
    for (stream, metric) in [(PENDING_STREAM, "tests_malformed"), (BUS_STREAM, "signals_malformed")] {
        let counted = stage.instance_metric(metric).await;
        notes.push(format!(
            "{stream}: {} rows that do not decode, the instance counted {counted:?} in {metric}",
            malformed(stream)
        ));
        if counted != Some(malformed(stream)) {
            problems.push(format!("{metric} is {counted:?}, expected {}", malformed(stream)));
        }
    }
    Ok(ScenarioOutcome::ran(Scenario::PoisonRows, figures, None, problems, notes))
}

/// Whether a skipped-row log line's fields name `row`'s place.
fn is_at(fields: &serde_json::Value, row: &Inserted) -> bool {
    fields["stream"] == row.stream.as_str()
        && fields["partition"].as_u64() == Some(u64::from(row.partition))
        && fields["offset"].as_u64() == Some(row.offset as u64)
}
