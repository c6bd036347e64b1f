//! The embedded transport: a log in an SQLite database (WAL mode) that several processes on one machine share.
//!
//! Each stream partition is a sequence of rows numbered by offset; consumer groups keep their committed offsets in
//! the database, so a process that restarts continues where its group left off. Group members announce themselves
//! with heartbeats and split the partitions among the live ones; a leader holds a lease that it renews. Consumers
//! notice new rows by polling SQLite's `data_version` every 2 ms, which is cheap and keeps the latency between
//! processes in the low milliseconds.

use std::{
    collections::{HashMap, VecDeque},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{partition_for_key, BoxFuture, Delivery, Leadership, Message, Received, Subscription, Transport};
use crate::{
    context::Headers,
    sync::{lock, random_uuid},
    Error, Result,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS streams (name TEXT PRIMARY KEY, partitions INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS heads (
    stream TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
    PRIMARY KEY (stream, partition)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
    stream TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
    key TEXT, value BLOB NOT NULL, headers BLOB NOT NULL, published_ms INTEGER NOT NULL,
    PRIMARY KEY (stream, partition, offset)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS commits (
    grp TEXT NOT NULL, stream TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
    PRIMARY KEY (grp, stream, partition)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS members (
    grp TEXT NOT NULL, stream TEXT NOT NULL, member TEXT NOT NULL, heartbeat_ms INTEGER NOT NULL,
    PRIMARY KEY (grp, stream, member)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (grp TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_ms INTEGER NOT NULL);
";

/// How often a consumer looks for new rows when it has none.
const POLL: Duration = Duration::from_millis(2);
/// How often a group member renews its heartbeat and re-reads the membership.
const HEARTBEAT: Duration = Duration::from_millis(500);
/// How many rows a consumer reads from a partition at once.
const FETCH: i64 = 256;

/// Streams in an SQLite database file shared by the processes of one machine.
#[derive(Clone)]
pub struct SqliteTransport {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    default_partitions: u32,
    partitions: Mutex<HashMap<String, u32>>,
    retention: Duration,
    member_timeout: Duration,
    lease: Duration,
    publishes: AtomicU64,
}

fn sql(error: rusqlite::Error) -> Error {
    Error::Transport(format!("sqlite: {error}"))
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn connect(path: &Path) -> Result<Connection> {
    let connection = Connection::open(path).map_err(sql)?;
    connection.busy_timeout(Duration::from_secs(10)).map_err(sql)?;
    connection.pragma_update(None, "journal_mode", "WAL").map_err(sql)?;
    connection.pragma_update(None, "synchronous", "NORMAL").map_err(sql)?;
    Ok(connection)
}

impl SqliteTransport {
    /// Opens (creating if needed) the log at `path`; its directory is created too.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Transport(format!("cannot create {}: {e}", dir.display())))?;
        }
        let writer = connect(&path)?;
        writer.execute_batch(SCHEMA).map_err(sql)?;
        Ok(SqliteTransport {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(writer),
                default_partitions: 8,
                partitions: Mutex::default(),
                retention: Duration::from_secs(7 * 24 * 3600),
                member_timeout: Duration::from_secs(5),
                lease: Duration::from_secs(5),
                publishes: AtomicU64::new(0),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Partitions of streams created on first use (default 8). Call before sharing the transport.
    #[must_use]
    pub fn with_partitions(self, partitions: u32) -> Self {
        self.rebuild(|inner| inner.default_partitions = partitions.max(1))
    }

    /// How long messages are kept (default 7 days).
    #[must_use]
    pub fn with_retention(self, retention: Duration) -> Self {
        self.rebuild(|inner| inner.retention = retention)
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

    /// The stream's partition count, creating the stream with `partitions` if it does not exist.
    fn ensure_stream(&self, stream: &str, partitions: u32) -> Result<u32> {
        if let Some(n) = lock(&self.inner.partitions).get(stream) {
            return Ok(*n);
        }
        let connection = lock(&self.inner.writer);
        connection
            .execute("INSERT OR IGNORE INTO streams (name, partitions) VALUES (?1, ?2)", params![stream, partitions])
            .map_err(sql)?;
        let n: u32 = connection
            .query_row("SELECT partitions FROM streams WHERE name = ?1", [stream], |row| row.get(0))
            .map_err(sql)?;
        lock(&self.inner.partitions).insert(stream.to_owned(), n);
        Ok(n)
    }

    fn publish_now(&self, stream: &str, message: Message) -> Result<Delivery> {
        let partitions = self.ensure_stream(stream, self.inner.default_partitions)?;
        let partition = match &message.key {
            Some(key) => partition_for_key(key.as_bytes(), partitions),
            None => fastrand::u32(..partitions),
        };
        let headers = encode_headers(&message.headers);
        let mut connection = lock(&self.inner.writer);
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql)?;
        let offset: i64 = tx
            .query_row(
                "SELECT next_offset FROM heads WHERE stream = ?1 AND partition = ?2",
                params![stream, partition],
                |row| row.get(0),
            )
            .optional()
            .map_err(sql)?
            .unwrap_or(0);
        tx.execute(
            "INSERT INTO heads (stream, partition, next_offset) VALUES (?1, ?2, ?3)
             ON CONFLICT (stream, partition) DO UPDATE SET next_offset = excluded.next_offset",
            params![stream, partition, offset + 1],
        )
        .map_err(sql)?;
        tx.execute(
            "INSERT INTO messages (stream, partition, offset, key, value, headers, published_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![stream, partition, offset, message.key, message.value, headers, now_ms()],
        )
        .map_err(sql)?;
        if self.inner.publishes.fetch_add(1, Ordering::Relaxed) % 10_000 == 0 {
            let horizon = now_ms() - self.inner.retention.as_millis() as i64;
            tx.execute("DELETE FROM messages WHERE published_ms < ?1", [horizon]).map_err(sql)?;
        }
        tx.commit().map_err(sql)?;
        Ok(Delivery { partition, offset: offset as u64 })
    }
}

impl Transport for SqliteTransport {
    fn create_stream<'a>(&'a self, stream: &'a str, partitions: u32) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { self.ensure_stream(stream, partitions.max(1)).map(|_| ()) })
    }

    fn publish<'a>(&'a self, stream: &'a str, message: Message) -> BoxFuture<'a, Result<Delivery>> {
        let transport = self.clone();
        let stream = stream.to_owned();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || transport.publish_now(&stream, message))
                .await
                .map_err(|e| Error::Transport(format!("publishing task failed: {e}")))?
        })
    }

    fn subscribe<'a>(&'a self, stream: &'a str, group: &'a str) -> BoxFuture<'a, Result<Box<dyn Subscription>>> {
        Box::pin(async move {
            let partitions = self.ensure_stream(stream, self.inner.default_partitions)?;
            let subscription = SqliteSubscription {
                reader: connect(&self.inner.path)?,
                member_timeout: self.inner.member_timeout,
                stream: stream.to_owned(),
                group: group.to_owned(),
                member: random_uuid(),
                partitions,
                assigned: Vec::new(),
                buffer: VecDeque::new(),
                next_heartbeat: tokio::time::Instant::now(),
                data_version: None,
            };
            Ok(Box::new(subscription) as Box<dyn Subscription>)
        })
    }

    fn end_offsets<'a>(&'a self, stream: &'a str) -> BoxFuture<'a, Result<Vec<u64>>> {
        Box::pin(async move {
            let partitions = self.ensure_stream(stream, self.inner.default_partitions)?;
            let connection = lock(&self.inner.writer);
            let mut ends = vec![0; partitions as usize];
            let mut statement =
                connection.prepare_cached("SELECT partition, next_offset FROM heads WHERE stream = ?1").map_err(sql)?;
            let rows =
                statement.query_map([stream], |row| Ok((row.get::<_, u32>(0)?, row.get::<_, i64>(1)?))).map_err(sql)?;
            for row in rows {
                let (partition, next) = row.map_err(sql)?;
                if let Some(end) = ends.get_mut(partition as usize) {
                    *end = next as u64;
                }
            }
            Ok(ends)
        })
    }

    fn elect_leader<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<Box<dyn Leadership>>> {
        Box::pin(async move {
            let candidate = Candidate {
                connection: Mutex::new(connect(&self.inner.path)?),
                group: group.to_owned(),
                me: random_uuid(),
                lease: self.inner.lease,
                leader: AtomicBool::new(false),
            };
            let candidate = Arc::new(candidate);
            candidate.renew();
            let renewing = {
                let candidate = Arc::downgrade(&candidate);
                let every = self.inner.lease / 4;
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(every).await;
                        let Some(candidate) = candidate.upgrade() else {
                            return;
                        };
                        tokio::task::spawn_blocking(move || candidate.renew()).await.ok();
                    }
                })
            };
            Ok(Box::new(SqliteLeadership { candidate, renewing }) as Box<dyn Leadership>)
        })
    }
}

