//! Appending a batch in one transaction.
//!
//! A partition's next offset is kept in the `heads` table. Another program that appended a row without moving the
//! head (a hand-made `INSERT`, a producer in another language) leaves the head pointing at an offset already used:
//! the writer then takes the next offset from the messages actually there (`MAX(offset) + 1`), moves the head
//! there and appends, saying so once (a WARN, counted in [`SqliteTransport::offset_conflicts_healed`]) — instead
//! of failing every later append to that partition.
//!
//! [`SqliteTransport::offset_conflicts_healed`]: crate::transport::SqliteTransport::offset_conflicts_healed

use std::{collections::HashMap, sync::atomic::Ordering};

use rusqlite::{params, OptionalExtension, Transaction, TransactionBehavior};

use super::thread::WriterThread;
use crate::transport::{
    partition_for_key,
    sqlite::{headers::encode_headers, now_ms},
    Delivery, Message,
};

/// An append that found its offset already used, and the offset it took instead.
#[derive(Debug, PartialEq, Eq)]
struct Healed {
    stream: String,
    partition: u32,
    /// The offset the head pointed at, already used by a row another program wrote.
    taken: i64,
    /// Where the message went: one past the partition's highest offset.
    offset: i64,
}

impl WriterThread {
    /// Appends every message in one transaction. A message whose offset is already used (a row written behind the
    /// writer's back) goes one past the partition's highest offset instead; once the transaction is committed, each
    /// such healing is logged and counted.
    pub(super) fn append(&mut self, work: Vec<(String, Message)>) -> rusqlite::Result<Vec<Delivery>> {
        let tx = self.connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Checked once the write lock is ours (it may have been waited for until after the drop deadline).
        if self.given_up_at.is_past() {
            let abort = rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT);
            return Err(rusqlite::Error::SqliteFailure(abort, Some("left behind by its dropped transport".into())));
        }
        let mut heads: HashMap<(String, u32), i64> = HashMap::new();
        let mut deliveries = Vec::with_capacity(work.len());
        let mut healed = Vec::new();
        let published_ms = now_ms();
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO messages (stream, partition, offset, key, value, headers, published_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for (stream, message) in work {
                let partitions = stream_partitions(&tx, &mut self.partitions, &stream, self.default_partitions)?;
                let partition = match &message.key {
                    Some(key) => partition_for_key(key.as_bytes(), partitions),
                    None => fastrand::u32(..partitions),
                };
                let head = match heads.get_mut(&(stream.clone(), partition)) {
                    Some(head) => head,
                    None => {
                        let next: Option<i64> = tx
                            .query_row(
                                "SELECT next_offset FROM heads WHERE stream = ?1 AND partition = ?2",
                                params![stream, partition],
                                |row| row.get(0),
                            )
                            .optional()?;
                        heads.entry((stream.clone(), partition)).or_insert(next.unwrap_or(0))
                    }
                };
                let headers = encode_headers(&message.headers);
                let mut insert_at = |offset: i64| {
                    insert.execute(params![
                        stream,
                        partition,
                        offset,
                        message.key,
                        message.value,
                        headers,
                        published_ms
                    ])
                };
                let offset = match insert_at(*head) {
                    Ok(_) => *head,
                    // Only this statement failed; the transaction goes on.
                    Err(error) if is_offset_taken(&error) => {
                        let offset = next_free_offset(&tx, &stream, partition)?.max(*head + 1);
                        insert_at(offset)?;
                        healed.push(Healed { stream: stream.clone(), partition, taken: *head, offset });
                        offset
                    }
                    Err(error) => return Err(error),
                };
                *head = offset + 1;
                deliveries.push(Delivery { partition, offset: offset as u64 });
            }
            let mut advance = tx.prepare_cached(
                "INSERT INTO heads (stream, partition, next_offset) VALUES (?1, ?2, ?3)
                 ON CONFLICT (stream, partition) DO UPDATE SET next_offset = excluded.next_offset",
            )?;
            for ((stream, partition), next) in &heads {
                advance.execute(params![stream, partition, next])?;
            }
        }
        tx.commit()?;
        for Healed { stream, partition, taken, offset } in healed {
            self.healed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                %stream,
                partition,
                taken,
                offset,
                "an append found its offset already used by a row written behind the writer's back; appended at \
                 the next free offset and moved the partition's head there"
            );
        }
        Ok(deliveries)
    }
}

/// Whether an insert into `messages` failed because its position (stream, partition, offset) is already used:
/// the only unique constraint of the table.
fn is_offset_taken(error: &rusqlite::Error) -> bool {
    matches!(error, rusqlite::Error::SqliteFailure(failure, _)
        if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

/// One past the highest offset stored in the partition (0 when it holds none).
fn next_free_offset(tx: &Transaction<'_>, stream: &str, partition: u32) -> rusqlite::Result<i64> {
    let highest: Option<i64> = tx.query_row(
        "SELECT MAX(offset) FROM messages WHERE stream = ?1 AND partition = ?2",
        params![stream, partition],
        |row| row.get(0),
    )?;
    Ok(highest.map_or(0, |highest| highest + 1))
}

/// The partition count of `stream`, creating it with `default` partitions if it does not exist.
fn stream_partitions(
    tx: &Transaction<'_>,
    known: &mut HashMap<String, u32>,
    stream: &str,
    default: u32,
) -> rusqlite::Result<u32> {
    if let Some(n) = known.get(stream) {
        return Ok(*n);
    }
    tx.execute("INSERT OR IGNORE INTO streams (name, partitions) VALUES (?1, ?2)", params![stream, default])?;
    let n: u32 = tx.query_row("SELECT partitions FROM streams WHERE name = ?1", [stream], |row| row.get(0))?;
    known.insert(stream.to_owned(), n);
    Ok(n)
}
