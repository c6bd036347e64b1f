//! Consumes a subscription with bounded concurrency, committing offsets after processing.

use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    task::JoinSet,
};
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

enum Event {
    Shutdown,
    Finished(Result<(tokio::task::Id, Handled), tokio::task::JoinError>),
    Message(Result<(OwnedSemaphorePermit, Received)>),
}

/// Runs `handler` on every message of `subscription`, at most `concurrency` at a time, until `shutdown`; then
/// waits for the handlers in flight (they see the same token) and commits what they finished.
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
    let mut tasks: JoinSet<Handled> = JoinSet::new();
    let mut positions: HashMap<tokio::task::Id, (u32, u64)> = HashMap::new();
    loop {
        let event = tokio::select! {
            biased;
            _ = shutdown.cancelled() => Event::Shutdown,
            Some(finished) = tasks.join_next_with_id(), if !tasks.is_empty() => Event::Finished(finished),
            next = next_message(&permits, subscription.as_mut()) => Event::Message(next),
        };
        match event {
            Event::Shutdown => break,
            Event::Finished(finished) => finish(name, finished, &mut positions, &mut tracker, subscription.as_mut()),
            Event::Message(Ok((permit, received))) => {
                tracker.started(received.partition, received.offset);
                let position = (received.partition, received.offset);
                let work = handler(received);
                let task = tasks.spawn(async move {
                    let handled = work.await;
                    drop(permit);
                    handled
                });
                positions.insert(task.id(), position);
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
    while let Some(finished) = tasks.join_next_with_id().await {
        finish(name, finished, &mut positions, &mut tracker, subscription.as_mut());
    }
}

async fn next_message(
    permits: &Arc<Semaphore>,
    subscription: &mut dyn Subscription,
) -> Result<(OwnedSemaphorePermit, Received)> {
    let permit = permits.clone().acquire_owned().await.map_err(|_| crate::Error::Shutdown)?;
    Ok((permit, subscription.recv().await?))
}

fn finish(
    name: &'static str,
    finished: Result<(tokio::task::Id, Handled), tokio::task::JoinError>,
    positions: &mut HashMap<tokio::task::Id, (u32, u64)>,
    tracker: &mut OffsetTracker,
    subscription: &mut dyn Subscription,
) {
    let (id, handled) = match finished {
        Ok((id, handled)) => (id, handled),
        Err(error) => {
            // A bug in LiveCheck itself (test bodies' panics are caught): log it and move past the message.
            tracing::error!(consumer = name, %error, "message handler failed");
            (error.id(), Handled::Done)
        }
    };
    let Some((partition, offset)) = positions.remove(&id) else { return };
    if handled == Handled::Abandoned {
        return;
    }
    if let Some(next) = tracker.finished(partition, offset) {
        if let Err(error) = subscription.commit(partition, next) {
            tracing::warn!(consumer = name, %error, partition, "commit failed; will retry with the next one");
        }
    }
}
