//! Topics, agents and tables: messages carry the test of the code that produced them, agents handle each with
//! its test current, tables survive restarts through their changelog.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

mod support;

use livecheck::{
    current_test,
    stream::{Table, Topic},
    transport::{MemoryTransport, SqliteTransport, Transport},
    LiveCheck, TestContext,
};
use serde::{Deserialize, Serialize};
use support::TempDb;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Order {
    id: String,
    side: String,
}

fn order(id: &str) -> Order {
    Order { id: id.into(), side: "sell".into() }
}

fn test(id: &str) -> TestContext {
    let now = chrono::Utc::now();
    TestContext::new(id, "test_order", now, now + chrono::Duration::hours(3))
}

async fn until(mut cond: impl FnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("condition reached in time");
}

#[tokio::test]
async fn an_agent_handles_each_message_with_its_own_test_current_and_skips_bad_values() {
    let transport = MemoryTransport::with_partitions(1);
    let app = LiveCheck::builder().transport(transport.clone()).build();
    let orders: Topic<Order> = Topic::new(&app, "orders");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let agent = {
        let seen = seen.clone();
        orders
            .agent("worker", 4, move |event| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push((event.value.id, current_test().map(|t| t.id().to_owned())));
                    Ok(())
                }
            })
            .await
            .unwrap()
    };
    let delivery = livecheck::scope(Some(test("t-1")), orders.send("o-1", &order("o-1"))).await.unwrap();
    assert_eq!(delivery.offset, 0, "the send resolves with where the log stored it");
    let bad =
        livecheck::transport::Message { key: Some("x".into()), value: b"not an order".to_vec(), ..Default::default() };
    transport.publish("orders", bad).await.unwrap();
    orders.send("o-2", &order("o-2")).await.unwrap();
    until(|| seen.lock().unwrap().len() == 2).await;
    assert_eq!(*seen.lock().unwrap(), vec![("o-1".to_owned(), Some("t-1".to_owned())), ("o-2".to_owned(), None)]);
    assert_eq!(app.metrics().stream_messages_malformed, 1);
    agent.shutdown().await;
}

#[tokio::test]
async fn a_table_is_shared_between_handles_and_follows_changes() {
    let transport = MemoryTransport::new();
    let worker = LiveCheck::builder().transport(transport.clone()).build();
    let checker = LiveCheck::builder().transport(transport.clone()).build();
    let written: Table<Vec<String>> = Table::open(&worker, "user-orders").await.unwrap();
    written.set("u-1", vec!["o-1".into()]).await.unwrap();
    let read: Table<Vec<String>> = Table::open(&checker, "user-orders").await.unwrap();
    assert_eq!(read.get("u-1"), Some(vec!["o-1".to_owned()]), "restored from the changelog");
    written.set("u-1", vec!["o-1".into(), "o-2".into()]).await.unwrap();
    written.set("u-2", vec![]).await.unwrap();
    written.remove("u-2").await.unwrap();
    until(|| read.get("u-1").is_some_and(|o| o.len() == 2)).await;
    until(|| read.get("u-2").is_none()).await;
    assert_eq!(read.len(), 1);
}

#[tokio::test]
async fn a_table_holds_at_most_its_bytes_in_memory_dropping_the_least_recently_changed() {
    let transport = MemoryTransport::new();
    let worker = LiveCheck::builder().transport(transport.clone()).build();
    let checker = LiveCheck::builder().transport(transport.clone()).build();
    let written: Table<String> = Table::open_with_max_bytes(&worker, "users", 1_000).await.unwrap();
    let read: Table<String> = Table::open_with_max_bytes(&checker, "users", 1_000).await.unwrap();
    let big = "x".repeat(95);
    for i in 0..30 {
        written.set(&format!("u{i:02}"), big.clone()).await.unwrap();
    }
    // Each entry takes 3 + 97 bytes (key, and the value as JSON): ten fit.
    assert_eq!(written.len(), 10);
    assert!(written.get("u29").is_some() && written.get("u19").is_none(), "the newest are kept");
    assert_eq!(worker.metrics().table_entries_evicted, 20);
    // The follower of the changelog is bounded the same way.
    until(|| read.get("u29").is_some()).await;
    assert_eq!(read.len(), 10);
    assert_eq!(checker.metrics().table_entries_evicted, 20);
}

#[tokio::test]
async fn a_table_on_the_embedded_log_survives_a_restart() {
    let db = TempDb::new("table");
    let path = &db.0;
    {
        let app = LiveCheck::builder().transport(SqliteTransport::open(path).unwrap()).build();
        let table: Table<u32> = Table::open(&app, "totals").await.unwrap();
        for (key, value) in [("a", 1), ("b", 2), ("a", 3)] {
            table.set(key, value).await.unwrap();
        }
    }
    let app = LiveCheck::builder().transport(SqliteTransport::open(path).unwrap()).build();
    let table: Table<u32> = Table::open(&app, "totals").await.unwrap();
    assert_eq!((table.get("a"), table.get("b"), table.len()), (Some(3), Some(2), 2));
    drop(table);
}

/// A handler that fails on a transient error (its own publish hit a full disk, say) gets the message again, with
/// backoff, until it succeeds; a handler's other errors are logged and the agent goes on.
#[tokio::test(start_paused = true)]
async fn an_agent_retries_a_message_whose_handler_failed_on_a_transient_error() {
    let transport = MemoryTransport::with_partitions(1);
    let app = LiveCheck::builder().transport(transport.clone()).build();
    let orders: Topic<Order> = Topic::new(&app, "orders");
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let agent = {
        let attempts = attempts.clone();
        orders
            .agent("worker", 1, move |event| {
                let attempts = attempts.clone();
                async move {
                    let tries = {
                        let mut attempts = attempts.lock().unwrap();
                        attempts.push(event.value.id.clone());
                        attempts.iter().filter(|id| **id == event.value.id).count()
                    };
                    match (event.value.id.as_str(), tries) {
                        ("full-disk", 1 | 2) => Err(livecheck::Error::Transport {
                            context: "database or disk is full".into(),
                            retriable: true,
                            source: None,
                        })?,
                        ("bug", _) => anyhow::bail!("a bug in the handler"),
                        _ => Ok(()),
                    }
                }
            })
            .await
            .unwrap()
    };
    orders.send("a", &order("full-disk")).await.unwrap();
    orders.send("b", &order("bug")).await.unwrap();
    orders.send("c", &order("next")).await.unwrap();
    until(|| attempts.lock().unwrap().len() == 5).await;
    let expected = ["full-disk", "full-disk", "full-disk", "bug", "next"];
    assert_eq!(*attempts.lock().unwrap(), expected.map(str::to_owned));
    assert_eq!((app.metrics().stream_messages_retried, app.metrics().stream_messages_failed), (2, 0));
    agent.shutdown().await;
}
