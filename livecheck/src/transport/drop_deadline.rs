//! How long dropping a transport's parts may wait for their threads — the embedded log's writer finishing what is
//! queued, a group member writing its last commits and leaving, Kafka's producer flushing — so that no drop blocks
//! for as long as a full disk or an absent broker lasts. A drop on an async runtime's thread (in a task) does not
//! wait at all: a watcher thread waits instead ([`DropDeadline::let_finish`]); what must be stored before a stop
//! returns is waited for by an explicit async call (a subscription's `close`, the transport's `flush`).

use std::{
    sync::{Arc, Mutex},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crate::sync::lock;

/// How long a drop waits while no deadline is set: the default `shutdown_timeout` of an instance.
pub(crate) const DEFAULT_DROP_WAIT: Duration = Duration::from_secs(5);

/// A transport's deadline for its threads, shared by the transport and the members and leaderships it made. Unset,
/// a drop waits at most [`DEFAULT_DROP_WAIT`]; set (by a stopping instance), until the deadline at most. A thread
/// still running then is left to finish in the background (when the process does not exit first), with a warning.
#[derive(Clone, Debug, Default)]
pub(crate) struct DropDeadline(Arc<Mutex<Option<Instant>>>);

impl DropDeadline {
    /// From now on, drops wait until `deadline` at most (whatever was set before).
    pub(crate) fn set(&self, deadline: Instant) {
        *lock(&self.0) = Some(deadline);
    }

    /// How long a drop may still wait.
    pub(crate) fn wait(&self) -> Duration {
        match *lock(&self.0) {
            Some(deadline) => deadline.saturating_duration_since(Instant::now()),
            None => DEFAULT_DROP_WAIT,
        }
    }

    /// When a wait that starts now ends: [`DropDeadline::wait`] from now.
    pub(crate) fn until(&self) -> Instant {
        Instant::now() + self.wait()
    }

    /// Waits for `thread` to end, at most [`DropDeadline::wait`]; false when it was left running, which is logged
    /// (`what` it was doing, as "the embedded log's writer (writing what is queued)"). Blocks: for a thread that
    /// may, as a blocking task's.
    pub(crate) fn join(&self, thread: JoinHandle<()>, what: &str) -> bool {
        join_until(thread, self.wait(), what)
    }

    /// Lets `thread` finish by itself, waited for as [`DropDeadline::join`] does — but never by a thread of an
    /// async runtime (a drop in a task), which other tasks need: see [`off_runtime`].
    pub(crate) fn let_finish(&self, thread: JoinHandle<()>, what: String) {
        let waited = self.wait();
        off_runtime(move || {
            join_until(thread, waited, &what);
        });
    }
}

/// Runs `wait` — a wait bounded by a drop deadline — on this thread, unless it is a thread of an async runtime (a
/// drop in a task), which other tasks need: then on a thread of its own, and this returns at once. Its logs go
/// where this thread's go (a test's captured logs, say).
pub(crate) fn off_runtime(wait: impl FnOnce() + Send + 'static) {
    if tokio::runtime::Handle::try_current().is_err() {
        return wait();
    }
    let logs = tracing::dispatcher::get_default(Clone::clone);
    let waiter = std::thread::Builder::new()
        .name("livecheck-drop-wait".into())
        .spawn(move || tracing::dispatcher::with_default(&logs, wait));
    if let Err(error) = waiter {
        tracing::warn!(%error, "no thread to wait for a dropped part of the transport: it is not waited for");
    }
}

/// Waits for `thread` to end, `waited` at most; false (with a warning) when it was left running.
fn join_until(thread: JoinHandle<()>, waited: Duration, what: &str) -> bool {
    let until = Instant::now() + waited;
    while !thread.is_finished() {
        if Instant::now() >= until {
            tracing::warn!(
                ?waited,
                "{what} did not finish in time: left to finish in the background (the transport is slow or \
                 blocked: a full disk, a locked database, a broker away)"
            );
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // Finished: joining does not wait. (A panic there was reported by the panic hook already.)
    let _ = thread.join();
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_is_waited_for_until_the_deadline_and_no_longer() {
        let deadline = DropDeadline::default();
        assert_eq!(deadline.wait(), DEFAULT_DROP_WAIT, "no deadline: the default wait");
        let quick = std::thread::spawn(|| {});
        assert!(deadline.join(quick, "a quick thread"));

        // Stuck for a minute, unless released: a join that waited for it would end with it finished.
        let (stuck, release) = stuck();
        deadline.set(Instant::now());
        assert_eq!(deadline.wait(), Duration::ZERO, "past the deadline: no wait");
        assert!(!deadline.join(stuck, "a stuck thread"), "left running, not waited for");
        drop(release);
    }

    /// A thread stuck for a minute unless released, and what releases it.
    fn stuck() -> (JoinHandle<()>, std::sync::mpsc::Sender<()>) {
        let (release, released) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let _ = released.recv_timeout(Duration::from_secs(60));
        });
        (thread, release)
    }

    #[tokio::test]
    async fn a_thread_of_the_runtime_lets_the_thread_finish_without_waiting_for_it() {
        let deadline = DropDeadline::default();
        assert_eq!(deadline.wait(), DEFAULT_DROP_WAIT, "5 s to wait: a blocking wait would be seen");
        let (thread, release) = stuck();
        let started = Instant::now();
        deadline.let_finish(thread, "a stuck thread".into());
        assert!(started.elapsed() < Duration::from_secs(1), "returned at once: {:?}", started.elapsed());
        drop(release);
    }

    #[test]
    fn another_thread_waits_as_a_join_does() {
        let deadline = DropDeadline::default();
        deadline.set(Instant::now() + Duration::from_millis(200));
        let (thread, release) = stuck();
        let started = Instant::now();
        deadline.let_finish(thread, "a stuck thread".into());
        assert!(started.elapsed() >= Duration::from_millis(150), "waited until the deadline: {:?}", started.elapsed());
        drop(release);
    }
}
