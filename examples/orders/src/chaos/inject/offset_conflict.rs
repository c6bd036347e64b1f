//! A row at an offset already used: while orders come in, another program appends a row to every partition of the
//! pending-tests stream, the bus and the worker's `orders` stream without moving the partition's head (a hand-made
//! `INSERT` that forgets the `heads` table), twice. The next append to each of those partitions finds its offset
//! taken. It used to fail — and every later one with it, `UNIQUE constraint failed`, until someone fixed the table
//! by hand; now the writer (the worker's, or the instance's) must take the next free offset, move the head and say
//! so once. Every order must still be answered 200, executed and reported PASS, with nothing lost.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{
    ledger::{BUS_STREAM, ORDERS_STREAM},
    logs::ProcessLog,
    outcome::ScenarioOutcome,
    stage::{drain_timeout, Stage},
    Context, Scenario,
};
use crate::chaos::PENDING_STREAM;

/// What the log's writer logs when it heals an append.
const HEALED: &str = "an append found its offset already used by a row written behind the writer's back; appended at \
                      the next free offset and moved the partition's head there";

/// A row written at a partition's head, the head left where it was.
#[derive(Clone, Debug)]
struct Foreign {
    stream: &'static str,
    partition: u32,
    offset: i64,
}

pub(super) async fn run(context: &Context) -> anyhow::Result<ScenarioOutcome> {
    let (count, rate) = context.pick((100, 15.0), (600, 20.0));
    let stage = Stage::start(context, &context.dir, |_| {}).await?;
    let traffic = stage.traffic();
    let window = Duration::from_secs_f64(count as f64 / rate);
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    stage.timeline.note(format!(
        "placing {count} orders at {rate}/s; at 30 % and 65 %, a row at the head of every partition of {PENDING_STREAM}, \
         {BUS_STREAM} and {ORDERS_STREAM}, the heads left as they were"
    ));
    let load_started = Instant::now();
    let insert = async {
        let mut written = Vec::new();
        for (batch, at) in [0.3, 0.65].into_iter().enumerate() {
            tokio::time::sleep_until((load_started + window.mul_f64(at)).into()).await;
            for stream in [PENDING_STREAM, BUS_STREAM, ORDERS_STREAM] {
                written.extend(write_at_heads(&stage.log_file, stream, batch).await?);
            }
            stage.timeline.note(format!("{} rows written at partitions' heads so far", written.len()));
        }
        anyhow::Ok(written)
    };
    let (orders, written) = tokio::join!(traffic.place(count, rate), insert);
    let written = written?;
    if !stage.drain(&orders, drain_timeout(context)).await? {
        problems.push("not every order answered 200 was executed and reported in time".into());
    }
    let (figures, examples) = stage.account(&orders).await?;
    if !figures.losses().is_empty() {
        problems.extend(examples);
    }
    let unique_failures =
        orders.iter().filter(|o| o.refused.as_deref().is_some_and(|r| r.contains("UNIQUE constraint"))).count();
    if unique_failures > 0 {
        problems.push(format!("{unique_failures} orders were refused on `UNIQUE constraint failed`"));
    }
    if figures.refused > 0 {
        problems.push(format!("{} orders were refused", figures.refused));
    }

    // Each row written at a head that LiveCheck appended past was healed, once, by the writer that met it.
    let logs = [("worker", "worker"), ("instance", "livecheck-1")]
        .map(|(who, name)| (who, ProcessLog::read(&stage.cluster.log_of(name))));
    let healings: Vec<(&str, serde_json::Value)> = logs
        .iter()
        .flat_map(|(who, log)| log.fields_of(HEALED).into_iter().map(move |fields| (*who, fields.clone())))
        .collect();
    let appended_past = appended_past(&stage.log_file, &written).await?;
    let mut healed_once = 0;
    for row in &appended_past {
        let at_row = |fields: &serde_json::Value| {
            fields["stream"] == row.stream
                && fields["partition"].as_u64() == Some(u64::from(row.partition))
                && fields["taken"].as_i64() == Some(row.offset)
        };
        match healings.iter().filter(|(_, fields)| at_row(fields)).count() {
            1 => healed_once += 1,
            n => problems.push(format!(
                "the append past {} partition {} offset {} was logged as healed {n} times, not once",
                row.stream, row.partition, row.offset
            )),
        }
    }
    let by = |who: &str| healings.iter().filter(|(w, _)| *w == who).count();
    notes.push(format!(
        "{} rows written at partitions' heads behind the writers' backs; {} of those partitions appended to \
         afterwards; appends healed: {} (worker {}, instance {}), {healed_once} logged once each at their place; \
         orders refused on UNIQUE: {unique_failures}",
        written.len(),
        appended_past.len(),
        healings.len(),
        by("worker"),
        by("instance"),
    ));
    if appended_past.is_empty() {
        problems.push("no partition was appended to after a row was written at its head: nothing was checked".into());
    }
    Ok(ScenarioOutcome::ran(Scenario::OffsetConflict, figures, None, problems, notes))
}

