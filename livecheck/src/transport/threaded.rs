//! The app's side of a group member that runs on a thread of its own (the embedded log's and Kafka's): events
//! come from the thread through a channel; commits, pauses and the end of a revocation go to it. Messages of a
//! paused stream that were already on their way wait here until it resumes.

use std::{
    collections::VecDeque,
    sync::{mpsc, Arc},
    thread::JoinHandle,
};

use tokio::sync::mpsc as async_mpsc;

use super::{BoxFuture, Event, Received, Subscription};
use crate::{Error, Result};

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
    thread: Option<JoinHandle<()>>,
}

impl ThreadedSubscription {
    pub(crate) fn new(
        streams: Vec<Arc<str>>,
        events: async_mpsc::Receiver<Event>,
        commands: mpsc::Sender<MemberCommand>,
        thread: JoinHandle<()>,
    ) -> Self {
        ThreadedSubscription {
            events,
            commands,
            paused: vec![false; streams.len()],
            stash: vec![VecDeque::new(); streams.len()],
            streams,
            revoked: Vec::new(),
            thread: Some(thread),
        }
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
}

fn stopped() -> Error {
    Error::transport_stopped("the group member's thread stopped")
}

impl Subscription for ThreadedSubscription {
    fn recv(&mut self) -> BoxFuture<'_, Result<Event>> {
        Box::pin(async move {
            self.release_revoked();
            if let Some(event) = self.next_stashed() {
                return Ok(event);
            }
            loop {
                let event = self.events.recv().await.ok_or_else(stopped)?;
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
                Err(async_mpsc::error::TryRecvError::Disconnected) => return Err(stopped()),
            }
        }
    }

    fn commit(&mut self, stream: &str, partition: u32, next_offset: u64, metadata: &str) -> Result<()> {
        let stream = self
            .stream_index(stream)
            .ok_or_else(|| Error::Config(format!("commit for `{stream}`, which this member does not read")))?;
        let command = MemberCommand::Commit { stream, partition, offset: next_offset, metadata: metadata.to_owned() };
        self.commands.send(command).map_err(|_| stopped())
    }

    fn pause(&mut self, stream: &str) {
        self.set_paused(stream, true);
    }

    fn resume(&mut self, stream: &str) {
        self.set_paused(stream, false);
    }
}

impl Drop for ThreadedSubscription {
    fn drop(&mut self) {
        // Closing both channels ends the thread, which writes the last commits and leaves the group.
        self.events.close();
        let (closed, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.commands, closed));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
