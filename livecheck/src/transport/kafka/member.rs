//! One consumer-group member on Kafka: a thread polls a librdkafka consumer (range assignor, manual commits) and
//! turns its rebalance callbacks into events. A revocation blocks the callback until the app let go of the
//! partitions and committed their work — librdkafka keeps heartbeating meanwhile on its own thread — and the
//! commits are then written synchronously, before the partitions move. The member's partitions are shared with
//! its owners watch (`owners.rs`), which asks it to leave the group and join again when partitions are left
//! without a consumer.

use std::{
    collections::{HashSet, VecDeque},
    sync::{mpsc, Arc, Mutex},
    time::{Duration, Instant},
};

use rdkafka::{
    consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance},
    ClientConfig, ClientContext, Message as _, Offset, TopicPartitionList,
};
use tokio::sync::mpsc as async_mpsc;

use super::{
    kafka,
    owners::{self, Holdings},
    received, set_if_absent, REQUEST_TIMEOUT,
};
use crate::{
    sync::lock,
    transport::{
        threaded::{
            drop_revoked, hand_over, MemberCommand, ReadAhead, StopCause, ThreadedSubscription, READ_AHEAD_BYTES,
        },
        Assignment, Committed, Event,
    },
    Error, Result,
};

/// Events the thread keeps ready; it polls no more messages while this many wait.
const READY: usize = 512;
/// How long the thread waits for a message when it has nothing else to do.
const POLL: Duration = Duration::from_millis(5);
/// How long a revocation waits for the app to let go before giving the partitions up anyway.
const RELEASE_WITHIN: Duration = Duration::from_secs(120);
/// A rejoin: how long after letting go of its partitions the member joins its group again (it leaves first, and
/// joins as a new member).
const REJOIN_AFTER: Duration = Duration::from_secs(1);
/// A rejoin: how long the member waits at most for its partitions to be let go before it joins again anyway.
const REJOIN_WITHIN: Duration = Duration::from_secs(30);

/// Joins `group` for `streams` (of `partitions` partitions each) and starts the member's thread, and its owners
/// watch.
pub(super) fn join(
    config: ClientConfig,
    streams: Vec<Arc<str>>,
    group: &str,
    partitions: u32,
) -> Result<ThreadedSubscription> {
    let (events_tx, events) = async_mpsc::channel(READY);
    let (commands, commands_rx) = mpsc::channel();
    let read_ahead = ReadAhead::new(READ_AHEAD_BYTES);
    let holdings = Arc::new(Holdings::default());
    let context = MemberContext {
        state: Mutex::new(MemberState {
            streams: streams.clone(),
            events: events_tx,
            commands: commands_rx,
            owned: HashSet::new(),
            paused: vec![false; streams.len()],
            commits: Vec::new(),
            ready: VecDeque::new(),
            read_ahead: read_ahead.clone(),
            stopping: false,
            holdings: holdings.clone(),
        }),
    };
    let mut config = config;
    set_if_absent(&mut config, "session.timeout.ms", "10000");
    set_if_absent(&mut config, "heartbeat.interval.ms", "1000");
    // Signals are latency-bound: a fetch waits at most this long for data (Kafka answers at once when data comes;
    // some compatible brokers only at the end of the wait).
    set_if_absent(&mut config, "fetch.wait.max.ms", "10");
    let consumer: BaseConsumer<MemberContext> = config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "range")
        .create_with_context(context)
        .map_err(|e| kafka("creating a group member", e))?;
    let names: Vec<&str> = streams.iter().map(|s| &**s).collect();
    consumer.subscribe(&names).map_err(|e| kafka(&format!("joining group `{group}`"), e))?;
    let health = owners::watch(&config, group, streams.clone(), partitions, holdings.clone())?;
    let member_holdings = holdings.clone();
    let stop_cause = StopCause::default();
    let thread_stop_cause = stop_cause.clone();
    let thread = std::thread::Builder::new()
        .name("livecheck-kafka-member".into())
        .spawn(move || run(consumer, &member_holdings, &thread_stop_cause))
        .map_err(|e| {
            holdings.end();
            Error::transport("starting a group member thread", false, e)
        })?;
    Ok(ThreadedSubscription::new(streams, events, commands, read_ahead, stop_cause, thread).with_group_health(health))
}

struct MemberContext {
    state: Mutex<MemberState>,
}

