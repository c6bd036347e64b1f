//! What the behaviour tests share: an app on a shared in-memory transport, and ways to read what it published.
#![allow(dead_code, unreachable_pub)]

#[cfg(feature = "web")]
pub mod browser;
pub mod faulty;
pub mod hostile;
pub mod logs;
pub mod one_signal;
pub mod order;
#[cfg(feature = "kafka")]
pub mod tansu;

use std::time::Duration;

use livecheck::{
    transport::{Event, MemoryTransport, Message, Received, Subscription, Transport},
    wire::{SignalEvent, TestExecution, TestReport},
    Clock, LiveCheck, LiveCheckBuilder,
};

/// A builder on `transport` whose wall clock follows tokio's paused clock.
pub fn builder(transport: &MemoryTransport) -> LiveCheckBuilder {
    LiveCheck::builder().transport(transport.clone()).clock(Clock::follow_tokio())
}

/// The reports published so far, in publication order per partition.
pub fn reports(transport: &MemoryTransport) -> Vec<TestReport> {
    decode_all(transport, "livecheck-report")
}

/// The executions published so far.
pub fn executions(transport: &MemoryTransport) -> Vec<(String, TestExecution)> {
    transport
        .messages("livecheck")
        .into_iter()
        .map(|r| (r.message.key.clone().unwrap(), serde_json::from_slice(&r.message.value).unwrap()))
        .collect()
}

/// The signals published so far, with their messages.
pub fn signals(transport: &MemoryTransport) -> Vec<(Message, SignalEvent)> {
    transport
        .messages("livecheck-bus")
        .into_iter()
        .map(|r| ((*r.message).clone(), serde_json::from_slice(&r.message.value).unwrap()))
        .collect()
}

fn decode_all<T: serde::de::DeserializeOwned>(transport: &MemoryTransport, stream: &str) -> Vec<T> {
    transport.messages(stream).into_iter().map(|r| serde_json::from_slice(&r.message.value).unwrap()).collect()
}

/// Reads reports as they are published.
pub struct ReportReader(Box<dyn Subscription>);

impl ReportReader {
    pub async fn new(transport: &MemoryTransport) -> Self {
        ReportReader(transport.subscribe(&["livecheck-report"], "test-reader").await.unwrap())
    }

    /// The next report; panics if none comes within `within` (of paused time).
    pub async fn next(&mut self, within: Duration) -> TestReport {
        self.next_within(within).await.expect("a report in time")
    }

    /// Whether a report is published within `within`.
    pub async fn next_within(&mut self, within: Duration) -> Option<TestReport> {
        let received = tokio::time::timeout(within, next_message(&mut self.0)).await.ok()?;
        Some(serde_json::from_slice(&received.message.value).unwrap())
    }
}

/// The next message of a subscription, passing over assignment events.
pub async fn next_message(subscription: &mut Box<dyn Subscription>) -> Received {
    loop {
        if let Event::Message(received) = subscription.recv().await.unwrap() {
            return received;
        }
    }
}

/// Every message of `stream` now, outside any group, partition by partition.
pub async fn read_all(transport: &dyn Transport, stream: &str) -> Vec<Received> {
    let mut all = Vec::new();
    for (partition, end) in transport.end_offsets(stream).await.unwrap().into_iter().enumerate() {
        let mut next = 0;
        while next < end {
            let page = transport.read(stream, partition as u32, next, 1000).await.unwrap();
            let Some(last) = page.last() else { break };
            next = last.offset + 1;
            all.extend(page);
        }
    }
    all
}

/// Publishes a raw message on the pending-tests stream.
pub async fn publish_raw(transport: &MemoryTransport, stream: &str, key: &str, value: &[u8]) {
    let message = Message { key: Some(key.to_owned()), value: value.to_vec(), headers: Default::default() };
    transport.publish(stream, message).await.unwrap();
}

/// Lets the instance's tasks run until nothing is left to do now (paused time does not move).
pub async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

/// Polls `cond` while letting tasks (and paused time, in 1 ms steps) run; panics after `within`.
pub async fn until(within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "condition not reached within {within:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// An SQLite database file in the temp directory, removed (with its WAL files) when dropped.
pub struct TempDb(pub std::path::PathBuf);

impl TempDb {
    pub fn new(name: &str) -> Self {
        TempDb(std::env::temp_dir().join(format!("livecheck-{name}-{}.sqlite3", fastrand::u64(..))))
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        // `.created` marks a log made there (see the transport's identity check).
        for suffix in ["", "-wal", "-shm", ".created"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}
