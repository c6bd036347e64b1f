//! The embedded log's tests: several handles on one file, as several processes use it.

use super::*;
use crate::{context::Headers, transport::Event};

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
        for suffix in ["", "-wal", "-shm", ".created"] {
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
    let pragma = |name: &str| connection.query_row(&format!("PRAGMA {name}"), [], |row| row.get::<_, i64>(0)).unwrap();
    let used = (pragma("page_count") - pragma("freelist_count")) * pragma("page_size");
    let per_message = used / count;
    assert!(per_message < 1600, "{per_message} bytes of file per 1 000-byte message (4 700 in a WITHOUT ROWID table)");
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
    let pragma = |name: &str| connection.query_row(&format!("PRAGMA {name}"), [], |row| row.get::<_, i64>(0)).unwrap();
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
