//! The embedded transport: a log in an SQLite database (WAL mode) that several processes on one machine share.
//!
//! Each stream partition is a sequence of rows numbered by offset; consumer groups keep their committed offsets
//! (with metadata) in the database, so a process that restarts continues where its group left off. No SQL runs
//! on the async runtime: one writer thread appends with group commit (publishes that arrive together share a
//! transaction), each group member has a thread that heartbeats, hands partitions over and reads, and the other
//! queries run on a small pool of connections off the async threads. Members notice new rows by polling SQLite's
//! `data_version` every 2 ms, which is cheap and keeps the latency between processes in the low milliseconds.

mod identity;
mod leader;
mod member;
mod stored;
mod writer;

pub use stored::PoisonCause;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use rusqlite::{params, Connection, OptionalExtension};

use super::{
    check_co_partitioned, drop_deadline::DropDeadline, BoxFuture, Delivery, Leadership, Message, Received,
    Subscription, Transport,
};
use crate::{context::Headers, sync::lock, Error, Result};

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

/// Streams in an SQLite database file shared by the processes of one machine.
#[derive(Clone)]
pub struct SqliteTransport {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    default_partitions: u32,
    retention: writer::Retention,
    member_timeout: Duration,
    lease: Duration,
    /// Started on first publish, with the options then set.
    writer: OnceLock<writer::Writer>,
    /// The most bytes of messages waiting for the writer.
    max_queued_bytes: usize,
    /// The most bytes of messages a group member reads ahead of the app.
    read_ahead_bytes: usize,
    /// Connections for queries, used off the async threads.
    readers: Mutex<Vec<Connection>>,
    partitions: Mutex<HashMap<String, u32>>,
    /// Rows skipped because they cannot be messages.
    poison: stored::PoisonCounts,
    /// The file opened: every writer transaction and member heartbeat checks it is still there.
    identity: identity::FileIdentity,
    /// Appends that found their offset used by a row written behind the writer's back, and went past it.
    offset_conflicts_healed: Arc<std::sync::atomic::AtomicU64>,
    /// How long dropping the writer, a member or a leadership waits for its thread or its last statement.
    drop_deadline: DropDeadline,
}

fn sql(error: rusqlite::Error) -> Error {
    Error::transport("the embedded log (sqlite)", is_retriable(&error), error)
}

/// Whether an SQLite error may go away by itself: the database busy or locked by another process, a full disk, an
/// I/O error.
fn is_retriable(error: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked, DiskFull, SystemIoFailure};
    matches!(error.sqlite_error_code(), Some(DatabaseBusy | DatabaseLocked | DiskFull | SystemIoFailure))
}

fn task_failed(what: &str, error: tokio::task::JoinError) -> Error {
    Error::transport(what, false, error)
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn connect(path: &Path) -> Result<Connection> {
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
fn open_schema(path: &Path) -> Result<Connection> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
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
                std::thread::sleep(Duration::from_millis(20 + fastrand::u64(..80)));
            }
            other => return other.map_err(sql),
        }
    }
}

