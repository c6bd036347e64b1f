//! Which of the app's consumers still run — the instance's group member for tests and signals, each agent, each
//! table following its changelog — and, for each that stopped without being asked to, which it was and why: what
//! `/healthz` reports. A consumer holds a [`ConsumerRuns`] while it runs and says how it ended; a consumer that
//! ended any other way (its task panicked or was dropped) counts as stopped too.

use std::{collections::HashMap, sync::Arc, sync::Mutex};

use serde::Serialize;

use crate::{sync::lock, Error};

/// The app's consumers, shared by the consumers themselves and the health check. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub(crate) struct Consumers(Arc<Mutex<Registered>>);

#[derive(Debug, Default)]
struct Registered {
    next_id: u64,
    running: HashMap<u64, Consumer>,
    /// Those that stopped without being asked to, in the order they stopped.
    stopped: Vec<StoppedConsumer>,
}

/// One consumer: what it consumes for, its group and its streams.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Consumer {
    /// `tests and signals` (the instance's member), `agent` or `table`.
    pub(crate) consumer: &'static str,
    pub(crate) group: String,
    pub(crate) streams: Vec<String>,
}

/// A consumer that stopped without being asked to, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct StoppedConsumer {
    #[serde(flatten)]
    pub(crate) consumer: Consumer,
    /// The error that stopped it (with its causes), or how its task ended.
    pub(crate) reason: String,
}

impl Consumers {
    /// Registers `consumer` as running, until the returned value says how it ended.
    pub(crate) fn run(&self, consumer: Consumer) -> ConsumerRuns {
        let mut registered = lock(&self.0);
        let id = registered.next_id;
        registered.next_id += 1;
        registered.running.insert(id, consumer);
        ConsumerRuns { consumers: self.clone(), id, ended: false }
    }

    /// The consumers that stopped without being asked to (empty while all run).
    #[cfg(any(feature = "web", test))]
    pub(crate) fn stopped(&self) -> Vec<StoppedConsumer> {
        lock(&self.0).stopped.clone()
    }

    fn end(&self, id: u64, reason: Option<String>) {
        let mut registered = lock(&self.0);
        let Some(consumer) = registered.running.remove(&id) else { return };
        if let Some(reason) = reason {
            registered.stopped.push(StoppedConsumer { consumer, reason });
        }
    }
}

/// A running consumer's registration: says how it ended, when it ends.
#[must_use = "the consumer counts as stopped once this is dropped"]
pub(crate) struct ConsumerRuns {
    consumers: Consumers,
    id: u64,
    ended: bool,
}

impl ConsumerRuns {
    /// The consumer stopped for good on its own, because of `cause`: listed as stopped from now on.
    pub(crate) fn stopped(mut self, cause: &Error) {
        self.ended = true;
        self.consumers.end(self.id, Some(crate::error::with_causes(cause)));
    }

    /// The consumer ended because it was asked to (its agent or table was shut down): no longer listed.
    pub(crate) fn finished(mut self) {
        self.ended = true;
        self.consumers.end(self.id, None);
    }
}

impl Drop for ConsumerRuns {
    fn drop(&mut self) {
        if !self.ended {
            let how = if std::thread::panicking() { "its task panicked" } else { "its task ended" };
            self.consumers.end(self.id, Some(how.to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member() -> Consumer {
        Consumer { consumer: "tests and signals", group: "g".into(), streams: vec!["t".into(), "b".into()] }
    }

    #[test]
    fn a_consumer_is_listed_as_stopped_when_it_stops_on_its_own_or_its_task_ends_not_when_asked_to() {
        let consumers = Consumers::default();
        consumers.run(member()).finished();
        assert_eq!(consumers.stopped(), [], "asked to stop");

        let running = consumers.run(member());
        assert_eq!(consumers.stopped(), []);
        running.stopped(&Error::transport("the group member stopped", false, std::io::Error::other("log deleted")));
        let stopped = consumers.stopped();
        assert_eq!(stopped.len(), 1);
        assert_eq!(stopped[0].consumer, member());
        assert_eq!(stopped[0].reason, "transport: the group member stopped: log deleted");

        drop(consumers.run(member()));
        assert_eq!(consumers.stopped()[1].reason, "its task ended");
        let panicked = std::thread::spawn({
            let consumers = consumers.clone();
            move || {
                let _runs = consumers.run(member());
                panic!("a bug");
            }
        });
        assert!(panicked.join().is_err());
        assert_eq!(consumers.stopped()[2].reason, "its task panicked");
    }
}