struct SqliteSubscription {
    reader: Connection,
    member_timeout: Duration,
    stream: String,
    group: String,
    member: String,
    partitions: u32,
    /// (partition, next offset to read)
    assigned: Vec<(u32, u64)>,
    buffer: VecDeque<Received>,
    next_heartbeat: tokio::time::Instant,
    data_version: Option<i64>,
}

impl SqliteSubscription {
    /// Renews this member's heartbeat and re-reads the group: partition `p` belongs to the `p % n`-th live member.
    fn heartbeat(&mut self) -> Result<()> {
        let now = now_ms();
        self.reader
            .execute(
                "INSERT INTO members (grp, stream, member, heartbeat_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (grp, stream, member) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms",
                params![self.group, self.stream, self.member, now],
            )
            .map_err(sql)?;
        let mut statement = self
            .reader
            .prepare_cached(
                "SELECT member FROM members WHERE grp = ?1 AND stream = ?2 AND heartbeat_ms >= ?3 ORDER BY member",
            )
            .map_err(sql)?;
        let live: Vec<String> = statement
            .query_map(params![self.group, self.stream, now - self.member_timeout.as_millis() as i64], |row| row.get(0))
            .map_err(sql)?
            .collect::<rusqlite::Result<_>>()
            .map_err(sql)?;
        drop(statement);
        let n = live.len().max(1);
        let me = live.iter().position(|m| *m == self.member).unwrap_or(0);
        let mine: Vec<u32> = (0..self.partitions).filter(|p| *p as usize % n == me).collect();
        if mine.iter().ne(self.assigned.iter().map(|(p, _)| p)) {
            let mut assigned = Vec::with_capacity(mine.len());
            for partition in mine {
                let kept = self.assigned.iter().find(|(p, _)| *p == partition).map(|(_, next)| *next);
                let next = match kept {
                    Some(next) => next,
                    None => self.committed(partition)?,
                };
                assigned.push((partition, next));
            }
            self.buffer.retain(|r| assigned.iter().any(|(p, _)| *p == r.partition));
            tracing::debug!(stream = %self.stream, group = %self.group, partitions = ?assigned, "assignment changed");
            self.assigned = assigned;
            self.data_version = None;
        }
        Ok(())
    }

