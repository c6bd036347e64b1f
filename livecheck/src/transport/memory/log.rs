//! A stream in memory: its partitions as queues of messages numbered by offset, the oldest dropped past the
//! retention, and the wake-ups of the subscriptions that read it.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, Weak},
};

use tokio::sync::Notify;

use crate::{
    sync::lock,
    transport::{partition_for_key, Delivery, Message, Received},
};

/// One stream's partitions.
pub(super) struct StreamLog {
    pub(super) partitions: Vec<Mutex<PartitionLog>>,
    /// The wake-ups of the subscriptions reading this stream.
    pub(super) watchers: Watchers,
}

/// The messages a partition still holds.
#[derive(Default)]
pub(super) struct PartitionLog {
    /// Offset of `messages[0]`.
    pub(super) base: u64,
    pub(super) messages: VecDeque<Arc<Message>>,
}

/// Wake-ups of subscriptions; each keeps a permit until its subscription next waits, so none is lost.
#[derive(Default)]
pub(super) struct Watchers(Mutex<Vec<Weak<Notify>>>);

impl Watchers {
    pub(super) fn add(&self, wake: &Arc<Notify>) {
        lock(&self.0).push(Arc::downgrade(wake));
    }

    pub(super) fn wake(&self) {
        lock(&self.0).retain(|w| match w.upgrade() {
            Some(wake) => {
                wake.notify_one();
                true
            }
            None => false,
        });
    }
}

impl StreamLog {
    /// An empty stream of `partitions` partitions (at least one).
    pub(super) fn new(partitions: u32) -> Self {
        StreamLog {
            partitions: (0..partitions.max(1)).map(|_| Mutex::default()).collect(),
            watchers: Watchers::default(),
        }
    }

    /// How many partitions it has.
    pub(super) fn partition_count(&self) -> u32 {
        self.partitions.len() as u32
    }

    /// Appends `message` to the partition its key hashes to (a random one without a key), keeping the newest
    /// `retention` messages of that partition, and wakes the readers.
    pub(super) fn append(&self, message: Message, retention: usize) -> Delivery {
        let partition = match &message.key {
            Some(key) => partition_for_key(key.as_bytes(), self.partition_count()),
            None => fastrand::u32(..self.partition_count()),
        };
        let mut evicted = Vec::new();
        let offset = {
            let mut part = lock(&self.partitions[partition as usize]);
            part.messages.push_back(Arc::new(message));
            while part.messages.len() > retention {
                evicted.extend(part.messages.pop_front());
                part.base += 1;
            }
            part.base + part.messages.len() as u64 - 1
        };
        // Freed after the lock is released: consumers of the partition need not wait for it.
        drop(evicted);
        self.watchers.wake();
        Delivery { partition, offset }
    }

    /// The next offset of each partition.
    pub(super) fn end_offsets(&self) -> Vec<u64> {
        let ends = self.partitions.iter().map(|p| {
            let p = lock(p);
            p.base + p.messages.len() as u64
        });
        ends.collect()
    }

    /// Up to `limit` messages of `partition` from offset `from` (or from the oldest retained, if later); none for a
    /// partition it does not have. `name` is the stream's.
    pub(super) fn read(&self, name: &Arc<str>, partition: u32, from: u64, limit: usize) -> Vec<Received> {
        let Some(part) = self.partitions.get(partition as usize) else {
            return Vec::new();
        };
        let part = lock(part);
        let first = from.max(part.base);
        let skip = (first - part.base) as usize;
        part.messages
            .iter()
            .skip(skip)
            .take(limit)
            .enumerate()
            .map(|(i, message)| Received {
                stream: name.clone(),
                partition,
                offset: first + i as u64,
                message: message.clone(),
            })
            .collect()
    }

    /// Every message still retained, in partition then offset order. `name` is the stream's.
    pub(super) fn retained(&self, name: &Arc<str>) -> Vec<Received> {
        let mut all = Vec::new();
        for (p, partition) in self.partitions.iter().enumerate() {
            let partition = lock(partition);
            for (i, message) in partition.messages.iter().enumerate() {
                all.push(Received {
                    stream: name.clone(),
                    partition: p as u32,
                    offset: partition.base + i as u64,
                    message: message.clone(),
                });
            }
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{msg, recv};
    use crate::transport::{MemoryTransport, Transport};

    #[tokio::test]
    async fn same_key_same_partition_in_order() {
        let t = MemoryTransport::new();
        let a = t.publish("s", msg("k", "1")).await.unwrap();
        let b = t.publish("s", msg("k", "2")).await.unwrap();
        assert_eq!(a.partition, b.partition);
        assert_eq!(b.offset, a.offset + 1);
        let mut sub = t.subscribe(&["s"], "g").await.unwrap();
        assert_eq!(recv(&mut sub).await.message.value, b"1");
        assert_eq!(recv(&mut sub).await.message.value, b"2");
    }

    #[tokio::test]
    async fn retention_drops_the_oldest_messages() {
        let t = MemoryTransport::with_partitions(1).with_retention(2);
        for i in 0..5 {
            t.publish("s", msg("k", &i.to_string())).await.unwrap();
        }
        let kept: Vec<_> = t.messages("s").into_iter().map(|r| (r.offset, r.message.value.clone())).collect();
        assert_eq!(kept, vec![(3, b"3".to_vec()), (4, b"4".to_vec())]);
        let mut sub = t.subscribe(&["s"], "g").await.unwrap();
        assert_eq!(recv(&mut sub).await.offset, 3);
        let read = t.read("s", 0, 0, 10).await.unwrap();
        assert_eq!(read.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![3, 4]);
        assert!(t.read("s", 0, 5, 10).await.unwrap().is_empty());
    }
}
