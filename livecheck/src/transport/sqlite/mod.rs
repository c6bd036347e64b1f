//! The embedded transport: a log in an SQLite database (WAL mode) that several processes on one machine share.
//!
//! Each stream partition is a sequence of rows numbered by offset; consumer groups keep their committed offsets
//! (with metadata) in the database, so a process that restarts continues where its group left off. No SQL runs
//! on the async runtime: one writer thread appends with group commit (publishes that arrive together share a
//! transaction), each group member has a thread that heartbeats, hands partitions over and reads, and the other
//! queries run on a small pool of connections off the async threads. Members notice new rows by polling SQLite's
//! `data_version` every 2 ms, which is cheap and keeps the latency between processes in the low milliseconds.
//!
//! Here: the transport and its queries. The tables and their migration are in `schema`, the options (also given on
//! the URL) in `options`, the appending thread in `writer`, a group member in `member`, leader election in
//! `leader`, rows as messages in `stored` and headers' stored form in `headers`; `identity` notices a deleted log.

mod headers;
mod identity;
mod leader;
mod member;
mod options;
mod schema;
mod stored;
#[cfg(test)]
mod tests;
mod writer;

pub(super) use options::from_url;
use schema::{connect, open_schema};
pub use stored::PoisonCause;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use rusqlite::{params, Connection};

use super::{
    check_co_partitioned, drop_deadline::DropDeadline, BoxFuture, Delivery, Leadership, Message, Received,
    Subscription, Transport,
};
use crate::{sync::lock, Error, Result};

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

    fn flush(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            match self.inner.writer.get() {
                Some(writer) => writer.flush(self.inner.drop_deadline.wait()).await,
                None => Ok(()),
            }
        })
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
