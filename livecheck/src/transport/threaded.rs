//! The app's side of a group member that runs on a thread of its own (the embedded log's and Kafka's): events
//! come from the thread through a channel; commits, pauses and the end of a revocation go to it. Messages of a
//! paused stream that were already on their way wait here until it resumes. What the thread reads ahead of the
//! app is bounded in bytes ([`ReadAhead`]), not only in count, so a burst of big messages cannot fill memory.
//! A thread that stops for good on its own (the embedded log deleted, a fatal Kafka error) says why in a
//! [`StopCause`] before it ends, which [`Subscription::stopped`] reports.

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicUsize, Ordering},
        mpsc, Arc, OnceLock,
    },
    thread::JoinHandle,
};

use tokio::sync::mpsc as async_mpsc;

use super::{drop_deadline::DropDeadline, BoxFuture, Event, Received, Subscription};
use crate::{Error, Result};

/// The most bytes of messages a member's thread reads ahead of the app (default): messages are read in batches
/// of up to hundreds, which for big messages would be hundreds of megabytes.
pub(crate) const READ_AHEAD_BYTES: usize = 8 << 20;

/// The bytes of the messages a member's thread has read and the app has not taken yet — in the thread's queue or
/// in the channel — shared by the thread, which reads no more while they reach the limit, and the app's side,
/// which gives them back as it takes each message. At least one message is always let through, however big.
#[derive(Clone, Debug)]
pub(crate) struct ReadAhead {
    bytes: Arc<AtomicUsize>,
    limit: usize,
}

impl ReadAhead {
    pub(crate) fn new(limit: usize) -> Self {
        ReadAhead { bytes: Arc::new(AtomicUsize::new(0)), limit }
    }

    /// Whether the thread may read more.
    pub(crate) fn has_room(&self) -> bool {
        self.bytes.load(Ordering::Acquire) < self.limit
    }

    /// Counts `event` (when it is a message) as read ahead.
    pub(crate) fn read(&self, event: &Event) {
        self.bytes.fetch_add(message_bytes(event), Ordering::AcqRel);
    }

    /// Gives back `event`'s bytes: the app took it, or the thread dropped it.
    pub(crate) fn taken(&self, event: &Event) {
        let bytes = message_bytes(event);
        if bytes > 0 {
            // Never below zero, whatever the order of the updates.
            let _ = self.bytes.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| Some(n.saturating_sub(bytes)));
        }
    }

    /// The bytes read ahead now.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Acquire)
    }
}

/// The bytes a message event holds (key, value, headers); 0 for other events.
fn message_bytes(event: &Event) -> usize {
    match event {
        Event::Message(received) => received.message.byte_len(),
        _ => 0,
    }
}

/// Drops the queued messages of `revoked` partitions from `ready`, giving their bytes back to `read_ahead`.
pub(crate) fn drop_revoked(ready: &mut VecDeque<Event>, revoked: &[u32], read_ahead: &ReadAhead) {
    ready.retain(|event| {
        let drop = matches!(event, Event::Message(r) if revoked.contains(&r.partition));
        if drop {
            read_ahead.taken(event);
        }
        !drop
    });
}

/// Hands `ready` events to the app, as many as its channel takes now (the rest stay, in order); false when the
/// app's side is gone. For the member's thread.
pub(crate) fn hand_over(ready: &mut VecDeque<Event>, events: &async_mpsc::Sender<Event>) -> bool {
    while let Some(event) = ready.pop_front() {
        match events.try_send(event) {
            Ok(()) => {}
            Err(async_mpsc::error::TrySendError::Full(event)) => {
                ready.push_front(event);
                return true;
            }
            Err(async_mpsc::error::TrySendError::Closed(_)) => return false,
        }
    }
    true
}

/// Why a member's thread stopped for good, set by the thread before it ends (once: the first cause stays).
#[derive(Clone, Debug, Default)]
pub(crate) struct StopCause(Arc<OnceLock<Arc<Error>>>);

impl StopCause {
    /// Records `cause`; the thread ends right after.
    pub(crate) fn set(&self, cause: Error) {
        let _ = self.0.set(Arc::new(cause));
    }

    fn get(&self) -> Option<Arc<Error>> {
        self.0.get().cloned()
    }
}

