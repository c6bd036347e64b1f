//! Leader election as the Python original does it on Kafka: every candidate joins a group of its own on a
//! one-partition topic, and the member assigned that partition is the leader. When it dies, the group gives the
//! partition to another.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::Duration,
};

use rdkafka::{
    consumer::{BaseConsumer, Consumer},
    ClientConfig,
};

use super::{kafka, set_if_absent};
use crate::{
    transport::{drop_deadline::DropDeadline, Leadership},
    Error, Result,
};

/// Joins the election of `group` on `topic` (one partition).
pub(super) fn candidacy(config: ClientConfig, topic: &str, group: &str) -> Result<KafkaLeadership> {
    let mut config = config;
    set_if_absent(&mut config, "session.timeout.ms", "10000");
    set_if_absent(&mut config, "heartbeat.interval.ms", "1000");
    let consumer: BaseConsumer = config
        .set("group.id", format!("{group}-leader"))
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| kafka("creating a leader candidate", e))?;
    consumer.subscribe(&[topic]).map_err(|e| kafka(&format!("joining the election on `{topic}`"), e))?;
    let (leader, running) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(true)));
    let thread = {
        let (leader, running) = (leader.clone(), running.clone());
        std::thread::Builder::new()
            .name("livecheck-kafka-leader".into())
            .spawn(move || {
                while running.load(Ordering::Relaxed) {
                    // Polling serves the group's rebalances; the topic carries no messages.
                    let _ = consumer.poll(Duration::from_millis(100));
                    let holds = consumer.assignment().is_ok_and(|a| a.count() > 0);
                    leader.store(holds, Ordering::SeqCst);
                }
                leader.store(false, Ordering::SeqCst);
                consumer.unsubscribe();
            })
            .map_err(|e| Error::transport("starting the leader election thread", false, e))?
    };
    Ok(KafkaLeadership { leader, running, thread: Some(thread), drop_deadline: DropDeadline::default() })
}

pub(super) struct KafkaLeadership {
    leader: Arc<AtomicBool>,
    running: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    drop_deadline: DropDeadline,
}

impl KafkaLeadership {
    /// Dropping this waits for the thread (leaving the election's group) as `deadline` says.
    pub(super) fn with_drop_deadline(mut self, deadline: DropDeadline) -> Self {
        self.drop_deadline = deadline;
        self
    }
}

impl Leadership for KafkaLeadership {
    fn is_leader(&self) -> bool {
        self.leader.load(Ordering::SeqCst)
    }
}

impl Drop for KafkaLeadership {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            self.drop_deadline.join(thread, "the leader election's thread (leaving its group)");
        }
    }
}
