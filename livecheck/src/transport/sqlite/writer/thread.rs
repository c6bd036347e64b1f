//! The writer's thread: it takes what is queued in batches (group commit), appends each batch in one transaction,
//! resolves its publishes, answers flushes, and now and then deletes old messages.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        mpsc, Arc,
    },
    time::Instant,
};

use rusqlite::Connection;

use super::{GivenUpAt, Publish, Request, Retention, MAX_BATCH};
use crate::{error::with_causes, transport::sqlite::identity::FileIdentity, Error};

pub(super) struct WriterThread {
    pub(super) connection: Connection,
    pub(super) default_partitions: u32,
    pub(super) retention: Retention,
    /// Each stream's partition count, once read or created.
    pub(super) partitions: HashMap<String, u32>,
    next_retention: Instant,
    identity: FileIdentity,
    /// Whether the last check found the log's file gone (logged once per change).
    file_gone: bool,
    /// Appends that found their offset taken by a row written behind the writer's back, and moved past it.
    pub(super) healed: Arc<AtomicU64>,
    /// Set by the handle's drop: past it, nothing more is written.
    pub(super) given_up_at: GivenUpAt,
}

impl WriterThread {
    pub(super) fn new(
        connection: Connection,
        default_partitions: u32,
        retention: Retention,
        identity: FileIdentity,
        healed: Arc<AtomicU64>,
        given_up_at: GivenUpAt,
    ) -> Self {
        WriterThread {
            connection,
            default_partitions,
            retention,
            partitions: HashMap::new(),
            next_retention: Instant::now() + retention.every,
            identity,
            file_gone: false,
            healed,
            given_up_at,
        }
    }

    /// Writes what comes until the handle is dropped and everything queued before is handled.
    pub(super) fn run(mut self, requests: mpsc::Receiver<Request>, queued: &AtomicUsize) {
        while let Ok(first) = requests.recv() {
            let (mut batch, mut flushes) = (Vec::new(), Vec::new());
            let mut bytes = 0;
            for request in std::iter::once(first).chain(requests.try_iter().take(MAX_BATCH - 1)) {
                bytes += request.queued_size();
                match request {
                    Request::Publish(publish) => batch.push(publish),
                    Request::Flush(done) => flushes.push(done),
                }
            }
            if !batch.is_empty() {
                self.write(batch);
            }
            // Written or failed: no longer waiting.
            queued.fetch_sub(bytes, Ordering::SeqCst);
            for done in flushes {
                let _ = done.send(());
            }
            if Instant::now() >= self.next_retention {
                self.next_retention = Instant::now() + self.retention.every;
                if let Err(error) = self.apply_retention() {
                    tracing::warn!(%error, "deleting old messages from the embedded log failed");
                }
            }
        }
    }

    /// Appends the batch in one transaction and resolves each publish.
    fn write(&mut self, batch: Vec<Publish>) {
        let (done, work): (Vec<_>, Vec<_>) = batch.into_iter().map(|p| (p.done, (p.stream, p.message))).unzip();
        // Writing into a deleted file would be acknowledged and lost: every publish fails instead.
        if let Err(gone) = self.identity.check() {
            if !std::mem::replace(&mut self.file_gone, true) {
                tracing::error!(error = %with_causes(&gone), "publishing refused");
            }
            let message = with_causes(&gone);
            for done in done {
                let failed = Error::Transport { context: message.clone(), retriable: false, source: None };
                let _ = done.send(Err(failed));
            }
            return;
        }
        self.file_gone = false;
        match self.append(work) {
            Ok(deliveries) => {
                for (done, delivery) in done.into_iter().zip(deliveries) {
                    let _ = done.send(Ok(delivery));
                }
            }
            Err(error) => {
                tracing::error!(%error, "appending to the embedded log failed");
                // One failure for the whole transaction; each publish gets its own copy of it.
                let retriable = crate::transport::sqlite::is_retriable(&error);
                for done in done {
                    let failed = Error::Transport {
                        context: format!("appending to the embedded log: {error}"),
                        retriable,
                        source: None,
                    };
                    let _ = done.send(Err(failed));
                }
            }
        }
    }
}
