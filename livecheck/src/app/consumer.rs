//! Consumes a subscription, committing offsets only after processing.

use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::offsets::OffsetTracker;
use crate::{
    transport::{Received, Subscription},
    Result,
};

/// What a handler did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handled {
    /// Processed (or deliberately dropped): its offset may be committed.
    Done,
    /// Interrupted by shutdown: not committed, so it is delivered again after a restart.
    Abandoned,
}

/// Reports a message's end to the consumer loop when dropped: when its handler returned; if its task was dropped
/// before (runtime shutdown), as abandoned; if it panicked (a bug in LiveCheck itself), as done, so that the
/// message is passed over and later ones can still be committed.
struct Completion {
    partition: u32,
    offset: u64,
    handled: Handled,
    done: mpsc::UnboundedSender<(u32, u64, Handled)>,
}

impl Drop for Completion {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!(partition = self.partition, offset = self.offset, "message handler panicked");
            self.handled = Handled::Done;
        }
        let _ = self.done.send((self.partition, self.offset, self.handled));
    }
}

enum Event {
    Shutdown,
    Finished((u32, u64, Handled)),
    Message(Result<(OwnedSemaphorePermit, Received)>),
}

/// Runs `handler` on every message of `subscription`, each in a task of its own, at most `concurrency` at a
/// time, until `shutdown`; then waits for the handlers in flight (they see the same token) and commits what they
/// finished.
pub(crate) async fn consume<H, F>(
    name: &'static str,
    mut subscription: Box<dyn Subscription>,
    concurrency: usize,
    shutdown: CancellationToken,
    handler: H,
) where
    H: Fn(Received) -> F,
    F: Future<Output = Handled> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut tracker = OffsetTracker::default();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut in_flight = 0usize;
    loop {
        let event = tokio::select! {
            biased;
            _ = shutdown.cancelled() => Event::Shutdown,
            Some(finished) = done_rx.recv() => Event::Finished(finished),
            next = next_message(&permits, subscription.as_mut()) => Event::Message(next),
        };
        match event {
            Event::Shutdown => break,
            Event::Finished(finished) => {
                in_flight -= 1;
                commit(name, finished, &mut tracker, subscription.as_mut());
            }
            Event::Message(Ok((permit, received))) => {
                tracker.started(received.partition, received.offset);
                let mut completion = Completion {
                    partition: received.partition,
                    offset: received.offset,
                    handled: Handled::Abandoned,
                    done: done_tx.clone(),
                };
                let work = handler(received);
                in_flight += 1;
                tokio::spawn(async move {
                    completion.handled = work.await;
                    drop(permit);
                    drop(completion);
                });
            }
            Event::Message(Err(error)) => {
                tracing::error!(consumer = name, %error, "receiving failed; retrying in 1 s");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
    while in_flight > 0 {
        let Some(finished) = done_rx.recv().await else {
            break;
        };
        in_flight -= 1;
        commit(name, finished, &mut tracker, subscription.as_mut());
    }
}

async fn next_message(
    permits: &Arc<Semaphore>,
    subscription: &mut dyn Subscription,
) -> Result<(OwnedSemaphorePermit, Received)> {
    let permit = permits.clone().acquire_owned().await.map_err(|_| crate::Error::Shutdown)?;
    Ok((permit, subscription.recv().await?))
}

fn commit(
    name: &'static str,
    (partition, offset, handled): (u32, u64, Handled),
    tracker: &mut OffsetTracker,
    subscription: &mut dyn Subscription,
) {
    if handled == Handled::Abandoned {
        return;
    }
    if let Some(next) = tracker.finished(partition, offset) {
        if let Err(error) = subscription.commit(partition, next) {
            tracing::warn!(consumer = name, %error, partition, "commit failed; will retry with the next one");
        }
    }
}

/// Runs a handler that never waits on every message of `subscription`, in order, taking up to `batch` ready
/// messages at a time and committing after each batch; until `shutdown`.
pub(crate) async fn consume_inline(
    name: &'static str,
    mut subscription: Box<dyn Subscription>,
    batch: usize,
    shutdown: CancellationToken,
    mut handler: impl FnMut(&Received),
) {
    let mut done: HashMap<u32, u64> = HashMap::new();
    loop {
        let first = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            first = subscription.recv() => first,
        };
        let mut next = first.map(Some);
        let mut handled = 0;
        loop {
            match next {
                Ok(Some(received)) => {
                    handler(&received);
                    done.insert(received.partition, received.offset + 1);
                    handled += 1;
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::error!(consumer = name, %error, "receiving failed; retrying in 1 s");
                    tokio::select! {
                        _ = shutdown.cancelled() => {}
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                    break;
                }
            }
            if handled >= batch {
                break;
            }
            next = subscription.try_recv();
        }
        for (partition, next_offset) in done.drain() {
            if let Err(error) = subscription.commit(partition, next_offset) {
                tracing::warn!(consumer = name, %error, partition, "commit failed; will retry with the next one");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::transport::{MemoryTransport, Message, Transport};

    #[tokio::test]
    async fn inline_consumer_handles_every_message_across_batch_boundaries_and_commits() {
        let transport = MemoryTransport::with_partitions(3);
        for i in 0..100 {
            let message = Message { key: Some(format!("k{i}")), value: vec![i as u8], ..Default::default() };
            transport.publish("s", message).await.unwrap();
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let shutdown = CancellationToken::new();
        let sub = transport.subscribe("s", "g").await.unwrap();
        let task = tokio::spawn(consume_inline("test", sub, 7, shutdown.clone(), {
            let seen = seen.clone();
            move |r: &Received| seen.lock().unwrap().push(r.message.value[0])
        }));
        while seen.lock().unwrap().len() < 100 {
            tokio::task::yield_now().await;
        }
        shutdown.cancel();
        task.await.unwrap();
        let mut seen = seen.lock().unwrap().clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..100).collect::<Vec<u8>>());
        // Everything was committed: a new member of the group gets nothing.
        let mut again = transport.subscribe("s", "g").await.unwrap();
        assert!(again.try_recv().unwrap().is_none());
    }

    #[tokio::test]
    async fn abandoned_messages_are_not_committed() {
        let transport = MemoryTransport::with_partitions(1);
        for i in 0..3u8 {
            transport
                .publish("s", Message { key: Some("k".into()), value: vec![i], ..Default::default() })
                .await
                .unwrap();
        }
        let shutdown = CancellationToken::new();
        let sub = transport.subscribe("s", "g").await.unwrap();
        let token = shutdown.clone();
        let handled = Arc::new(Mutex::new(0));
        let task = tokio::spawn(consume("test", sub, 10, shutdown.clone(), {
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
        let mut again = transport.subscribe("s", "g").await.unwrap();
        let first = again.try_recv().unwrap().expect("the abandoned message is delivered again");
        assert_eq!(first.message.value, vec![1]);
    }
}
