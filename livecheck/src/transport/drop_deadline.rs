//! How long dropping a transport's parts may wait for their threads — the embedded log's writer finishing what is
//! queued, a group member writing its last commits and leaving, Kafka's producer flushing — so that no drop blocks
//! for as long as a full disk or an absent broker lasts.

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

    /// Waits for `thread` to end, at most [`DropDeadline::wait`]; false when it was left running, which is logged
    /// (`what` it was doing, as "the embedded log's writer (writing what is queued)").
    pub(crate) fn join(&self, thread: JoinHandle<()>, what: &str) -> bool {
        let waited = self.wait();
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
        let (release, released) = std::sync::mpsc::channel::<()>();
        let stuck = std::thread::spawn(move || {
            let _ = released.recv_timeout(Duration::from_secs(60));
        });
        deadline.set(Instant::now());
        assert_eq!(deadline.wait(), Duration::ZERO, "past the deadline: no wait");
        assert!(!deadline.join(stuck, "a stuck thread"), "left running, not waited for");
        drop(release);
    }
}
