//! Consumes a stream in a group with a handler task per message, committing offsets only after processing: what
//! agents run on. (The LiveCheck instance's own member is `member.rs`.)

use std::{collections::VecDeque, future::Future, sync::Arc, time::Duration};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::offsets::OffsetTracker;
use crate::{
    error::with_causes,
    transport::{Delivery, Event as TransportEvent, Received, Subscription},
};

/// What the agent consumer's loop reacts to.
enum Event {
    Finished(Done),
    Transport(TransportEvent),
}

/// What a handler did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handled {
    /// Processed (or deliberately dropped): its offset may be committed.
    Done,
    /// Interrupted (shutdown, partition revoked): not committed, so it is delivered again.
    Abandoned,
}

/// How a message's handling ended, as the consumer loop learns it.
pub(crate) struct Done {
    pub(crate) partition: u32,
    pub(crate) offset: u64,
    pub(crate) handled: Handled,
    /// Where the report it produced landed, if any.
    pub(crate) report: Option<Delivery>,
    /// The bytes of the message it handled.
    pub(crate) bytes: usize,
}

/// Reports a message's end to the consumer loop when dropped: when its handler returned; if its task was dropped
/// before (runtime shutdown), as abandoned; if it panicked (a bug in LiveCheck itself), as done, so that the
/// message is passed over and later ones can still be committed.
pub(crate) struct Completion {
    done: Option<Done>,
    to: mpsc::UnboundedSender<Done>,
}

impl Completion {
    pub(crate) fn new(received: &Received, to: &mpsc::UnboundedSender<Done>) -> Self {
        let done = Done {
            partition: received.partition,
            offset: received.offset,
            handled: Handled::Abandoned,
            report: None,
            bytes: received.message.byte_len(),
        };
        Completion { done: Some(done), to: to.clone() }
    }

