//! The one thread that appends to the embedded log, with group commit: publishes that arrive together share one
//! transaction, and each resolves only once that transaction is durable.
//!
//! A partition's next offset is kept in the `heads` table. Another program that appended a row without moving the
//! head (a hand-made `INSERT`, a producer in another language) leaves the head pointing at an offset already used:
//! the writer then takes the next offset from the messages actually there (`MAX(offset) + 1`), moves the head
//! there and appends, saying so once (a WARN, counted in [`SqliteTransport::offset_conflicts_healed`]) — instead
//! of failing every later append to that partition.
//!
//! [`SqliteTransport::offset_conflicts_healed`]: super::SqliteTransport::offset_conflicts_healed

use std::{
    collections::HashMap,
    path::Path,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        mpsc, Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use tokio::sync::oneshot;

use super::{connect, headers::encode_headers, identity::FileIdentity, now_ms};
use crate::{
    error::with_causes,
    transport::{drop_deadline::DropDeadline, partition_for_key, Delivery, Message},
    Error, Result,
};

/// The most publishes one transaction takes.
const MAX_BATCH: usize = 1024;
/// The most bytes of messages waiting for the writer (a disk or database too slow or blocked): past it,
/// publishes fail at once with a retriable error instead of piling up in memory.
pub(super) const MAX_QUEUED_BYTES: usize = 64 << 20;
/// What the writer deletes, and how often it looks.
#[derive(Clone, Copy, Debug)]
pub(super) struct Retention {
    /// Messages older than this go.
    pub(super) age: Duration,
    /// Above this many bytes of data, the oldest messages of every partition go (a share each), down to 90 %.
    pub(super) max_bytes: Option<u64>,
    /// How often the writer applies it (every minute).
    pub(super) every: Duration,
}

struct Publish {
    stream: String,
    message: Message,
    done: oneshot::Sender<Result<Delivery>>,
}

/// The bytes a message takes in the writer's queue.
fn queued_size(message: &Message) -> usize {
    let headers: usize = message.headers.iter().map(|(name, value)| name.len() + value.len()).sum();
    message.key.as_ref().map_or(0, String::len) + message.value.len() + headers
}

/// The handle of the writer thread; the thread ends when this is dropped, after writing what it was given (waited
/// for as long as the transport's drop deadline allows).
pub(super) struct Writer {
    requests: Option<mpsc::Sender<Publish>>,
    thread: Option<JoinHandle<()>>,
    /// Bytes of the messages given to the thread and not written (or failed) yet.
    queued: Arc<AtomicUsize>,
    max_queued: usize,
    drop_deadline: DropDeadline,
    /// Set when a drop left the thread behind: it writes nothing more.
    left_behind: Arc<AtomicBool>,
}

impl Writer {
    /// Starts the writer on its own connection to `path`; streams it creates get `partitions` partitions.
    pub(super) fn start(
        path: &Path,
        partitions: u32,
        retention: Retention,
        identity: FileIdentity,
        max_queued: usize,
        healed: Arc<AtomicU64>,
        drop_deadline: DropDeadline,
    ) -> Result<Writer> {
        let connection = connect(path)?;
        let (requests, received) = mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let thread_queued = queued.clone();
        let left_behind = Arc::new(AtomicBool::new(false));
        let mut writer = WriterThread::new(connection, partitions, retention, identity, healed);
        writer.left_behind = left_behind.clone();
        let thread = std::thread::Builder::new()
            .name("livecheck-sqlite-writer".into())
            .spawn(move || writer.run(received, &thread_queued))
            .map_err(|e| Error::transport("starting the embedded log's writer thread", false, e))?;
        Ok(Writer { requests: Some(requests), thread: Some(thread), queued, max_queued, drop_deadline, left_behind })
    }

    /// Appends `message` to `stream`; resolves once it is stored. With more than the queue's bytes already
    /// waiting for the writer, fails at once (retriable).
    pub(super) async fn publish(&self, stream: &str, message: Message) -> Result<Delivery> {
        let size = queued_size(&message);
        let waiting = self.queued.fetch_add(size, Ordering::SeqCst);
        if waiting > 0 && waiting + size > self.max_queued {
            self.queued.fetch_sub(size, Ordering::SeqCst);
            return Err(Error::Transport {
                context: format!(
                    "the embedded log's writer is behind: {waiting} bytes wait to be written (at most {}); the disk \
                     or the database is slow or blocked",
                    self.max_queued
                ),
                retriable: true,
                source: None,
            });
        }
        let (done, delivered) = oneshot::channel();
        let publish = Publish { stream: stream.to_owned(), message, done };
        let sent = self.requests.as_ref().map(|r| r.send(publish));
        if !matches!(sent, Some(Ok(()))) {
            self.queued.fetch_sub(size, Ordering::SeqCst);
            return Err(Error::transport_stopped("the embedded log's writer has stopped"));
        }
        delivered.await.map_err(|_| Error::transport_stopped("the embedded log's writer stopped before writing"))?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.requests.take();
        if let Some(thread) = self.thread.take() {
            let queued = self.queued.load(Ordering::SeqCst);
            let what = format!("the embedded log's writer ({queued} bytes to write, given up: not written later)");
            if !self.drop_deadline.join(thread, &what) {
                // As if its process had ended: what it still holds, its publishers gave up.
                self.left_behind.store(true, Ordering::SeqCst);
            }
        }
    }
}

struct WriterThread {
    connection: Connection,
    default_partitions: u32,
    retention: Retention,
    partitions: HashMap<String, u32>,
    next_retention: Instant,
    identity: FileIdentity,
    /// Whether the last check found the log's file gone (logged once per change).
    file_gone: bool,
    /// Appends that found their offset taken by a row written behind the writer's back, and moved past it.
    healed: Arc<AtomicU64>,
    /// Set when the transport's drop left this thread behind: nothing more is written.
    left_behind: Arc<AtomicBool>,
}

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
    fn new(
        connection: Connection,
        default_partitions: u32,
        retention: Retention,
        identity: FileIdentity,
        healed: Arc<AtomicU64>,
    ) -> Self {
        WriterThread {
            connection,
            default_partitions,
            retention,
            partitions: HashMap::new(),
            next_retention: Instant::now() + retention.every,
            identity,
            file_gone: false,
            healed,
            left_behind: Arc::default(),
        }
    }

    fn run(mut self, requests: mpsc::Receiver<Publish>, queued: &AtomicUsize) {
        while let Ok(first) = requests.recv() {
            let mut batch = vec![first];
            batch.extend(requests.try_iter().take(MAX_BATCH - 1));
            let bytes = batch.iter().map(|p| queued_size(&p.message)).sum();
            self.write(batch);
            // Written or failed: no longer waiting.
            queued.fetch_sub(bytes, Ordering::SeqCst);
            if Instant::now() >= self.next_retention {
                self.next_retention = Instant::now() + self.retention.every;
                if let Err(error) = self.apply_retention() {
                    tracing::warn!(%error, "deleting old messages from the embedded log failed");
                }
            }
        }
    }

    /// Appends the batch in one transaction and resolves each publish.
    fn write(&mut self, batch: Vec<Publish>) {
        let (done, work): (Vec<_>, Vec<_>) = batch.into_iter().map(|p| (p.done, (p.stream, p.message))).unzip();
        // Writing into a deleted file would be acknowledged and lost: every publish fails instead.
        if let Err(gone) = self.identity.check() {
            if !std::mem::replace(&mut self.file_gone, true) {
                tracing::error!(error = %with_causes(&gone), "publishing refused");
            }
            let message = with_causes(&gone);
            for done in done {
                let failed = Error::Transport { context: message.clone(), retriable: false, source: None };
                let _ = done.send(Err(failed));
            }
            return;
        }
        self.file_gone = false;
        match self.append(work) {
            Ok(deliveries) => {
                for (done, delivery) in done.into_iter().zip(deliveries) {
                    let _ = done.send(Ok(delivery));
                }
            }
            Err(error) => {
                tracing::error!(%error, "appending to the embedded log failed");
                // One failure for the whole transaction; each publish gets its own copy of it.
                let retriable = super::is_retriable(&error);
                for done in done {
                    let failed = Error::Transport {
                        context: format!("appending to the embedded log: {error}"),
                        retriable,
                        source: None,
                    };
                    let _ = done.send(Err(failed));
                }
            }
        }
    }

    /// Appends every message in one transaction. A message whose offset is already used (a row written behind the
    /// writer's back) goes one past the partition's highest offset instead; once the transaction is committed, each
    /// such healing is logged and counted.
    fn append(&mut self, work: Vec<(String, Message)>) -> rusqlite::Result<Vec<Delivery>> {
        let tx = self.connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Checked once the write lock is ours (it may have been waited for until after the drop).
        if self.left_behind.load(Ordering::SeqCst) {
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

    /// Deletes, partition by partition, the messages published before the retention horizon (the oldest come
    /// first in offset order, so only those are visited).
    fn apply_retention(&mut self) -> rusqlite::Result<()> {
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
pub(super) fn stream_partitions(
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::SqliteTransport;
    use crate::transport::{Message, Transport};

    /// A log in a directory of its own, removed at the end of the test.
    struct TempLog(PathBuf);

    impl TempLog {
        fn new() -> Self {
            TempLog(std::env::temp_dir().join(format!("livecheck-writer-{}", fastrand::u64(..))))
        }

        fn path(&self) -> PathBuf {
            self.0.join("lc.sqlite3")
        }
    }

    impl Drop for TempLog {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn message(value: &str) -> Message {
        Message { key: Some("k".into()), value: value.as_bytes().to_vec(), ..Default::default() }
    }

    /// Another program's row at `offset` of partition 0 of `s`, the head left where it was (a hand-made `INSERT`).
    fn insert_behind_the_writers_back(other: &rusqlite::Connection, offset: i64) {
        other
            .execute(
                "INSERT INTO messages (stream, partition, offset, key, value, headers, published_ms)
                 VALUES ('s', 0, ?1, 'other', CAST('other program' AS BLOB), x'', 0)",
                [offset],
            )
            .unwrap();
    }

    #[tokio::test]
    async fn an_append_at_an_offset_another_program_used_goes_past_it_and_the_partition_goes_on() {
        let log = TempLog::new();
        let transport = SqliteTransport::open(log.path()).unwrap().with_partitions(1);
        for value in ["a", "b", "c"] {
            transport.publish("s", message(value)).await.unwrap();
        }
        let other = rusqlite::Connection::open(log.path()).unwrap();
        other.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
        // At the head (3), and further on (5): the head still says 3.
        insert_behind_the_writers_back(&other, 3);
        insert_behind_the_writers_back(&other, 5);

        let healed = transport.publish("s", message("d")).await.expect("the append heals the partition");
        assert_eq!(healed.offset, 6, "one past the highest offset there");
        assert_eq!(transport.publish("s", message("e")).await.unwrap().offset, 7);
        assert_eq!(transport.offset_conflicts_healed(), 1, "counted once");
        let head: i64 = other
            .query_row("SELECT next_offset FROM heads WHERE stream = 's' AND partition = 0", [], |row| row.get(0))
            .unwrap();
        assert_eq!(head, 8, "the head moved past every stored message");

        // Again, under publishes that share a transaction: every one of them is stored, none fails.
        insert_behind_the_writers_back(&other, 8);
        let values: Vec<String> = (0..20).map(|i| format!("batch-{i}")).collect();
        let mut batch = tokio::task::JoinSet::new();
        for value in &values {
            let (transport, value) = (transport.clone(), value.clone());
            batch.spawn(async move { transport.publish("s", message(&value)).await });
        }
        while let Some(published) = batch.join_next().await {
            published.unwrap().expect("every publish of the batch is stored");
        }
        assert_eq!(transport.offset_conflicts_healed(), 2);

        let stored = transport.read("s", 0, 0, 100).await.unwrap();
        let offsets: Vec<u64> = stored.iter().map(|r| r.offset).collect();
        assert!(offsets.windows(2).all(|pair| pair[0] < pair[1]), "unique and increasing: {offsets:?}");
        let mut ours: Vec<String> = stored
            .iter()
            .filter(|r| r.message.key.as_deref() == Some("k"))
            .map(|r| String::from_utf8(r.message.value.clone()).unwrap())
            .collect();
        ours.sort();
        let mut expected: Vec<String> = ["a", "b", "c", "d", "e"].iter().map(|v| v.to_string()).chain(values).collect();
        expected.sort();
        assert_eq!(ours, expected, "nothing lost");
        assert_eq!(stored.len(), expected.len() + 3, "and the other program's three rows are there too");
    }
}