impl SqliteTransport {
    /// Opens the log at `path`, creating it on first use (the file 0600, its directory 0700 when missing). A log
    /// that was created there before and is gone now is an error: see [`SqliteTransport::recreate`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path.as_ref(), false)
    }

    /// Opens the log at `path` like [`SqliteTransport::open`], but starts a new, empty log when it was deleted
    /// (`?recreate=1` on a `sqlite://` URL).
    pub fn recreate(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path.as_ref(), true)
    }

    fn open_with(path: &Path, recreate: bool) -> Result<Self> {
        let path = path.to_path_buf();
        identity::create_or_check(&path, recreate)?;
        let connection = open_schema(&path)?;
        let identity = identity::FileIdentity::of(&path)?;
        Ok(SqliteTransport {
            inner: Arc::new(Inner {
                path,
                default_partitions: 8,
                retention: writer::Retention {
                    age: Duration::from_secs(7 * 24 * 3600),
                    max_bytes: None,
                    every: Duration::from_secs(60),
                },
                member_timeout: Duration::from_secs(5),
                lease: Duration::from_secs(5),
                writer: OnceLock::new(),
                max_queued_bytes: writer::MAX_QUEUED_BYTES,
                read_ahead_bytes: super::threaded::READ_AHEAD_BYTES,
                readers: Mutex::new(vec![connection]),
                partitions: Mutex::default(),
                poison: stored::PoisonCounts::default(),
                identity,
                offset_conflicts_healed: Arc::default(),
                drop_deadline: DropDeadline::default(),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Stored rows that could not be read as messages (written by another program: a key that is not UTF-8, no
    /// value), skipped by cause. Each is also logged with its stream, partition and offset.
    pub fn poison_messages(&self) -> std::collections::BTreeMap<PoisonCause, u64> {
        self.inner.poison.snapshot()
    }

    /// Appends by this process that found their offset already used — by a row another program wrote without
    /// moving the partition's head — and went one past the partition's highest offset instead (each also logged,
    /// a WARN with the stream, partition and offsets). Without this, every later append to that partition failed.
    pub fn offset_conflicts_healed(&self) -> u64 {
        self.inner.offset_conflicts_healed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Partitions of streams created on first use (default 8). Call before sharing the transport.
    #[must_use]
    pub fn with_partitions(self, partitions: u32) -> Self {
        self.rebuild(|inner| inner.default_partitions = partitions.max(1))
    }

    /// How long messages are kept (default 7 days).
    #[must_use]
    pub fn with_retention(self, retention: Duration) -> Self {
        self.rebuild(|inner| inner.retention.age = retention)
    }

    /// The most bytes the log's data may take in the file — its used pages, what the disk holds — (default: no
    /// limit). Checked every minute with the age retention:
    /// above it, the oldest messages of every partition are deleted, the same share of each, down to 90 % of it —
    /// read or not, as with Kafka's size retention.
    #[must_use]
    pub fn with_max_bytes(self, max_bytes: u64) -> Self {
        self.rebuild(|inner| inner.retention.max_bytes = Some(max_bytes))
    }

    /// How long a leader's lease and a group member's heartbeat last (default 5 s); a process that stops is
    /// replaced after this long.
    #[must_use]
    pub fn with_liveness(self, timeout: Duration) -> Self {
        self.rebuild(|inner| {
            inner.lease = timeout;
            inner.member_timeout = timeout;
        })
    }

    fn rebuild(self, change: impl FnOnce(&mut Inner)) -> Self {
        match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                change(&mut inner);
                SqliteTransport { inner: Arc::new(inner) }
            }
            Err(shared) => {
                tracing::warn!("SqliteTransport options must be set before the transport is shared; ignored");
                SqliteTransport { inner: shared }
            }
        }
    }

    fn writer(&self) -> Result<&writer::Writer> {
        if let Some(writer) = self.inner.writer.get() {
            return Ok(writer);
        }
        let inner = &self.inner;
        let started = writer::Writer::start(
            &inner.path,
            inner.default_partitions,
            inner.retention,
            inner.identity.clone(),
            inner.max_queued_bytes,
            inner.offset_conflicts_healed.clone(),
            inner.drop_deadline.clone(),
        )?;
        // Another task may have started one meanwhile; the spare one stops at once.
        Ok(self.inner.writer.get_or_init(|| started))
    }

    /// Runs `query` on a pooled connection, off the async threads.
    async fn query<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = lock(&inner.readers).pop();
            let connection = match pooled {
                Some(connection) => connection,
                None => connect(&inner.path)?,
            };
            let result = query(&connection).map_err(sql);
            let mut readers = lock(&inner.readers);
            if readers.len() < 4 {
                readers.push(connection);
            }
            result
        })
        .await
        .map_err(|e| task_failed("a query of the embedded log", e))?
    }

    /// The stream's partition count, creating the stream with `partitions` if it does not exist.
    async fn ensure_stream(&self, stream: &str, partitions: u32) -> Result<u32> {
        if let Some(n) = lock(&self.inner.partitions).get(stream) {
            return Ok(*n);
        }
        let name = stream.to_owned();
        let n = self
            .query(move |connection| {
                connection.execute(
                    "INSERT OR IGNORE INTO streams (name, partitions) VALUES (?1, ?2)",
                    params![name, partitions],
                )?;
                connection.query_row("SELECT partitions FROM streams WHERE name = ?1", [name], |row| row.get(0))
            })
            .await?;
        lock(&self.inner.partitions).insert(stream.to_owned(), n);
        Ok(n)
    }
}

impl Transport for SqliteTransport {
    fn describe(&self) -> String {
        format!("sqlite://{}", self.inner.path.display())
    }

    fn set_drop_deadline(&self, deadline: std::time::Instant) {
        self.inner.drop_deadline.set(deadline);
    }

    fn create_stream<'a>(&'a self, stream: &'a str, partitions: u32) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { self.ensure_stream(stream, partitions.max(1)).await.map(|_| ()) })
    }

    fn publish<'a>(&'a self, stream: &'a str, message: Message) -> BoxFuture<'a, Result<Delivery>> {
        Box::pin(async move { self.writer()?.publish(stream, message).await })
    }

    fn subscribe<'a>(&'a self, streams: &'a [&'a str], group: &'a str) -> BoxFuture<'a, Result<Box<dyn Subscription>>> {
        Box::pin(async move {
            let mut counts = Vec::new();
            for stream in streams {
                counts.push((*stream, self.ensure_stream(stream, self.inner.default_partitions).await?));
            }
            let partitions = check_co_partitioned(&counts)?;
            let (path, group, timeout) = (self.inner.path.clone(), group.to_owned(), self.inner.member_timeout);
            let streams: Vec<Arc<str>> = streams.iter().map(|s| Arc::<str>::from(*s)).collect();
            let (poison, identity) = (self.inner.poison.clone(), self.inner.identity.clone());
            let read_ahead_bytes = self.inner.read_ahead_bytes;
            let join = move || {
                let connection = connect(&path)?;
                let member_timeout = timeout;
                member::join(member::MemberConfig {
                    connection,
                    group,
                    streams,
                    partitions,
                    member_timeout,
                    poison,
                    identity,
                    read_ahead_bytes,
                })
            };
            let subscription =
                tokio::task::spawn_blocking(join).await.map_err(|e| task_failed("joining the group", e))??;
            Ok(Box::new(subscription.with_drop_deadline(self.inner.drop_deadline.clone())) as Box<dyn Subscription>)
        })
    }

    fn end_offsets<'a>(&'a self, stream: &'a str) -> BoxFuture<'a, Result<Vec<u64>>> {
        Box::pin(async move {
            let partitions = self.ensure_stream(stream, self.inner.default_partitions).await?;
            let name = stream.to_owned();
            self.query(move |connection| {
                let mut ends = vec![0; partitions as usize];
                let mut statement =
                    connection.prepare_cached("SELECT partition, next_offset FROM heads WHERE stream = ?1")?;
                let rows = statement.query_map([name], |row| Ok((row.get::<_, u32>(0)?, row.get::<_, i64>(1)?)))?;
                for row in rows {
                    let (partition, next) = row?;
                    if let Some(end) = ends.get_mut(partition as usize) {
                        *end = next as u64;
                    }
                }
                Ok(ends)
            })
            .await
        })
    }

    fn read<'a>(
        &'a self,
        stream: &'a str,
        partition: u32,
        from: u64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Received>>> {
        let name: Arc<str> = stream.into();
        Box::pin(self.query(move |connection| {
            let mut statement = connection.prepare_cached(stored::SELECT_MESSAGES)?;
            let rows = statement.query_map(params![&*name, partition, from as i64, limit as i64], stored::message)?;
            let mut read = Vec::new();
            for row in rows {
                // A poison message is left out here; the group members that consume the stream count it.
                if let (offset, Ok(message)) = row? {
                    read.push(Received { stream: name.clone(), partition, offset, message: Arc::new(message) });
                }
            }
            Ok(read)
        }))
    }

    fn elect_leader<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<Box<dyn Leadership>>> {
        Box::pin(async move {
            let (path, group, lease) = (self.inner.path.clone(), group.to_owned(), self.inner.lease);
            let drop_deadline = self.inner.drop_deadline.clone();
            tokio::task::spawn_blocking(move || Ok(leader::candidacy(connect(&path)?, &group, lease, drop_deadline)))
                .await
                .map_err(|e| task_failed("joining the election", e))?
        })
    }
}