struct MemberState {
    streams: Vec<Arc<str>>,
    events: async_mpsc::Sender<Event>,
    commands: mpsc::Receiver<MemberCommand>,
    /// Partitions held (of every stream).
    owned: HashSet<u32>,
    paused: Vec<bool>,
    /// Commits the app made, not yet sent: (stream, partition, next offset, metadata).
    commits: Vec<(usize, u32, u64, String)>,
    ready: VecDeque<Event>,
    /// The bytes of messages polled and not yet taken by the app: no more polling at its limit.
    read_ahead: ReadAhead,
    /// The app is gone: revocations do not wait for it.
    stopping: bool,
    /// `owned`, as the owners watch sees it.
    holdings: Arc<Holdings>,
}

impl MemberState {
    /// Applies what the app sent; `Released` ends a revocation (see `pre_rebalance`). Returns false when the app's
    /// side is gone.
    fn take_commands(&mut self, consumer: &BaseConsumer<MemberContext>, until_released: bool) -> bool {
        loop {
            let command = if until_released {
                match self.commands.recv_timeout(RELEASE_WITHIN) {
                    Ok(command) => command,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        tracing::error!("the app did not let go of revoked partitions in time; giving them up");
                        return true;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => return false,
                }
            } else {
                match self.commands.try_recv() {
                    Ok(command) => command,
                    Err(mpsc::TryRecvError::Empty) => return true,
                    Err(mpsc::TryRecvError::Disconnected) => return false,
                }
            };
            match command {
                MemberCommand::Commit { stream, partition, offset, metadata } => {
                    self.commits.retain(|(s, p, _, _)| (*s, *p) != (stream, partition));
                    self.commits.push((stream, partition, offset, metadata));
                }
                MemberCommand::Pause(stream) => {
                    self.paused[stream] = true;
                    self.set_paused(consumer, stream, &self.owned.clone(), true);
                }
                MemberCommand::Resume(stream) => {
                    self.paused[stream] = false;
                    self.set_paused(consumer, stream, &self.owned.clone(), false);
                }
                MemberCommand::Released(_) if until_released => return true,
                MemberCommand::Released(_) => {}
            }
        }
    }

    fn set_paused(&self, consumer: &BaseConsumer<MemberContext>, stream: usize, partitions: &HashSet<u32>, on: bool) {
        if partitions.is_empty() {
            return;
        }
        let mut list = TopicPartitionList::new();
        for partition in partitions {
            list.add_partition(&self.streams[stream], *partition as i32);
        }
        let result = if on { consumer.pause(&list) } else { consumer.resume(&list) };
        if let Err(error) = result {
            tracing::warn!(%error, stream = %self.streams[stream], "pausing or resuming failed");
        }
    }

    /// Sends the app's commits to the group coordinator, with their metadata.
    fn write_commits(&mut self, consumer: &BaseConsumer<MemberContext>, mode: CommitMode) {
        if self.commits.is_empty() {
            return;
        }
        let mut list = TopicPartitionList::new();
        for (stream, partition, offset, metadata) in self.commits.drain(..) {
            let topic = &self.streams[stream];
            if list.add_partition_offset(topic, partition as i32, Offset::Offset(offset as i64)).is_err() {
                continue;
            }
            if let Some(mut element) = list.find_partition(topic, partition as i32) {
                element.set_metadata(metadata);
            }
        }
        if let Err(error) = consumer.commit(&list, mode) {
            tracing::warn!(%error, "committing offsets failed; the next commit covers them");
        }
    }

    /// Hands ready events to the app, as many as its channel takes.
    fn flush(&mut self) {
        if !hand_over(&mut self.ready, &self.events) {
            self.stopping = true;
        }
    }
}

fn partitions_of(list: &TopicPartitionList) -> Vec<u32> {
    let mut partitions: Vec<u32> = list.elements().iter().map(|e| e.partition() as u32).collect();
    partitions.sort_unstable();
    partitions.dedup();
    partitions
}

impl ClientContext for MemberContext {}

