//! Reading outside any group, with a consumer of its own: where each partition of a stream ends, and a partition's
//! messages from an offset on.

use std::{sync::Arc, time::Duration};

use rdkafka::{
    consumer::{BaseConsumer, Consumer},
    error::KafkaError,
    Message as _, Offset, TopicPartitionList,
};

use super::{kafka, message::received, KafkaTransport, REQUEST_TIMEOUT};
use crate::{transport::Received, Result};

impl KafkaTransport {
    /// A consumer outside any group, for metadata and reading; it tells when it reached a partition's end.
    pub(super) fn plain_consumer(&self) -> Result<BaseConsumer> {
        self.inner
            .config
            .clone()
            .set("group.id", format!("livecheck-reader-{:016x}", fastrand::u64(..)))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "10")
            .create()
            .map_err(|e| kafka("creating a consumer", e))
    }

    /// The next offset of each of the `partitions` partitions of `stream`. Blocks: for a blocking task.
    ///
    /// The watermark a ListOffsets request answers, then read on to each partition's end: some Kafka-compatible
    /// brokers (tansu 0.6) answer too low for batched messages, and what follows corrects it (on Kafka the end is
    /// reached at once).
    pub(super) fn partition_ends(&self, stream: &str, partitions: u32) -> Result<Vec<u64>> {
        let consumer = self.plain_consumer()?;
        let mut ends = Vec::with_capacity(partitions as usize);
        let mut assignment = TopicPartitionList::new();
        for p in 0..partitions {
            let (_, high) = consumer
                .fetch_watermarks(stream, p as i32, REQUEST_TIMEOUT)
                .map_err(|e| kafka(&format!("end of `{stream}` partition {p}"), e))?;
            ends.push(high.max(0) as u64);
            assignment
                .add_partition_offset(stream, p as i32, Offset::Offset(high.max(0)))
                .map_err(|e| kafka("assigning a partition", e))?;
        }
        consumer.assign(&assignment).map_err(|e| kafka("assigning partitions", e))?;
        let mut unknown: std::collections::HashSet<u32> = (0..partitions).collect();
        let started = std::time::Instant::now();
        let mut progress = vec![started; partitions as usize];
        let mut rescanned = vec![false; partitions as usize];
        while !unknown.is_empty() {
            if started.elapsed() >= 3 * REQUEST_TIMEOUT {
                return Err(kafka(&format!("the end of `{stream}`"), "timed out"));
            }
            match consumer.poll(Duration::from_millis(50)) {
                Some(Ok(message)) => {
                    let p = message.partition() as usize;
                    ends[p] = ends[p].max(message.offset() as u64 + 1);
                    progress[p] = std::time::Instant::now();
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    unknown.remove(&(p as u32));
                }
                // A broker restarting or away for a moment: librdkafka reconnects; the deadline bounds it.
                Some(Err(error)) => tracing::debug!(%error, %stream, "reading to the end: retrying"),
                None => {}
            }
            // A broker that cannot serve a fetch from inside a record batch (tansu 0.6, after its low answer)
            // makes no progress there: that partition is read from its beginning instead.
            for &p in &unknown {
                let i = p as usize;
                if !rescanned[i] && progress[i].elapsed() > Duration::from_secs(1) {
                    rescanned[i] = true;
                    progress[i] = std::time::Instant::now();
                    consumer
                        .seek(stream, p as i32, Offset::Beginning, REQUEST_TIMEOUT)
                        .map_err(|e| kafka(&format!("reading `{stream}` from its start"), e))?;
                }
            }
        }
        Ok(ends)
    }

    /// Up to `limit` messages of `partition` of `stream` from offset `from` on (fewer at its end). Blocks: for a
    /// blocking task.
    pub(super) fn read_partition(
        &self,
        stream: Arc<str>,
        partition: u32,
        from: u64,
        limit: usize,
    ) -> Result<Vec<Received>> {
        let consumer = self.plain_consumer()?;
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&stream, partition as i32, Offset::Offset(from as i64))
            .map_err(|e| kafka("assigning a partition", e))?;
        consumer.assign(&assignment).map_err(|e| kafka("assigning a partition", e))?;
        let mut read = Vec::new();
        // A long read on a slow broker is fine as long as it moves: the timeout is for no progress.
        let mut deadline = std::time::Instant::now() + REQUEST_TIMEOUT;
        while read.len() < limit {
            if std::time::Instant::now() >= deadline {
                return Err(kafka(&format!("reading `{stream}` partition {partition}"), "timed out"));
            }
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => {
                    read.push(received(stream.clone(), &message));
                    deadline = std::time::Instant::now() + REQUEST_TIMEOUT;
                }
                Some(Err(KafkaError::PartitionEOF(_))) => break,
                // A broker restarting or away for a moment: librdkafka reconnects; the deadline bounds it.
                Some(Err(error)) => tracing::debug!(%error, %stream, "reading: retrying"),
                None => {}
            }
        }
        Ok(read)
    }
}
