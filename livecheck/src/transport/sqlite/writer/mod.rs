//! The one thread that appends to the embedded log, with group commit: publishes that arrive together share one
//! transaction, and each resolves only once that transaction is durable.
//!
//! Here: the handle the transport holds — the writer's queue, bounded in bytes, and its end. The thread's loop is
//! in `thread`, the appending transaction (which heals a partition whose head another program left behind) in
//! `append`, the deletion of old messages in `retention`.

mod append;
mod retention;
#[cfg(test)]
mod tests;
mod thread;

pub(super) use retention::Retention;

use std::{
    path::Path,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        mpsc, Arc, OnceLock,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use tokio::sync::oneshot;

use super::{connect, identity::FileIdentity};
use crate::{
    transport::{drop_deadline::DropDeadline, Delivery, Message},
    Error, Result,
};
use thread::WriterThread;

/// The most publishes one transaction takes.
const MAX_BATCH: usize = 1024;
/// The most bytes of messages waiting for the writer (a disk or database too slow or blocked): past it,
/// publishes fail at once with a retriable error instead of piling up in memory.
pub(super) const MAX_QUEUED_BYTES: usize = 64 << 20;

/// What the writer's queue carries.
enum Request {
    /// A message to append.
    Publish(Publish),
    /// Answered once everything queued before it is written (or failed).
    Flush(mpsc::Sender<()>),
}

struct Publish {
    stream: String,
    message: Message,
    done: oneshot::Sender<Result<Delivery>>,
}

impl Request {
    /// The bytes it takes in the writer's queue: a message's key, value and headers.
    fn queued_size(&self) -> usize {
        match self {
            Request::Publish(publish) => publish.message.byte_len(),
            Request::Flush(_) => 0,
        }
    }
}

/// When the thread stops writing: set by the handle's drop to its drop deadline. Past it, the thread writes nothing
/// more — as if its process had ended: its publishers gave up.
#[derive(Clone, Default)]
struct GivenUpAt(Arc<OnceLock<Instant>>);

impl GivenUpAt {
    /// Once only: the first drop's deadline stays.
    fn set(&self, at: Instant) {
        let _ = self.0.set(at);
    }

    fn is_past(&self) -> bool {
        self.0.get().is_some_and(|at| Instant::now() >= *at)
    }
}

/// The handle of the writer thread; the thread ends when this is dropped, after writing what it was given — until
/// the transport's drop deadline at most, and without blocking the dropping thread when it is an async one.
pub(super) struct Writer {
    requests: Option<mpsc::Sender<Request>>,
    thread: Option<JoinHandle<()>>,
    /// Bytes of the messages given to the thread and not written (or failed) yet.
    queued: Arc<AtomicUsize>,
    max_queued: usize,
    drop_deadline: DropDeadline,
    given_up_at: GivenUpAt,
}

impl Writer {
    /// Starts the writer on its own connection to `path`; streams it creates get `partitions` partitions.
    pub(super) fn start(
        path: &Path,
        partitions: u32,
        retention: Retention,
        identity: FileIdentity,
        max_queued: usize,
        healed: Arc<AtomicU64>,
        drop_deadline: DropDeadline,
    ) -> Result<Writer> {
        let connection = connect(path)?;
        let (requests, received) = mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let thread_queued = queued.clone();
        let given_up_at = GivenUpAt::default();
        let writer = WriterThread::new(connection, partitions, retention, identity, healed, given_up_at.clone());
        let thread = std::thread::Builder::new()
            .name("livecheck-sqlite-writer".into())
            .spawn(move || writer.run(received, &thread_queued))
            .map_err(|e| Error::transport("starting the embedded log's writer thread", false, e))?;
        Ok(Writer { requests: Some(requests), thread: Some(thread), queued, max_queued, drop_deadline, given_up_at })
    }

    /// Appends `message` to `stream`; resolves once it is stored. With more than the queue's bytes already
    /// waiting for the writer, fails at once (retriable).
    pub(super) async fn publish(&self, stream: &str, message: Message) -> Result<Delivery> {
        let size = message.byte_len();
        let waiting = self.queued.fetch_add(size, Ordering::SeqCst);
        if waiting > 0 && waiting + size > self.max_queued {
            self.queued.fetch_sub(size, Ordering::SeqCst);
            return Err(Error::Transport {
                context: format!(
                    "the embedded log's writer is behind: {waiting} bytes wait to be written (at most {}); the disk \
                     or the database is slow or blocked",
                    self.max_queued
                ),
                retriable: true,
                source: None,
            });
        }
        let (done, delivered) = oneshot::channel();
        let publish = Publish { stream: stream.to_owned(), message, done };
        if !self.send(Request::Publish(publish)) {
            self.queued.fetch_sub(size, Ordering::SeqCst);
            return Err(Error::transport_stopped("the embedded log's writer has stopped"));
        }
        delivered.await.map_err(|_| Error::transport_stopped("the embedded log's writer stopped before writing"))?
    }

    /// Waits until every message given to the writer before this call is written (or failed) — also those whose
    /// publisher stopped waiting — `within` at most, off the async threads (the writer works in real time). An
    /// error says what was still queued then.
    ///
    /// Cancellation safe: dropping the future stops only the wait.
    pub(super) async fn flush(&self, within: Duration) -> Result<()> {
        if self.queued.load(Ordering::SeqCst) == 0 {
            return Ok(());
        }
        let (done, flushed) = mpsc::channel();
        if !self.send(Request::Flush(done)) {
            return Err(Error::transport_stopped("the embedded log's writer has stopped"));
        }
        let waited = tokio::task::spawn_blocking(move || flushed.recv_timeout(within)).await;
        if matches!(waited, Ok(Ok(()))) {
            return Ok(());
        }
        let queued = self.queued.load(Ordering::SeqCst);
        Err(Error::Transport {
            context: format!(
                "the embedded log's writer did not write what is queued within {within:?} ({queued} bytes)"
            ),
            retriable: true,
            source: None,
        })
    }

    /// Gives `request` to the thread; false when it has stopped.
    fn send(&self, request: Request) -> bool {
        self.requests.as_ref().is_some_and(|requests| requests.send(request).is_ok())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it wrote what it holds, until the drop deadline: past it, it writes
        // nothing more. Waited for by a watcher thread when this one is an async runtime's, never blocking it; what
        // must be stored before a stop returns is flushed before (`SqliteTransport::flush`).
        self.requests.take();
        self.given_up_at.set(self.drop_deadline.until());
        if let Some(thread) = self.thread.take() {
            let queued = self.queued.load(Ordering::SeqCst);
            let what = format!("the embedded log's writer ({queued} bytes to write, given up: not written later)");
            self.drop_deadline.let_finish(thread, what);
        }
    }
}