/// What the app's side tells a member's thread.
pub(crate) enum MemberCommand {
    Commit { stream: usize, partition: u32, offset: u64, metadata: String },
    Pause(usize),
    Resume(usize),
    Released(Vec<u32>),
}

/// The app's side of a member: events from the member's thread; commits and pauses to it.
pub(crate) struct ThreadedSubscription {
    events: async_mpsc::Receiver<Event>,
    commands: mpsc::Sender<MemberCommand>,
    streams: Vec<Arc<str>>,
    paused: Vec<bool>,
    /// Per stream: messages that came while it was paused (already on their way), in order.
    stash: Vec<VecDeque<Received>>,
    /// Partitions revoked by the last event, let go of at the next call.
    revoked: Vec<u32>,
    /// What the thread read ahead, given back as messages arrive here.
    read_ahead: ReadAhead,
    /// Why the thread stopped for good, when it says.
    stop_cause: StopCause,
    thread: Option<JoinHandle<()>>,
    /// How long dropping this waits for the thread.
    drop_deadline: DropDeadline,
    /// What the backend watches of the group, if it does (see [`Subscription::group_health`]).
    group_health: Option<tokio::sync::watch::Receiver<super::GroupHealth>>,
}

impl ThreadedSubscription {
    pub(crate) fn new(
        streams: Vec<Arc<str>>,
        events: async_mpsc::Receiver<Event>,
        commands: mpsc::Sender<MemberCommand>,
        read_ahead: ReadAhead,
        stop_cause: StopCause,
        thread: JoinHandle<()>,
    ) -> Self {
        ThreadedSubscription {
            events,
            commands,
            paused: vec![false; streams.len()],
            stash: vec![VecDeque::new(); streams.len()],
            streams,
            revoked: Vec::new(),
            read_ahead,
            stop_cause,
            thread: Some(thread),
            drop_deadline: DropDeadline::default(),
            group_health: None,
        }
    }

    /// Dropping this waits for the thread as `deadline` says (its transport's), not at most 5 s.
    pub(crate) fn with_drop_deadline(mut self, deadline: DropDeadline) -> Self {
        self.drop_deadline = deadline;
        self
    }

    /// With the group's health, as the backend watches it (the Kafka one does).
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub(crate) fn with_group_health(mut self, health: tokio::sync::watch::Receiver<super::GroupHealth>) -> Self {
        self.group_health = Some(health);
        self
    }

    /// The bytes of messages the thread has read ahead of the app now.
    #[cfg(test)]
    pub(crate) fn read_ahead_bytes(&self) -> usize {
        self.read_ahead.bytes()
    }

    fn stream_index(&self, stream: &str) -> Option<usize> {
        self.streams.iter().position(|s| &**s == stream)
    }

    /// The index of a stream this member's thread named (the same `Arc`, so no string comparison).
    fn index_of(&self, stream: &Arc<str>) -> Option<usize> {
        self.streams.iter().position(|s| Arc::ptr_eq(s, stream)).or_else(|| self.stream_index(stream))
    }

    /// Lets go of the partitions revoked by the previous event: the app is done with them.
    fn release_revoked(&mut self) {
        if !self.revoked.is_empty() {
            let _ = self.commands.send(MemberCommand::Released(std::mem::take(&mut self.revoked)));
        }
    }

    fn next_stashed(&mut self) -> Option<Event> {
        let i = (0..self.stash.len()).find(|i| !self.paused[*i] && !self.stash[*i].is_empty())?;
        self.stash[i].pop_front().map(Event::Message)
    }

    /// The event to give the app, or `None` when it was stashed.
    fn accept(&mut self, event: Event) -> Option<Event> {
        // Out of the thread's hands: it may read more. (A stashed message waits for a paused stream to resume;
        // the thread reads no more of that stream meanwhile.)
        self.read_ahead.taken(&event);
        match event {
            Event::Message(received) => match self.index_of(&received.stream) {
                Some(i) if self.paused[i] || !self.stash[i].is_empty() => {
                    self.stash[i].push_back(received);
                    None
                }
                _ => Some(Event::Message(received)),
            },
            Event::Revoked(partitions) => {
                for stash in &mut self.stash {
                    stash.retain(|r| !partitions.contains(&r.partition));
                }
                self.revoked = partitions.clone();
                Some(Event::Revoked(partitions))
            }
            event => Some(event),
        }
    }