impl ConsumerContext for MemberContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(list) = rebalance else { return };
        let mut state = lock(&self.state);
        let revoked: Vec<u32> = partitions_of(list).into_iter().filter(|p| state.owned.contains(p)).collect();
        if revoked.is_empty() {
            return;
        }
        let MemberState { ready, read_ahead, .. } = &mut *state;
        drop_revoked(ready, &revoked, read_ahead);
        state.ready.push_back(Event::Revoked(revoked.clone()));
        // Everything before the revocation goes to the app first; then it lets go and commits.
        while !state.stopping && !state.ready.is_empty() {
            state.flush();
            if !state.ready.is_empty() {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        if !state.stopping && !state.take_commands(consumer, true) {
            state.stopping = true;
        }
        state.write_commits(consumer, CommitMode::Sync);
        for partition in &revoked {
            state.owned.remove(partition);
        }
        state.holdings.set(&state.owned);
        tracing::debug!(partitions = ?revoked, "partitions revoked");
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Assign(list) = rebalance else { return };
        let mut state = lock(&self.state);
        let partitions = partitions_of(list);
        let committed = match consumer.committed_offsets((*list).clone(), REQUEST_TIMEOUT) {
            Ok(committed) => committed,
            Err(error) => {
                tracing::warn!(%error, "reading committed offsets failed; reading from the start of the partitions");
                TopicPartitionList::new()
            }
        };
        let mut assignments = Vec::new();
        for &partition in &partitions {
            let mut positions = Vec::new();
            for stream in &state.streams {
                let element = committed.find_partition(stream, partition as i32);
                let offset = match element.as_ref().map(|e| e.offset()) {
                    Some(Offset::Offset(offset)) => offset.max(0) as u64,
                    _ => 0,
                };
                let metadata = element.map(|e| e.metadata().to_owned()).unwrap_or_default();
                positions.push(Committed { stream: stream.clone(), offset, metadata });
            }
            assignments.push(Assignment { partition, committed: positions });
        }
        state.owned.extend(&partitions);
        state.holdings.set(&state.owned);
        let new: HashSet<u32> = partitions.iter().copied().collect();
        for stream in 0..state.streams.len() {
            if state.paused[stream] {
                state.set_paused(consumer, stream, &new, true);
            }
        }
        state.ready.push_back(Event::Assigned(assignments));
        tracing::debug!(?partitions, "partitions assigned");
    }
}

fn run(consumer: BaseConsumer<MemberContext>, holdings: &Holdings, stop_cause: &StopCause) {
    // Since when the member is leaving the group to join it again (see `owners.rs`).
    let mut rejoining: Option<Instant> = None;
    loop {
        if rejoining.is_none() && holdings.take_rejoin() {
            // The revocation runs as any other (inside `poll`); the group is left once it is done.
            consumer.unsubscribe();
            rejoining = Some(Instant::now());
        }
        if let Some(since) = rejoining {
            let let_go = lock(&consumer.context().state).owned.is_empty();
            if (let_go && since.elapsed() >= REJOIN_AFTER) || since.elapsed() >= REJOIN_WITHIN {
                rejoining = None;
                let streams = lock(&consumer.context().state).streams.clone();
                let names: Vec<&str> = streams.iter().map(|s| &**s).collect();
                match consumer.subscribe(&names) {
                    Ok(()) => tracing::info!(streams = ?names, "left the group and joined it again as a new member"),
                    Err(error) => tracing::error!(%error, "joining the group again failed; the owners watch retries"),
                }
            }
        }
        {
            let mut state = lock(&consumer.context().state);
            if !state.take_commands(&consumer, false) {
                state.stopping = true;
            }
            state.write_commits(&consumer, CommitMode::Async);
            state.flush();
            if state.stopping || state.events.is_closed() {
                state.stopping = true;
                break;
            }
            if state.ready.len() >= READY || !state.read_ahead.has_room() {
                drop(state);
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
        }
        // Rebalance callbacks run inside `poll`, and take the state's lock themselves.
        let polled = consumer.poll(POLL);
        let mut state = lock(&consumer.context().state);
        match polled {
            Some(Ok(message)) => {
                let stream = state.streams.iter().find(|s| &***s == message.topic()).cloned();
                if let Some(stream) = stream {
                    let event = Event::Message(received(stream, &message));
                    state.read_ahead.read(&event);
                    state.ready.push_back(event);
                }
            }
            Some(Err(error)) => {
                // A fatal error (e.g. this member fenced by another with its `group.instance.id`) ends the
                // client for good: no later poll succeeds.
                if let Some((code, reason)) = consumer.client().fatal_error() {
                    tracing::error!(%error, ?code, %reason, "kafka consumer failed for good; stopped reading");
                    let fatal = rdkafka::error::KafkaError::MessageConsumptionFatal(code);
                    stop_cause.set(Error::transport(
                        format!("kafka: the consumer failed for good: {reason}"),
                        false,
                        fatal,
                    ));
                    state.stopping = true;
                    break;
                }
                tracing::warn!(%error, "kafka consumer error");
            }
            None => {}
        }
    }
    // The app is gone: write its last commits, then leave the group (revocations no longer wait).
    let mut state = lock(&consumer.context().state);
    let _ = state.take_commands(&consumer, false);
    state.write_commits(&consumer, CommitMode::Sync);
    drop(state);
    holdings.end();
    consumer.unsubscribe();
}
