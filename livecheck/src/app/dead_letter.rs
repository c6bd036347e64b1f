//! Poison messages kept for a look later: with a dead-letter stream configured, a message the instance cannot read
//! (too large, not what it should be) is copied there, with why and where it came from, before it is skipped.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::LiveCheck;
use crate::{
    error::with_causes,
    transport::{Message, Received},
};

/// Why a message went to the dead letters (header `LiveCheck-Dead-Letter-Cause`).
pub(crate) const TOO_LARGE: &str = "too_large";
/// The message does not decode into what its stream carries.
pub(crate) const MALFORMED: &str = "malformed";

/// Copies on their way at once (each at most `max_message_bytes`); past it, a dead letter is dropped (counted)
/// rather than held in memory.
const MAX_IN_FLIGHT: usize = 32;
/// The most of an error message kept in a header.
const MAX_ERROR_BYTES: usize = 1024;

/// The dead-letter stream and the copies on their way to it.
pub(crate) struct DeadLetters {
    stream: String,
    in_flight: Arc<Semaphore>,
}

impl DeadLetters {
    pub(crate) fn new(stream: String) -> Self {
        DeadLetters { stream, in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)) }
    }
}

/// Copies `received` to the app's dead-letter stream, if it has one, in the background: its key and headers, its
/// value (cut at `max_message_bytes`), and headers saying why (`cause`, `error`) and where from (stream,
/// partition, offset). Never waits: the consumer goes on with the next message.
pub(crate) fn copy(app: &LiveCheck, received: &Received, cause: &'static str, error: &str) {
    let shared = &app.shared;
    let Some(dead) = &shared.dead_letters else { return };
    let metrics = &shared.metrics;
    // A stream read back as its own dead letters (a consumer of it) would copy its poison forever.
    if *received.stream == *dead.stream {
        return;
    }
    let Ok(permit) = dead.in_flight.clone().try_acquire_owned() else {
        metrics.dead_letters_failed.inc();
        if metrics.first_time("dead letters behind") {
            tracing::warn!(stream = %dead.stream, "too many dead letters on their way; dropping one (logged once)");
        }
        return;
    };
    let original = &received.message;
    let limit = shared.config.max_message_bytes;
    let mut headers = original.headers.clone();
    headers.push("LiveCheck-Dead-Letter-Cause", cause);
    headers.push("LiveCheck-Dead-Letter-Error", crate::shown::cut(error, MAX_ERROR_BYTES).to_owned());
    headers.push("LiveCheck-Dead-Letter-Stream", received.stream.to_string());
    headers.push("LiveCheck-Dead-Letter-Partition", received.partition.to_string());
    headers.push("LiveCheck-Dead-Letter-Offset", received.offset.to_string());
    if original.value.len() > limit {
        headers.push("LiveCheck-Dead-Letter-Truncated-From", original.value.len().to_string());
    }
    let value = original.value[..original.value.len().min(limit)].to_vec();
    let message = Message { key: original.key.clone(), value, headers };
    let (app, stream) = (app.clone(), dead.stream.clone());
    tokio::spawn(async move {
        let metrics = &app.shared.metrics;
        match app.shared.transport.publish(&stream, message).await {
            Ok(_) => metrics.dead_letters_published.inc(),
            Err(error) => {
                metrics.dead_letters_failed.inc();
                if metrics.first_time("dead letter failed") {
                    tracing::warn!(%stream, error = %with_causes(&error), "a dead letter could not be published (logged once)");
                }
            }
        }
        drop(permit);
    });
}
