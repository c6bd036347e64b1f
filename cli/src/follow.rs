//! Following a stream outside any consumer group: every partition is read from a position of our own with the
//! transport's `read`, nothing is committed, and no group is joined, so the instances' work is not disturbed.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use livecheck::transport::{Received, Transport};
use tokio::task::JoinSet;

/// Most messages read from one partition at a time.
const BATCH: usize = 500;

/// How often the stream's partition count and ends are looked at again (new partitions, a recreated stream).
const RECHECK_EVERY: Duration = Duration::from_secs(5);

/// Where we are in each partition of one stream.
pub(crate) struct StreamFollower {
    transport: Arc<dyn Transport>,
    stream: Arc<str>,
    /// The next offset to read, per partition.
    next: Vec<u64>,
    checked_at: Instant,
}

/// Where a follower starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Start {
    /// After what the stream holds now: only what is published from here on.
    End,
    /// At the oldest message still kept.
    Beginning,
}

impl StreamFollower {
    /// Follows `stream` from `start`. Looking up its partitions creates the stream when it does not exist yet.
    pub(crate) async fn new(transport: Arc<dyn Transport>, stream: &str, start: Start) -> livecheck::Result<Self> {
        let ends = transport.end_offsets(stream).await?;
        let next = match start {
            Start::End => ends,
            Start::Beginning => vec![0; ends.len()],
        };
        Ok(StreamFollower { transport, stream: stream.into(), next, checked_at: Instant::now() })
    }

    /// The stream's name.
    pub(crate) fn stream(&self) -> &str {
        &self.stream
    }

    /// How many partitions are followed.
    pub(crate) fn partitions(&self) -> usize {
        self.next.len()
    }

    /// What was published since the last call (up to a batch per partition), in order within each partition;
    /// empty when nothing was. Every few seconds, also picks up partitions added to the stream since.
    ///
    /// Not cancellation safe: messages read by a call that is dropped before it returns are not read again.
    pub(crate) async fn poll(&mut self) -> anyhow::Result<Vec<Received>> {
        if self.checked_at.elapsed() >= RECHECK_EVERY {
            self.recheck().await?;
        }
        let mut reads = JoinSet::new();
        for (partition, &from) in self.next.iter().enumerate() {
            let (transport, stream) = (self.transport.clone(), self.stream.clone());
            reads.spawn(async move { (partition, transport.read(&stream, partition as u32, from, BATCH).await) });
        }
        let mut batches = Vec::with_capacity(self.next.len());
        while let Some(joined) = reads.join_next().await {
            let (partition, read) =
                joined.map_err(|error| anyhow::anyhow!("reading `{}` stopped: {error}", self.stream))?;
            batches.push((partition, read?));
        }
        batches.sort_by_key(|(partition, _)| *partition);
        let mut received = Vec::new();
        for (partition, batch) in batches {
            // A message the transport cannot give (a poison row) is left out of a read: go on after the last one.
            if let Some(last) = batch.last() {
                self.next[partition] = self.next[partition].max(last.offset + 1);
            }
            received.extend(batch);
        }
        Ok(received)
    }

    /// Looks at the stream's ends: follows new partitions from their start, goes on past messages that cannot be
    /// read, and starts over where a partition went back (a stream deleted and created again).
    async fn recheck(&mut self) -> livecheck::Result<()> {
        self.checked_at = Instant::now();
        let ends = self.transport.end_offsets(&self.stream).await?;
        for (partition, &end) in ends.iter().enumerate() {
            let Some(next) = self.next.get(partition).copied() else {
                // A partition added since: all of it is new.
                self.next.push(0);
                continue;
            };
            if end < next {
                crate::output::warn(&format!(
                    "livecheck: warning: `{}` partition {partition} went back from offset {next} to {end} (was the \
                     stream created again?); following it from {end}",
                    self.stream
                ));
                self.next[partition] = end;
            } else if end > next && self.transport.read(&self.stream, partition as u32, next, BATCH).await?.is_empty() {
                // Known to exist (below the end), yet nothing of it can be read: a run of unreadable messages.
                let skip_to = end.min(next + BATCH as u64);
                crate::output::warn(&format!(
                    "livecheck: warning: `{}` partition {partition}: offsets {next}..{skip_to} cannot be read; \
                     skipped",
                    self.stream
                ));
                self.next[partition] = skip_to;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use livecheck::transport::{MemoryTransport, Message};

    use super::*;

    async fn publish(transport: &MemoryTransport, key: &str, value: &str) {
        let message = Message { key: Some(key.into()), value: value.as_bytes().to_vec(), headers: Default::default() };
        transport.publish("s", message).await.unwrap();
    }

    fn values(received: &[Received]) -> Vec<String> {
        let mut values: Vec<_> = received.iter().map(|r| String::from_utf8(r.message.value.clone()).unwrap()).collect();
        values.sort();
        values
    }

    #[tokio::test]
    async fn from_the_end_sees_only_what_comes_after_and_from_the_beginning_sees_all() {
        let transport = MemoryTransport::new();
        transport.create_stream("s", 4).await.unwrap();
        publish(&transport, "a", "old-a").await;
        publish(&transport, "b", "old-b").await;
        let shared: Arc<dyn Transport> = Arc::new(transport.clone());
        let mut from_end = StreamFollower::new(shared.clone(), "s", Start::End).await.unwrap();
        let mut from_start = StreamFollower::new(shared, "s", Start::Beginning).await.unwrap();
        assert_eq!(from_end.partitions(), 4);
        assert!(from_end.poll().await.unwrap().is_empty());
        for key in ["a", "b", "c", "d", "e"] {
            publish(&transport, key, &format!("new-{key}")).await;
        }
        assert_eq!(values(&from_end.poll().await.unwrap()), ["new-a", "new-b", "new-c", "new-d", "new-e"]);
        assert!(from_end.poll().await.unwrap().is_empty(), "each message once");
        let all = values(&from_start.poll().await.unwrap());
        assert_eq!(all.len(), 7);
        assert!(all.contains(&"old-a".to_owned()));
    }

    #[tokio::test]
    async fn a_busy_partition_is_read_in_batches_without_losing_any() {
        let transport = MemoryTransport::new();
        transport.create_stream("s", 1).await.unwrap();
        let shared: Arc<dyn Transport> = Arc::new(transport.clone());
        let mut follower = StreamFollower::new(shared, "s", Start::End).await.unwrap();
        for i in 0..(BATCH + 20) {
            publish(&transport, "k", &format!("{i:05}")).await;
        }
        let first = follower.poll().await.unwrap();
        let second = follower.poll().await.unwrap();
        assert_eq!((first.len(), second.len()), (BATCH, 20));
        assert_eq!(second.last().unwrap().offset, (BATCH + 19) as u64);
    }
}