    /// Records how the handler ended.
    pub(crate) fn set(&mut self, handled: Handled, report: Option<Delivery>) {
        if let Some(done) = &mut self.done {
            done.handled = handled;
            done.report = report;
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        let Some(mut done) = self.done.take() else { return };
        if std::thread::panicking() {
            tracing::error!(partition = done.partition, offset = done.offset, "message handler panicked");
            done.handled = Handled::Done;
        }
        let _ = self.to.send(done);
    }
}

/// Runs `handler` on every message of `subscription` (of one stream), each in a task of its own, at most
/// `concurrency` at a time — beyond that the stream is paused, while assignment changes keep being handled —
/// until `shutdown`; then waits for the handlers in flight, commits what they finished and closes the subscription
/// (its commits are stored when this returns, until the transport's drop deadline at most). A revoked partition's
/// handlers are waited for, and their work committed, before it is let go. A subscription that stopped for good
/// (the log deleted) ends it too, said in `runs` (`/healthz` is 503 from then on).
pub(crate) async fn consume<H, F>(
    name: &'static str,
    stream: Arc<str>,
    mut subscription: Box<dyn Subscription>,
    concurrency: usize,
    runs: super::ConsumerRuns,
    shutdown: CancellationToken,
    handler: H,
) where
    H: Fn(Received) -> F,
    F: Future<Output = Handled> + Send + 'static,
{
    let mut consumer = AgentConsumer {
        name,
        stream,
        concurrency,
        tracker: OffsetTracker::default(),
        running: Default::default(),
        waiting: VecDeque::new(),
        paused: false,
        done: mpsc::unbounded_channel(),
    };
    let stopped = loop {
        let event = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break None,
            Some(done) = consumer.done.1.recv() => Ok(Event::Finished(done)),
            event = subscription.recv() => event.map(Event::Transport),
        };
        match event {
            Ok(Event::Finished(done)) => consumer.finished(done, subscription.as_mut()),
            Ok(Event::Transport(TransportEvent::Assigned(assignments))) => {
                for assignment in assignments {
                    let start = assignment.committed(&consumer.stream).map_or(0, |c| c.offset);
                    consumer.tracker.assigned(assignment.partition, start);
                }
            }
            Ok(Event::Transport(TransportEvent::Revoked(partitions))) => {
                consumer.revoked(&partitions, subscription.as_mut()).await
            }
            Ok(Event::Transport(TransportEvent::Message(received))) => consumer.waiting.push_back(received),
            Err(error) => {
                if let Some(cause) = subscription.stopped() {
                    tracing::error!(consumer = name, stream = %consumer.stream, error = %with_causes(&*cause),
                        "stopped consuming for good; the process must be restarted");
                    break Some(cause);
                }
                tracing::error!(consumer = name, error = %with_causes(&error), "receiving failed; retrying in 1 s");
                tokio::select! {
                    _ = shutdown.cancelled() => break None,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
        consumer.start_waiting(&handler, subscription.as_mut());
    };
    match stopped {
        Some(cause) => runs.stopped(&cause),
        None => runs.finished(),
    }
    while consumer.running.values().sum::<usize>() > 0 {
        let Some(done) = consumer.done.1.recv().await else { break };
        consumer.finished(done, subscription.as_mut());
    }
    // The last commits written and the group left before this ends (a drop would not wait for it).
    subscription.close().await;
}

struct AgentConsumer {
    name: &'static str,
    stream: Arc<str>,
    concurrency: usize,
    tracker: OffsetTracker,
    /// Handlers running, by partition.
    running: std::collections::HashMap<u32, usize>,
    /// Messages received while at the concurrency limit.
    waiting: VecDeque<Received>,
    paused: bool,
    done: (mpsc::UnboundedSender<Done>, mpsc::UnboundedReceiver<Done>),
}

impl AgentConsumer {
    fn start_waiting<H, F>(&mut self, handler: &H, subscription: &mut dyn Subscription)
    where
        H: Fn(Received) -> F,
        F: Future<Output = Handled> + Send + 'static,
    {
        while self.running.values().sum::<usize>() < self.concurrency {
            let Some(received) = self.waiting.pop_front() else { break };
            self.tracker.started(received.partition, received.offset, 0);
            *self.running.entry(received.partition).or_default() += 1;
            let mut completion = Completion::new(&received, &self.done.0);
            let work = handler(received);
            tokio::spawn(async move {
                let handled = work.await;
                completion.set(handled, None);
            });
        }
        // Up to another `concurrency` messages wait their turn; pausing and resuming is not free, so not at every
        // message.
        if !self.paused && self.waiting.len() >= self.concurrency {
            self.paused = true;
            subscription.pause(&self.stream);
        } else if self.paused && self.waiting.len() <= self.concurrency / 2 {
            self.paused = false;
            subscription.resume(&self.stream);
        }
    }

    fn finished(&mut self, done: Done, subscription: &mut dyn Subscription) {
        if let Some(running) = self.running.get_mut(&done.partition) {
            *running = running.saturating_sub(1);
        }
        if done.handled == Handled::Abandoned {
            return;
        }
        self.tracker.finished(done.partition, done.offset);
        self.commit(done.partition, subscription);
    }

    fn commit(&mut self, partition: u32, subscription: &mut dyn Subscription) {
        // A subscription that stopped for good (its log deleted) commits nothing more; why was logged once.
        if subscription.stopped().is_some() {
            return;
        }
        if let Some((next, _)) = self.tracker.commit_point(partition, 0) {
            if let Err(error) = subscription.commit(&self.stream, partition, next, "") {
                tracing::warn!(consumer = self.name, error = %with_causes(&error), partition, "commit failed; will retry with the next one");
            }
        }
    }

    /// Lets the handlers of revoked partitions finish, commits their work and forgets the partitions.
    async fn revoked(&mut self, partitions: &[u32], subscription: &mut dyn Subscription) {
        self.waiting.retain(|r| !partitions.contains(&r.partition));
        while partitions.iter().any(|p| self.running.get(p).is_some_and(|n| *n > 0)) {
            let Some(done) = self.done.1.recv().await else { break };
            self.finished(done, subscription);
        }
        for partition in partitions {
            self.commit(*partition, subscription);
            self.tracker.forget(*partition);
            self.running.remove(partition);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::transport::{MemoryTransport, Message, Transport};

    fn runs() -> crate::app::ConsumerRuns {
        let consumer = crate::app::Consumer { consumer: "agent", group: "g".into(), streams: vec!["s".into()] };
        crate::app::Consumers::default().run(consumer)
    }

    async fn publish_numbers(transport: &MemoryTransport, n: u8) {
        for i in 0..n {
            let message = Message { key: Some(format!("k{i}")), value: vec![i], ..Default::default() };
            transport.publish("s", message).await.unwrap();
        }
    }

    #[tokio::test]
    async fn handles_every_message_at_most_concurrency_at_a_time_and_commits() {
        let transport = MemoryTransport::with_partitions(3);
        publish_numbers(&transport, 100).await;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let shutdown = CancellationToken::new();
        let sub = transport.subscribe(&["s"], "g").await.unwrap();
        let task = tokio::spawn(consume("test", "s".into(), sub, 4, runs(), shutdown.clone(), {
            let (seen, running, most) = (seen.clone(), running.clone(), most.clone());
            move |r: Received| {
                let (seen, running, most) = (seen.clone(), running.clone(), most.clone());
                async move {
                    let now = running.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    most.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    seen.lock().unwrap().push(r.message.value[0]);
                    running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    Handled::Done
                }
            }
        }));
        while seen.lock().unwrap().len() < 100 {
            tokio::task::yield_now().await;
        }
        shutdown.cancel();
        task.await.unwrap();
        let mut seen = seen.lock().unwrap().clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..100).collect::<Vec<u8>>());
        assert!(most.load(std::sync::atomic::Ordering::SeqCst) <= 4);
        // Everything was committed: a new member of the group gets nothing but its assignment.
        let mut again = transport.subscribe(&["s"], "g").await.unwrap();
        assert!(matches!(again.try_recv().unwrap(), Some(TransportEvent::Assigned(_))));
        assert!(again.try_recv().unwrap().is_none());
    }

    #[tokio::test]
    async fn abandoned_messages_are_not_committed() {
        let transport = MemoryTransport::with_partitions(1);
        publish_numbers(&transport, 3).await;
        let shutdown = CancellationToken::new();
        let sub = transport.subscribe(&["s"], "g").await.unwrap();
        let token = shutdown.clone();
        let handled = Arc::new(Mutex::new(0));
        let task = tokio::spawn(consume("test", "s".into(), sub, 10, runs(), shutdown.clone(), {
            let handled = handled.clone();
            move |r: Received| {
                let token = token.clone();
                let handled = handled.clone();
                async move {
                    if r.message.value[0] == 1 {
                        token.cancelled().await;
                        return Handled::Abandoned;
                    }
                    *handled.lock().unwrap() += 1;
                    Handled::Done
                }
            }
        }));
        while *handled.lock().unwrap() < 2 {
            tokio::task::yield_now().await;
        }
        shutdown.cancel();
        task.await.unwrap();
        let mut again = transport.subscribe(&["s"], "g").await.unwrap();
        assert!(matches!(again.try_recv().unwrap(), Some(TransportEvent::Assigned(_))));
        let Some(TransportEvent::Message(first)) = again.try_recv().unwrap() else {
            panic!("the abandoned message again")
        };
        assert_eq!(first.message.value, vec![1]);
    }
}