    fn committed(&self, partition: u32) -> Result<u64> {
        let next: Option<i64> = self
            .reader
            .query_row(
                "SELECT next_offset FROM commits WHERE grp = ?1 AND stream = ?2 AND partition = ?3",
                params![self.group, self.stream, partition],
                |row| row.get(0),
            )
            .optional()
            .map_err(sql)?;
        Ok(next.unwrap_or(0) as u64)
    }

    /// Reads the next rows of the assigned partitions into the buffer, if the database changed since last time.
    fn fetch(&mut self) -> Result<()> {
        let version: i64 = self.reader.query_row("PRAGMA data_version", [], |row| row.get(0)).map_err(sql)?;
        if self.data_version == Some(version) {
            return Ok(());
        }
        let mut statement = self
            .reader
            .prepare_cached(
                "SELECT offset, key, value, headers FROM messages
                 WHERE stream = ?1 AND partition = ?2 AND offset >= ?3 ORDER BY offset LIMIT ?4",
            )
            .map_err(sql)?;
        let mut complete = true;
        for (partition, next) in &mut self.assigned {
            let rows = statement
                .query_map(params![self.stream, *partition, *next as i64, FETCH], |row| {
                    Ok((row.get::<_, i64>(0)?, row.get(1)?, row.get(2)?, row.get::<_, Vec<u8>>(3)?))
                })
                .map_err(sql)?;
            let mut count = 0;
            for row in rows {
                let (offset, key, value, headers) = row.map_err(sql)?;
                let headers = decode_headers(&headers).unwrap_or_else(|| {
                    tracing::warn!(stream = %self.stream, offset, "stored headers do not decode; dropped them");
                    Headers::new()
                });
                *next = offset as u64 + 1;
                count += 1;
                self.buffer.push_back(Received {
                    partition: *partition,
                    offset: offset as u64,
                    message: Arc::new(Message { key, value, headers }),
                });
            }
            complete &= count < FETCH;
        }
        // Read everything up to this version: until the database changes, there is nothing more.
        self.data_version = complete.then_some(version);
        Ok(())
    }

