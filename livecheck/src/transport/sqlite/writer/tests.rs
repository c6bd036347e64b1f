//! The writer against another program that writes into the log behind its back.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use crate::transport::{sqlite::SqliteTransport, Message, Transport};

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

#[tokio::test]
async fn a_flush_waits_for_what_is_queued_even_when_its_publishers_stopped_waiting_until_the_deadline_at_most() {
    let log = TempLog::new();
    let transport = SqliteTransport::open(log.path()).unwrap().with_partitions(1);
    transport.flush().await.expect("nothing queued: nothing to wait for");
    transport.publish("s", message("first")).await.unwrap();
    // Another program holds the write lock: what is published now waits in the writer's queue.
    let other = rusqlite::Connection::open(log.path()).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    for i in 0..10 {
        let publish = transport.publish("s", message(&format!("queued-{i}")));
        tokio::time::timeout(Duration::from_millis(1), publish).await.expect_err("the publisher stops waiting");
    }

    transport.set_drop_deadline(Instant::now() + Duration::from_millis(100));
    let started = Instant::now();
    let late = transport.flush().await.expect_err("the log is locked past the deadline");
    assert!(started.elapsed() < Duration::from_secs(5), "waited until the deadline only: {:?}", started.elapsed());
    assert!(late.is_retriable() && late.to_string().contains("did not write what is queued"), "{late}");

    other.execute_batch("COMMIT").unwrap();
    transport.set_drop_deadline(Instant::now() + Duration::from_secs(30));
    transport.flush().await.expect("written once the lock is free");
    let stored = transport.read("s", 0, 0, 100).await.unwrap();
    assert_eq!(stored.len(), 11, "every message queued before the flush is stored");
}

#[tokio::test]
async fn a_drop_on_an_async_thread_does_not_wait_for_a_blocked_writer_which_writes_nothing_past_the_deadline() {
    let log = TempLog::new();
    let transport = SqliteTransport::open(log.path()).unwrap().with_partitions(1);
    transport.publish("s", message("stored")).await.unwrap();
    let other = rusqlite::Connection::open(log.path()).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let publish = transport.publish("s", message("given up"));
    tokio::time::timeout(Duration::from_millis(1), publish).await.expect_err("the publisher stops waiting");

    transport.set_drop_deadline(Instant::now() + Duration::from_millis(200));
    let started = Instant::now();
    drop(transport);
    assert!(started.elapsed() < Duration::from_millis(100), "the drop did not wait: {:?}", started.elapsed());

    // The lock is let go after the deadline: the writer, which waited for it, writes nothing more.
    tokio::time::sleep(Duration::from_millis(300)).await;
    other.execute_batch("COMMIT").unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let count: i64 = other.query_row("SELECT COUNT(*) FROM messages", [], |row| row.get(0)).unwrap();
    assert_eq!(count, 1, "only what was stored before the drop");
}
