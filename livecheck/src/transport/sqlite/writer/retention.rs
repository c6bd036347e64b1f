//! What the writer deletes: messages older than the retention age, and the oldest ones when the log is over its
//! size limit; members that were killed and what they held.

use std::time::Duration;

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::thread::WriterThread;
use crate::transport::sqlite::now_ms;

/// What the writer deletes, and how often it looks.
#[derive(Clone, Copy, Debug)]
pub(in crate::transport::sqlite) struct Retention {
    /// Messages older than this go.
    pub(in crate::transport::sqlite) age: Duration,
    /// Above this many bytes of data, the oldest messages of every partition go (a share each), down to 90 %.
    pub(in crate::transport::sqlite) max_bytes: Option<u64>,
    /// How often the writer applies it (every minute).
    pub(in crate::transport::sqlite) every: Duration,
}

impl WriterThread {
    /// Deletes, partition by partition, the messages published before the retention horizon (the oldest come
    /// first in offset order, so only those are visited).
    pub(super) fn apply_retention(&mut self) -> rusqlite::Result<()> {
        // Members gone for an hour without leaving (killed), and what they held, in groups nobody rebalances any
        // more (a table's private group, say).
        let gone = now_ms() - 3_600_000;
        self.connection.execute("DELETE FROM group_members WHERE heartbeat_ms < ?1", [gone])?;
        self.connection.execute(
            "DELETE FROM partition_owners WHERE NOT EXISTS (SELECT 1 FROM group_members m
                 WHERE m.grp = partition_owners.grp AND m.streams = partition_owners.streams
                 AND m.member = partition_owners.member)",
            [],
        )?;
        let horizon = now_ms() - self.retention.age.as_millis() as i64;
        let partitions: Vec<(String, u32)> = {
            let mut statement = self.connection.prepare("SELECT stream, partition FROM heads")?;
            let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for (stream, partition) in partitions {
            let tx = self.connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let keep_from: Option<i64> = tx
                .query_row(
                    "SELECT offset FROM messages WHERE stream = ?1 AND partition = ?2 AND published_ms >= ?3
                     ORDER BY offset LIMIT 1",
                    params![stream, partition, horizon],
                    |row| row.get(0),
                )
                .optional()?;
            let keep_from = keep_from.unwrap_or(i64::MAX);
            tx.execute(
                "DELETE FROM messages WHERE stream = ?1 AND partition = ?2 AND offset < ?3",
                params![stream, partition, keep_from],
            )?;
            tx.commit()?;
        }
        if let Some(max_bytes) = self.retention.max_bytes {
            self.limit_size(max_bytes)?;
        }
        Ok(())
    }

    /// When the log's data takes more than `max_bytes`, deletes the oldest messages of every partition — the same
    /// share of each — to bring it down to 90 % of that. Freed pages are reused by later writes (the file does not
    /// shrink). Unread messages go too, as with Kafka's size retention.
    fn limit_size(&mut self, max_bytes: u64) -> rusqlite::Result<()> {
        let pragma = |name: &str| self.connection.query_row(&format!("PRAGMA {name}"), [], |row| row.get::<_, i64>(0));
        let used =
            (pragma("page_count")? - pragma("freelist_count")?).max(0) as u64 * pragma("page_size")?.max(0) as u64;
        if used <= max_bytes {
            return Ok(());
        }
        let share = (used - max_bytes * 9 / 10) as f64 / used as f64;
        let heads: Vec<(String, u32, i64)> = {
            let mut statement = self.connection.prepare("SELECT stream, partition, next_offset FROM heads")?;
            let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut deleted = 0;
        for (stream, partition, next) in heads {
            let tx = self.connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let low: Option<i64> = tx
                .query_row(
                    "SELECT offset FROM messages WHERE stream = ?1 AND partition = ?2 ORDER BY offset LIMIT 1",
                    params![stream, partition],
                    |row| row.get(0),
                )
                .optional()?;
            if let Some(low) = low {
                let drop = ((next - low).max(0) as f64 * share).ceil() as i64;
                deleted += tx.execute(
                    "DELETE FROM messages WHERE stream = ?1 AND partition = ?2 AND offset < ?3",
                    params![stream, partition, low + drop],
                )?;
            }
            tx.commit()?;
        }
        tracing::warn!(
            used,
            max_bytes,
            deleted,
            "the embedded log is over its size limit: deleted its oldest messages"
        );
        Ok(())
    }
}