    fn next_ready(&mut self) -> Result<Option<Received>> {
        if tokio::time::Instant::now() >= self.next_heartbeat {
            self.heartbeat()?;
            self.next_heartbeat = tokio::time::Instant::now() + HEARTBEAT;
        }
        if self.buffer.is_empty() {
            self.fetch()?;
        }
        Ok(self.buffer.pop_front())
    }
}

impl Subscription for SqliteSubscription {
    fn recv(&mut self) -> BoxFuture<'_, Result<Received>> {
        Box::pin(async move {
            loop {
                if let Some(received) = self.next_ready()? {
                    return Ok(received);
                }
                tokio::time::sleep(POLL).await;
            }
        })
    }

    fn try_recv(&mut self) -> Result<Option<Received>> {
        self.next_ready()
    }

    fn commit(&mut self, partition: u32, next_offset: u64) -> Result<()> {
        self.reader
            .execute(
                "INSERT INTO commits (grp, stream, partition, next_offset) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (grp, stream, partition) DO UPDATE SET next_offset = MAX(next_offset, excluded.next_offset)",
                params![self.group, self.stream, partition, next_offset as i64],
            )
            .map_err(sql)?;
        Ok(())
    }
}

impl Drop for SqliteSubscription {
    fn drop(&mut self) {
        let left = self.reader.execute(
            "DELETE FROM members WHERE grp = ?1 AND stream = ?2 AND member = ?3",
            params![self.group, self.stream, self.member],
        );
        if let Err(error) = left {
            tracing::warn!(%error, "could not leave the consumer group; the others take over after the timeout");
        }
    }
}

struct Candidate {
    connection: Mutex<Connection>,
    group: String,
    me: String,
    lease: Duration,
    leader: AtomicBool,
}