/// Writes a row at the head of every partition of `stream`, as another program could — JSON that is none of
/// LiveCheck's or the tutorial's messages — without moving the heads.
async fn write_at_heads(path: &Path, stream: &'static str, batch: usize) -> anyhow::Result<Vec<Foreign>> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut connection = Connection::open(&path).with_context(|| format!("opening {}", path.display()))?;
        connection.busy_timeout(Duration::from_secs(10))?;
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let partitions: u32 = tx
            .query_row("SELECT partitions FROM streams WHERE name = ?1", [stream], |r| r.get(0))
            .with_context(|| format!("stream {stream} in {}", path.display()))?;
        let mut written = Vec::new();
        for partition in 0..partitions {
            let head: i64 = tx
                .query_row(
                    "SELECT next_offset FROM heads WHERE stream = ?1 AND partition = ?2",
                    params![stream, partition],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or(0);
            // Still taken by the first batch's row (nothing appended since): that partition is skipped this time.
            let inserted = tx.execute(
                "INSERT INTO messages (stream, partition, offset, key, value, headers, published_ms)
                 VALUES (?1, ?2, ?3, ?4, CAST(?5 AS BLOB), x'', CAST(strftime('%s', 'now') AS INTEGER) * 1000)",
                params![
                    stream,
                    partition,
                    head,
                    format!("offset-conflict-{batch}-{partition}"),
                    r#"{"written_by": "another program"}"#
                ],
            );
            match inserted {
                Ok(_) => written.push(Foreign { stream, partition, offset: head }),
                Err(rusqlite::Error::SqliteFailure(failure, _))
                    if failure.code == rusqlite::ErrorCode::ConstraintViolation => {}
                Err(error) => return Err(error).context("writing a row at a partition's head"),
            }
        }
        tx.commit()?;
        Ok(written)
    })
    .await
    .context("the insert's task")?
}

/// Those of `rows` whose partition has a message after them: the writer had to get past them.
async fn appended_past(path: &Path, rows: &[Foreign]) -> anyhow::Result<Vec<Foreign>> {
    let (path, rows) = (path.to_owned(), rows.to_vec());
    tokio::task::spawn_blocking(move || {
        let connection = Connection::open(&path).with_context(|| format!("opening {}", path.display()))?;
        connection.busy_timeout(Duration::from_secs(10))?;
        let mut past = Vec::new();
        for row in rows {
            let later: bool = connection.query_row(
                "SELECT EXISTS (SELECT 1 FROM messages WHERE stream = ?1 AND partition = ?2 AND offset > ?3)",
                params![row.stream, row.partition, row.offset],
                |r| r.get(0),
            )?;
            if later {
                past.push(row);
            }
        }
        Ok(past)
    })
    .await
    .context("the log's reading task")?
}
