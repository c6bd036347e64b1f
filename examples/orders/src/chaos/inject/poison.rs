//! Rows another program could write into the embedded log's `messages` table — a producer in another language, a
//! hand-made `INSERT` — appended at the head of a partition exactly as the log's writer appends (in one
//! transaction with the partition's head), while the processes run.

use std::{path::Path, time::Duration};

use anyhow::Context;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

/// One kind of row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PoisonRow {
    /// The key a BLOB that is not UTF-8: cannot be a message (skipped, counted `key_not_utf8`).
    KeyBlobNotUtf8,
    /// The key TEXT holding bytes that are not UTF-8: likewise.
    KeyTextNotUtf8,
    /// The value stored as TEXT, and not JSON: read as is, then dropped as malformed.
    ValueTextNotJson,
    /// The key an INTEGER, the value TEXT that is not JSON: read (the key as its digits), dropped as malformed.
    KeyIntegerValueText,
    /// The headers a TEXT that is not the log's encoding, the value not JSON: read without headers, malformed.
    HeadersGarbage,
    /// The value NULL: the table's `NOT NULL` refuses it, so it cannot occur.
    ValueNull,
}

impl PoisonRow {
    pub(super) const ALL: [PoisonRow; 6] = [
        PoisonRow::KeyBlobNotUtf8,
        PoisonRow::KeyTextNotUtf8,
        PoisonRow::ValueTextNotJson,
        PoisonRow::KeyIntegerValueText,
        PoisonRow::HeadersGarbage,
        PoisonRow::ValueNull,
    ];

    /// Whether it is a poison message (skipped by the readers), rather than a message that does not decode.
    pub(super) fn is_poison(self) -> bool {
        matches!(self, PoisonRow::KeyBlobNotUtf8 | PoisonRow::KeyTextNotUtf8 | PoisonRow::ValueNull)
    }

    /// The SQL expressions of its key, value and headers.
    fn columns(self) -> (&'static str, &'static str, &'static str) {
        match self {
            PoisonRow::KeyBlobNotUtf8 => ("x'ff00fe'", "CAST('{\"poison\": 1}' AS BLOB)", "x''"),
            PoisonRow::KeyTextNotUtf8 => ("CAST(x'c328' AS TEXT)", "CAST('{\"poison\": 2}' AS BLOB)", "x''"),
            PoisonRow::ValueTextNotJson => ("'poison-3'", "'this is not JSON'", "x''"),
            PoisonRow::KeyIntegerValueText => ("42", "'{not JSON either'", "x''"),
            PoisonRow::HeadersGarbage => ("'poison-5'", "'{\"truncated\":'", "'garbage headers'"),
            PoisonRow::ValueNull => ("'poison-6'", "NULL", "x''"),
        }
    }
}

/// Where a row went.
#[derive(Clone, Debug)]
pub(super) struct Inserted {
    pub(super) row: PoisonRow,
    pub(super) stream: String,
    pub(super) partition: u32,
    pub(super) offset: i64,
}

/// Appends `row` to `partition` (modulo the stream's partitions) of `stream` in the log at `path`; `Ok(Err(..))`
/// when the database refuses the row (a constraint), with the reason.
pub(super) async fn insert(
    path: &Path,
    stream: &str,
    partition: u32,
    row: PoisonRow,
) -> anyhow::Result<Result<Inserted, String>> {
    let (path, stream) = (path.to_owned(), stream.to_owned());
    tokio::task::spawn_blocking(move || insert_now(&path, &stream, partition, row))
        .await
        .context("the insert's task")?
}

fn insert_now(path: &Path, stream: &str, partition: u32, row: PoisonRow) -> anyhow::Result<Result<Inserted, String>> {
    let mut connection = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
    connection.busy_timeout(Duration::from_secs(10))?;
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let partitions: u32 = tx
        .query_row("SELECT partitions FROM streams WHERE name = ?1", [stream], |r| r.get(0))
        .with_context(|| format!("stream {stream} in {}", path.display()))?;
    let partition = partition % partitions.max(1);
    let offset: i64 = tx
        .query_row(
            "SELECT next_offset FROM heads WHERE stream = ?1 AND partition = ?2",
            params![stream, partition],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let (key, value, headers) = row.columns();
    let inserted = tx.execute(
        &format!(
            "INSERT INTO messages (stream, partition, offset, key, value, headers, published_ms)
             VALUES (?1, ?2, ?3, {key}, {value}, {headers}, CAST(strftime('%s', 'now') AS INTEGER) * 1000)"
        ),
        params![stream, partition, offset],
    );
    if let Err(error) = inserted {
        return Ok(Err(error.to_string()));
    }
    tx.execute(
        "INSERT INTO heads (stream, partition, next_offset) VALUES (?1, ?2, ?3)
         ON CONFLICT (stream, partition) DO UPDATE SET next_offset = excluded.next_offset",
        params![stream, partition, offset + 1],
    )?;
    tx.commit()?;
    Ok(Ok(Inserted { row, stream: stream.to_owned(), partition, offset }))
}