impl Candidate {
    /// Takes or renews the lease if it is free, expired or ours.
    fn renew(&self) {
        let result = (|| -> rusqlite::Result<bool> {
            let mut connection = lock(&self.connection);
            let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = now_ms();
            let holder: Option<(String, i64)> = tx
                .query_row("SELECT holder, expires_ms FROM leases WHERE grp = ?1", [&self.group], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .optional()?;
            let ours = match &holder {
                None => true,
                Some((holder, expires)) => *holder == self.me || *expires < now,
            };
            if ours {
                tx.execute(
                    "INSERT INTO leases (grp, holder, expires_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT (grp) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms",
                    params![self.group, self.me, now + self.lease.as_millis() as i64],
                )?;
            }
            tx.commit()?;
            Ok(ours)
        })();
        match result {
            Ok(ours) => self.leader.store(ours, Ordering::SeqCst),
            Err(error) => {
                tracing::warn!(%error, group = %self.group, "could not renew the leader lease");
                self.leader.store(false, Ordering::SeqCst);
            }
        }
    }
}

struct SqliteLeadership {
    candidate: Arc<Candidate>,
    renewing: tokio::task::JoinHandle<()>,
}

impl Leadership for SqliteLeadership {
    fn is_leader(&self) -> bool {
        self.candidate.leader.load(Ordering::SeqCst)
    }
}

impl Drop for SqliteLeadership {
    fn drop(&mut self) {
        self.renewing.abort();
        let candidate = &self.candidate;
        let released = lock(&candidate.connection)
            .execute("DELETE FROM leases WHERE grp = ?1 AND holder = ?2", params![candidate.group, candidate.me]);
        if let Err(error) = released {
            tracing::warn!(%error, "could not release the leader lease; it expires by itself");
        }
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

    async fn recv(sub: &mut Box<dyn Subscription>) -> Received {
        tokio::time::timeout(Duration::from_secs(5), sub.recv()).await.expect("a message in time").unwrap()
    }

    #[tokio::test]
    async fn messages_with_headers_travel_between_two_handles_on_one_file_in_key_order() {
        let db = TempDb::new();
        let (producer, consumer) = (db.open(), db.open());
        let mut sub = consumer.subscribe("s", "g").await.unwrap();
        let a = producer.publish("s", msg("k", "1")).await.unwrap();
        let b = producer.publish("s", msg("k", "2")).await.unwrap();
        assert_eq!((a.partition, b.offset), (b.partition, a.offset + 1));
        let first = recv(&mut sub).await;
        assert_eq!(first.message.value, b"1");
        assert_eq!(first.message.headers.get("livecheck-test-id"), Some(&b"k"[..]));
        assert_eq!(recv(&mut sub).await.message.value, b"2");
    }

    #[tokio::test]
    async fn a_restarted_consumer_continues_from_its_groups_committed_offsets() {
        let db = TempDb::new();
        let producer = db.open();
        for i in 0..3 {
            producer.publish("s", msg("k", &i.to_string())).await.unwrap();
        }
        {
            let first_run = db.open();
            let mut sub = first_run.subscribe("s", "g").await.unwrap();
            let done = recv(&mut sub).await;
            sub.commit(done.partition, done.offset + 1).unwrap();
            let _not_committed = recv(&mut sub).await;
        }
        producer.publish("s", msg("k", "3")).await.unwrap();
        let restarted = db.open();
        let mut sub = restarted.subscribe("s", "g").await.unwrap();
        let values: Vec<Vec<u8>> = [recv(&mut sub).await, recv(&mut sub).await, recv(&mut sub).await]
            .into_iter()
            .map(|r| r.message.value.clone())
            .collect();
        assert_eq!(values, vec![b"1".to_vec(), b"2".to_vec(), b"3".to_vec()], "nothing lost, nothing committed twice");
    }

    #[tokio::test]
    async fn members_of_a_group_split_the_partitions() {
        let db = TempDb::new();
        let transport = db.open();
        let mut a = transport.subscribe("s", "g").await.unwrap();
        let mut b = db.open().subscribe("s", "g").await.unwrap();
        // Both join, then both see each other at their next heartbeat (before that, a member alone takes all
        // partitions: a rebalance redelivers what was not committed, as with Kafka).
        for _ in 0..2 {
            assert!(a.try_recv().unwrap().is_none());
            assert!(b.try_recv().unwrap().is_none());
            tokio::time::sleep(HEARTBEAT + Duration::from_millis(50)).await;
        }
        for i in 0..40 {
            transport.publish("s", msg(&format!("key-{i}"), "x")).await.unwrap();
        }
        let (mut from_a, mut from_b) = (std::collections::HashSet::new(), std::collections::HashSet::new());
        for _ in 0..40 {
            tokio::select! {
                r = a.recv() => { from_a.insert(r.unwrap().partition); }
                r = b.recv() => { from_b.insert(r.unwrap().partition); }
            }
        }
        assert!(!from_a.is_empty() && !from_b.is_empty(), "{from_a:?} {from_b:?}");
        assert!(from_a.is_disjoint(&from_b), "{from_a:?} {from_b:?}");
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
    fn headers_round_trip_through_their_stored_form() {
        let mut headers = Headers::new();
        headers.push("a", "1");
        headers.push("", vec![0xff, 0]);
        headers.push("LiveCheck-Test-Id", "x".repeat(1000));
        assert_eq!(decode_headers(&encode_headers(&headers)), Some(headers));
        assert_eq!(decode_headers(&[5, 0, b'a']), None, "truncated");
    }
}
