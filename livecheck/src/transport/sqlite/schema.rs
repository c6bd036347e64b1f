//! The embedded log's tables, the one-time migration of logs an earlier version made, and connections to it (WAL
//! mode, a busy timeout).

use std::{path::Path, time::Duration};

use rusqlite::{Connection, OptionalExtension};

use super::sql;
use crate::{backoff::Backoff, Result};

/// The tables, created when missing.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS streams (name TEXT PRIMARY KEY, partitions INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS heads (
    stream TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
    PRIMARY KEY (stream, partition)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
    stream TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
    key TEXT, value BLOB NOT NULL, headers BLOB NOT NULL, published_ms INTEGER NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS messages_position ON messages (stream, partition, offset);
CREATE TABLE IF NOT EXISTS offsets (
    grp TEXT NOT NULL, stream TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
    metadata TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (grp, stream, partition)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS group_members (
    grp TEXT NOT NULL, streams TEXT NOT NULL, member TEXT NOT NULL, heartbeat_ms INTEGER NOT NULL,
    PRIMARY KEY (grp, streams, member)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS partition_owners (
    grp TEXT NOT NULL, streams TEXT NOT NULL, partition INTEGER NOT NULL, member TEXT NOT NULL,
    PRIMARY KEY (grp, streams, partition)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (grp TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_ms INTEGER NOT NULL);
";

/// Messages of a log an earlier version created, in a WITHOUT ROWID table (whose rows of a kilobyte or more spill
/// into overflow pages: ~4.7 kB of file per kB of message), moved once into the table with a rowid (rows up to
/// about a page stay inline) and its index of positions. Runs in the schema transaction, so one process does it.
const MOVE_MESSAGES_TO_A_ROWID_TABLE: &str = "
ALTER TABLE messages RENAME TO messages_without_rowid;
CREATE TABLE messages (
    stream TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
    key TEXT, value BLOB NOT NULL, headers BLOB NOT NULL, published_ms INTEGER NOT NULL);
INSERT INTO messages (stream, partition, offset, key, value, headers, published_ms)
    SELECT stream, partition, offset, key, value, headers, published_ms FROM messages_without_rowid ORDER BY stream, partition, offset;
DROP TABLE messages_without_rowid;
";

/// Offsets committed by an earlier version of this log (without metadata) carried over once.
const CARRY_OVER_COMMITS: &str = "INSERT OR IGNORE INTO offsets (grp, stream, partition, next_offset)
    SELECT grp, stream, partition, next_offset FROM commits";

pub(super) fn connect(path: &Path) -> Result<Connection> {
    try_connect(path).map_err(sql)
}

fn try_connect(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(Duration::from_secs(10))?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(connection)
}

/// Connects and creates the schema. Processes that open a new log at the same moment can find it locked while
/// another switches it to WAL mode or creates the tables (SQLite does not always wait then): retried for a while.
pub(super) fn open_schema(path: &Path) -> Result<Connection> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    // Every 20 to 100 ms, at random: processes that collided once do not collide again in step.
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(100)).jitter(0.8);
    loop {
        let opened = try_connect(path).and_then(|connection| {
            connection.execute_batch("BEGIN IMMEDIATE")?;
            let messages: Option<String> = connection
                .query_row("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'messages'", [], |row| row.get(0))
                .optional()?;
            if messages.is_some_and(|sql| sql.to_ascii_uppercase().contains("WITHOUT ROWID")) {
                tracing::info!(path = %path.display(), "moving the embedded log's messages to a more compact table (once)");
                connection.execute_batch(MOVE_MESSAGES_TO_A_ROWID_TABLE)?;
            }
            connection.execute_batch(&format!("{SCHEMA} COMMIT;"))?;
            // Absent in logs this version created: nothing to carry over then.
            let _ = connection.execute(CARRY_OVER_COMMITS, []);
            Ok(connection)
        });
        match opened {
            Err(rusqlite::Error::SqliteFailure(error, _))
                if matches!(error.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(backoff.next());
            }
            other => return other.map_err(sql),
        }
    }
}