    fn set_paused(&mut self, stream: &str, paused: bool) {
        if let Some(i) = self.stream_index(stream) {
            self.paused[i] = paused;
            let _ = self.commands.send(if paused { MemberCommand::Pause(i) } else { MemberCommand::Resume(i) });
        }
    }

    /// The error of a call made after the thread ended: why it stopped, when it said.
    fn ended(&self) -> Error {
        match self.stop_cause.get() {
            Some(cause) => Error::transport("the group member stopped", false, cause),
            None => Error::transport_stopped("the group member's thread stopped"),
        }
    }
}

impl Subscription for ThreadedSubscription {
    fn recv(&mut self) -> BoxFuture<'_, Result<Event>> {
        Box::pin(async move {
            self.release_revoked();
            if let Some(event) = self.next_stashed() {
                return Ok(event);
            }
            loop {
                let Some(event) = self.events.recv().await else { return Err(self.ended()) };
                if let Some(event) = self.accept(event) {
                    return Ok(event);
                }
            }
        })
    }

    fn try_recv(&mut self) -> Result<Option<Event>> {
        self.release_revoked();
        if let Some(event) = self.next_stashed() {
            return Ok(Some(event));
        }
        loop {
            match self.events.try_recv() {
                Ok(event) => {
                    if let Some(event) = self.accept(event) {
                        return Ok(Some(event));
                    }
                }
                Err(async_mpsc::error::TryRecvError::Empty) => return Ok(None),
                Err(async_mpsc::error::TryRecvError::Disconnected) => return Err(self.ended()),
            }
        }
    }

    fn commit(&mut self, stream: &str, partition: u32, next_offset: u64, metadata: &str) -> Result<()> {
        let stream = self
            .stream_index(stream)
            .ok_or_else(|| Error::Config(format!("commit for `{stream}`, which this member does not read")))?;
        let command = MemberCommand::Commit { stream, partition, offset: next_offset, metadata: metadata.to_owned() };
        self.commands.send(command).map_err(|_| self.ended())
    }

    fn pause(&mut self, stream: &str) {
        self.set_paused(stream, true);
    }

    fn resume(&mut self, stream: &str) {
        self.set_paused(stream, false);
    }

    fn stopped(&self) -> Option<Arc<Error>> {
        if let Some(cause) = self.stop_cause.get() {
            return Some(cause);
        }
        // Ended without saying why: a panic in the thread.
        let ended = self.thread.as_ref().is_some_and(JoinHandle::is_finished);
        ended.then(|| Arc::new(Error::transport_stopped("the group member's thread ended unexpectedly")))
    }

    fn group_health(&self) -> Option<tokio::sync::watch::Receiver<super::GroupHealth>> {
        self.group_health.clone()
    }

    fn close(mut self: Box<Self>) -> BoxFuture<'static, ()> {
        let thread = self.let_go();
        let drop_deadline = self.drop_deadline.clone();
        drop(self);
        Box::pin(async move {
            if let Some(thread) = thread {
                let _ = tokio::task::spawn_blocking(move || drop_deadline.join(thread, LAST_WORK)).await;
            }
        })
    }
}

/// What a member's thread does once let go of, for the warning when it takes too long.
const LAST_WORK: &str = "a group member's thread (writing its last commits, leaving the group)";

impl ThreadedSubscription {
    /// Closes both channels, which ends the thread once it wrote the last commits and left the group (a full disk
    /// or an absent broker can hold that up); the thread, to wait for.
    fn let_go(&mut self) -> Option<JoinHandle<()>> {
        self.events.close();
        let (closed, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.commands, closed));
        self.thread.take()
    }
}

impl Drop for ThreadedSubscription {
    fn drop(&mut self) {
        // Waited for until the transport's drop deadline, never by an async runtime's thread (see
        // `Subscription::close` for a wait that ends with the thread).
        if let Some(thread) = self.let_go() {
            self.drop_deadline.let_finish(thread, LAST_WORK.to_owned());
        }
    }
}