/// Headers as stored: for each, the name's length (u16), the name, the value's length (u32), the value.
fn encode_headers(headers: &Headers) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in headers.iter() {
        let name = &name.as_bytes()[..name.len().min(u16::MAX as usize)];
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value);
    }
    out
}

fn decode_headers(mut bytes: &[u8]) -> Option<Headers> {
    let mut headers = Headers::new();
    while !bytes.is_empty() {
        let name_len = u16::from_le_bytes(bytes.get(..2)?.try_into().ok()?) as usize;
        let name = std::str::from_utf8(bytes.get(2..2 + name_len)?).ok()?.to_owned();
        bytes = &bytes[2 + name_len..];
        let value_len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
        let value = bytes.get(4..4 + value_len)?.to_vec();
        bytes = &bytes[4 + value_len..];
        headers.push(name, value);
    }
    Some(headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Event;

    /// A database file removed at the end of the test.
    struct TempDb(PathBuf);

    impl TempDb {
        fn new() -> Self {
            let name = format!("livecheck-test-{}.sqlite3", fastrand::u64(..));
            TempDb(std::env::temp_dir().join(name))
        }

        fn open(&self) -> SqliteTransport {
            SqliteTransport::open(&self.0).unwrap().with_partitions(4).with_liveness(Duration::from_millis(600))
        }
    }

    impl Drop for TempDb {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
            }
        }
    }

    fn msg(key: &str, value: &str) -> Message {
        let mut headers = Headers::new();
        headers.push("LiveCheck-Test-Id", key);
        Message { key: Some(key.into()), value: value.as_bytes().to_vec(), headers }
    }

    async fn next_event(sub: &mut Box<dyn Subscription>) -> Event {
        tokio::time::timeout(Duration::from_secs(5), sub.recv()).await.expect("an event in time").unwrap()
    }

    /// The next message, passing over assignment events.
    async fn recv(sub: &mut Box<dyn Subscription>) -> Received {
        loop {
            if let Event::Message(received) = next_event(sub).await {
                return received;
            }
        }
    }

    #[tokio::test]
    async fn messages_with_headers_travel_between_two_handles_on_one_file_in_key_order() {
        let db = TempDb::new();
        let (producer, consumer) = (db.open(), db.open());
        let mut sub = consumer.subscribe(&["s"], "g").await.unwrap();
        let a = producer.publish("s", msg("k", "1")).await.unwrap();
        let b = producer.publish("s", msg("k", "2")).await.unwrap();
        assert_eq!((a.partition, b.offset), (b.partition, a.offset + 1));
        let first = recv(&mut sub).await;
        assert_eq!(first.message.value, b"1");
        assert_eq!(&*first.stream, "s");
        assert_eq!(first.message.headers.get("livecheck-test-id"), Some(&b"k"[..]));
        assert_eq!(recv(&mut sub).await.message.value, b"2");
        let read = producer.read("s", a.partition, 1, 10).await.unwrap();
        assert_eq!(read.iter().map(|r| r.message.value.clone()).collect::<Vec<_>>(), vec![b"2".to_vec()]);
    }

    /// A message of a kilobyte takes about a kilobyte of file, not a page and more (the rows stay inline).
    #[tokio::test]
    async fn a_kilobyte_message_takes_about_a_kilobyte_of_file() {
        let db = TempDb::new();
        let transport = db.open();
        let value = "v".repeat(1000);
        let count = 400;
        for i in 0..count {
            transport.publish("s", msg(&format!("k{i}"), &value)).await.unwrap();
        }
        let connection = connect(db.0.as_path()).unwrap();
        let pragma =
            |name: &str| connection.query_row(&format!("PRAGMA {name}"), [], |row| row.get::<_, i64>(0)).unwrap();
        let used = (pragma("page_count") - pragma("freelist_count")) * pragma("page_size");
        let per_message = used / count;
        assert!(
            per_message < 1600,
            "{per_message} bytes of file per 1 000-byte message (4 700 in a WITHOUT ROWID table)"
        );
    }

    /// A log an earlier version created (messages in a WITHOUT ROWID table) is moved to the compact table once,
    /// messages and all, and reads on.
    #[tokio::test]
    async fn a_log_an_earlier_version_made_moves_to_the_compact_table_with_its_messages() {
        let db = TempDb::new();
        {
            let old = Connection::open(&db.0).unwrap();
            old.execute_batch(
                "CREATE TABLE messages (
                     stream TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
                     key TEXT, value BLOB NOT NULL, headers BLOB NOT NULL, published_ms INTEGER NOT NULL,
                     PRIMARY KEY (stream, partition, offset)) WITHOUT ROWID;
                 CREATE TABLE heads (
                     stream TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
                     PRIMARY KEY (stream, partition)) WITHOUT ROWID;
                 CREATE TABLE streams (name TEXT PRIMARY KEY, partitions INTEGER NOT NULL);
                 INSERT INTO streams VALUES ('s', 1);
                 INSERT INTO heads VALUES ('s', 0, 2);
                 INSERT INTO messages VALUES ('s', 0, 0, 'a', x'31', x'', 0), ('s', 0, 1, 'b', x'32', x'', 0);",
            )
            .unwrap();
        }
        let transport = SqliteTransport::open(&db.0).unwrap();
        let read = transport.read("s", 0, 0, 10).await.unwrap();
        let values: Vec<&[u8]> = read.iter().map(|r| r.message.value.as_slice()).collect();
        assert_eq!(values, [b"1", b"2"]);
        assert_eq!(transport.publish("s", msg("c", "3")).await.unwrap().offset, 2);
        let connection = connect(db.0.as_path()).unwrap();
        let sql: String = connection
            .query_row("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'messages'", [], |row| row.get(0))
            .unwrap();
        assert!(!sql.to_ascii_uppercase().contains("WITHOUT ROWID"), "{sql}");
    }

    /// Rows written by another program: a value stored as TEXT is read; a key that is not UTF-8 (as BLOB or as
    /// TEXT) is a poison message, skipped and counted; the partition and the partitions read after it go on.
    #[tokio::test]
    async fn rows_another_program_wrote_are_read_or_skipped_as_poison_and_reading_goes_on() {
        let db = TempDb::new();
        let transport = db.open();
        let mut sub = transport.subscribe(&["s"], "g").await.unwrap();
        let first = transport.publish("s", msg("k", "a")).await.unwrap();
        let other_key = (0..)
            .map(|i| format!("o{i}"))
            .find(|k| crate::transport::partition_for_key(k.as_bytes(), 4) > first.partition)
            .unwrap();
        let connection = connect(db.0.as_path()).unwrap();
        let insert = |offset: i64, key: &str, value: &str| {
            connection
                .execute(
                    &format!(
                        "INSERT INTO messages (stream, partition, offset, key, value, headers, published_ms)
                         VALUES ('s', ?1, ?2, {key}, {value}, x'', 0)"
                    ),
                    params![first.partition, offset],
                )
                .unwrap();
        };
        insert(1, "'k'", "'{\"as\":\"text\"}'");
        insert(2, "x'ff00'", "x'01'");
        insert(3, "CAST(x'c328' AS TEXT)", "x'02'");
        insert(4, "x'6b32'", "x'03'");
        connection
            .execute("UPDATE heads SET next_offset = 5 WHERE stream = 's' AND partition = ?1", [first.partition])
            .unwrap();
        let after = transport.publish("s", msg("k", "b")).await.unwrap();
        assert_eq!(after.offset, 5);
        transport.publish("s", msg(&other_key, "c")).await.unwrap();

        let mut values = Vec::new();
        for _ in 0..5 {
            let received = recv(&mut sub).await;
            values.push((received.message.key.clone(), String::from_utf8(received.message.value.clone()).unwrap()));
        }
        values.sort();
        let expected: Vec<(Option<String>, String)> = vec![
            (Some("k".into()), "a".into()),
            (Some("k".into()), "b".into()),
            (Some("k".into()), "{\"as\":\"text\"}".into()),
            (Some("k2".into()), "\u{3}".into()),
            (Some(other_key.clone()), "c".into()),
        ];
        assert_eq!(values, expected);
        assert_eq!(transport.poison_messages().get(&PoisonCause::KeyNotUtf8), Some(&2));
        assert_eq!(transport.read("s", first.partition, 0, 10).await.unwrap().len(), 4, "read skips them too");
    }

    #[tokio::test]
    async fn a_deleted_log_fails_publishes_and_is_not_silently_created_again() {
        let dir = std::env::temp_dir().join(format!("livecheck-deleted-{}", fastrand::u64(..)));
        let path = dir.join("lc.sqlite3");
        let transport = SqliteTransport::open(&path).unwrap();
        transport.publish("s", msg("k", "1")).await.unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let error = transport.publish("s", msg("k", "2")).await.unwrap_err();
        assert!(error.to_string().contains("was deleted while in use"), "{error}");
        assert!(!error.is_retriable());
        let reopened = SqliteTransport::open(&path).err().expect("a gone log is an error");
        assert!(reopened.to_string().contains("recreate=1"), "{reopened}");
        assert!(!path.exists(), "nothing created");
        let recreated = SqliteTransport::recreate(&path).unwrap();
        recreated.publish("s", msg("k", "3")).await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[test]
    fn a_new_log_is_private_to_its_user() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("livecheck-private-{}", fastrand::u64(..)));
        let path = dir.join("lc.sqlite3");
        let _transport = SqliteTransport::open(&path).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&path), 0o600);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_log_over_its_size_limit_deletes_the_oldest_messages_of_every_partition() {
        let db = TempDb::new();
        let value = "v".repeat(1000);
        let before = db.open();
        for i in 0..2000 {
            before.publish("s", msg(&format!("k{i}"), &value)).await.unwrap();
        }
        // One retention pass, after the next publish.
        let transport = db.open().with_max_bytes(300_000).rebuild(|inner| inner.retention.every = Duration::ZERO);
        transport.publish("s", msg("last", &value)).await.unwrap();
        let connection = connect(db.0.as_path()).unwrap();
        let count = || connection.query_row("SELECT count(*) FROM messages", [], |row| row.get::<_, i64>(0)).unwrap();
        let pragma =
            |name: &str| connection.query_row(&format!("PRAGMA {name}"), [], |row| row.get::<_, i64>(0)).unwrap();
        let used = || (pragma("page_count") - pragma("freelist_count")) * pragma("page_size");
        // The pass runs right after the publish resolved, a partition at a time. It brings the log down to about
        // 90 % of the limit: pages of other tables and half-empty pages make it approximate.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while used() > 330_000 {
            assert!(std::time::Instant::now() < deadline, "{} bytes of pages used", used());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let kept = count();
        assert!((20..1000).contains(&kept), "{kept} messages kept");
        // The newest are kept, in every partition.
        let ends = transport.end_offsets("s").await.unwrap();
        for (partition, end) in ends.iter().enumerate() {
            let newest = transport.read("s", partition as u32, end - 1, 1).await.unwrap();
            assert_eq!(newest.len(), 1, "partition {partition} keeps its newest message");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn publishes_fail_at_once_when_too_many_bytes_wait_for_a_blocked_writer_and_flow_again_after() {
        let db = TempDb::new();
        let transport = db.open().rebuild(|inner| inner.max_queued_bytes = 100_000);
        transport.publish("s", msg("k", "first")).await.unwrap();
        // Another process holds the database: the writer waits (busy timeout) with what it was given.
        let blocker = Connection::open(&db.0).unwrap();
        blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
        let big = "x".repeat(30_000);
        let waiting: Vec<_> = (0..3)
            .map(|i| {
                let (transport, message) = (transport.clone(), msg(&format!("k{i}"), &big));
                tokio::spawn(async move { transport.publish("s", message).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let refused = transport.publish("s", msg("k9", &big)).await.unwrap_err();
        assert!(refused.is_retriable() && refused.to_string().contains("writer is behind"), "{refused}");
        blocker.execute_batch("COMMIT").unwrap();
        for publish in waiting {
            publish.await.unwrap().unwrap();
        }
        transport.publish("s", msg("k9", &big)).await.unwrap();
    }

    /// A burst of big messages is not read into memory all at once: a member reads ahead of the app up to its
    /// byte limit (plus the message that crossed it), whatever the count, and the rest follows as the app takes
    /// them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_member_reads_ahead_of_the_app_only_up_to_its_byte_limit() {
        let db = TempDb::new();
        let transport = db.open();
        let big = "x".repeat(100_000);
        for i in 0..40 {
            transport.publish("s", msg(&format!("k{i}"), &big)).await.unwrap();
        }
        let limit = 1 << 20;
        let config = member::MemberConfig {
            connection: connect(&db.0).unwrap(),
            group: "g".into(),
            streams: vec!["s".into()],
            partitions: 4,
            member_timeout: Duration::from_millis(600),
            poison: stored::PoisonCounts::default(),
            identity: identity::FileIdentity::of(&db.0).unwrap(),
            read_ahead_bytes: limit,
        };
        let sub = tokio::task::spawn_blocking(move || member::join(config)).await.unwrap().unwrap();
        // The app takes nothing for a while: the thread reads what it may.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let ahead = sub.read_ahead_bytes();
        assert!((limit..limit + 100_100).contains(&ahead), "{ahead} bytes read ahead of the app (limit {limit})");
        let mut sub: Box<dyn Subscription> = Box::new(sub);
        let mut values = 0;
        while values < 40 {
            assert_eq!(recv(&mut sub).await.message.value.len(), big.len());
            values += 1;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn publishes_made_together_share_transactions_and_each_gets_its_own_offset() {
        let db = TempDb::new();
        let transport = db.open();
        let publishes = (0..500).map(|i| {
            let transport = transport.clone();
            tokio::spawn(async move { transport.publish("s", msg("one-key", &i.to_string())).await.unwrap() })
        });
        let mut offsets: Vec<u64> = Vec::new();
        for publish in publishes.collect::<Vec<_>>() {
            offsets.push(publish.await.unwrap().offset);
        }
        offsets.sort_unstable();
        assert_eq!(offsets, (0..500).collect::<Vec<_>>());
        assert_eq!(transport.end_offsets("s").await.unwrap().iter().sum::<u64>(), 500);
    }

    #[tokio::test]
    async fn a_restarted_consumer_continues_from_its_groups_committed_offsets_and_metadata() {
        let db = TempDb::new();
        let producer = db.open();
        for i in 0..3 {
            producer.publish("s", msg("k", &i.to_string())).await.unwrap();
        }
        {
            let first_run = db.open();
            let mut sub = first_run.subscribe(&["s"], "g").await.unwrap();
            let done = recv(&mut sub).await;
            sub.commit("s", done.partition, done.offset + 1, "reports=3").unwrap();
            let _not_committed = recv(&mut sub).await;
        }
        producer.publish("s", msg("k", "3")).await.unwrap();
        let restarted = db.open();
        let mut sub = restarted.subscribe(&["s"], "g").await.unwrap();
        let Event::Assigned(assigned) = next_event(&mut sub).await else { panic!("assigned first") };
        let partition = producer.publish("s", msg("k", "4")).await.unwrap().partition;
        let mine = assigned.iter().find(|a| a.partition == partition).unwrap();
        assert_eq!(mine.committed("s").unwrap().metadata, "reports=3");
        let values: Vec<Vec<u8>> = [recv(&mut sub).await, recv(&mut sub).await, recv(&mut sub).await]
            .into_iter()
            .map(|r| r.message.value.clone())
            .collect();
        assert_eq!(values, vec![b"1".to_vec(), b"2".to_vec(), b"3".to_vec()], "nothing lost, nothing committed twice");
    }

    #[tokio::test]
    async fn a_partition_moves_to_a_joining_member_only_after_its_owner_let_go() {
        let db = TempDb::new();
        let mut a = db.open().subscribe(&["s", "t"], "g").await.unwrap();
        let Event::Assigned(all) = next_event(&mut a).await else { panic!("a gets every partition") };
        assert_eq!(all.len(), 4);
        let mut b = db.open().subscribe(&["s", "t"], "g").await.unwrap();
        let Event::Revoked(revoked) = next_event(&mut a).await else { panic!("a gives up half") };
        assert_eq!(revoked.len(), 2);
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(b.try_recv().unwrap().is_none(), "b waits until a let go");
        assert!(a.try_recv().unwrap().is_none(), "a lets go");
        let Event::Assigned(taken) = next_event(&mut b).await else { panic!("b takes them") };
        let mut taken: Vec<u32> = taken.iter().map(|t| t.partition).collect();
        taken.sort_unstable();
        assert_eq!(taken, revoked);
    }

    #[tokio::test]
    async fn streams_consumed_together_must_have_the_same_partitions() {
        let db = TempDb::new();
        let transport = db.open();
        transport.create_stream("eight", 8).await.unwrap();
        transport.create_stream("two", 2).await.unwrap();
        let error = transport.subscribe(&["eight", "two"], "g").await.err().unwrap().to_string();
        assert!(error.contains("`eight` (8 partitions)") && error.contains("`two` (2 partitions)"), "{error}");
    }

    #[tokio::test]
    async fn one_leader_at_a_time_and_another_takes_over_when_it_leaves() {
        let db = TempDb::new();
        let a = db.open().elect_leader("g").await.unwrap();
        let b = db.open().elect_leader("g").await.unwrap();
        assert!(a.is_leader());
        assert!(!b.is_leader());
        drop(a);
        tokio::time::timeout(Duration::from_secs(5), async {
            while !b.is_leader() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("b becomes leader");
    }

    #[test]
    fn a_busy_database_is_worth_retrying_a_malformed_query_is_not() {
        let busy = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY), None);
        assert!(sql(busy).is_retriable());
        let bad = Connection::open_in_memory().unwrap().execute("NOT SQL", []).unwrap_err();
        let error = sql(bad);
        assert!(!error.is_retriable());
        assert!(std::error::Error::source(&error).is_some_and(|s| s.is::<rusqlite::Error>()), "{error}");
    }

    #[test]
    fn headers_round_trip_through_their_stored_form() {
        let mut headers = Headers::new();
        headers.push("a", "1");
        headers.push("", vec![0xff, 0]);
        headers.push("LiveCheck-Test-Id", "x".repeat(1000));
        assert_eq!(decode_headers(&encode_headers(&headers)), Some(headers));
        assert_eq!(decode_headers(&[5, 0, b'a']), None, "truncated");
    }
}
