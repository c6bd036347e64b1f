//! One member of a consumer group on the embedded log: a thread of its own heartbeats, takes and gives up
//! partitions, writes commits and reads messages, and hands events to the async side through a channel — so no
//! SQL runs on the async runtime, and liveness never depends on how often the app reads.
//!
//! Partitions change hands through the `partition_owners` table: a member takes a partition only when nobody holds
//! it or its holder's heartbeat expired; a member that should give one up first tells the app (`Revoked`) and lets
//! go only once the app asked for its next event, after finishing and committing that partition's work. A commit
//! is written only while the committer holds the partition, so a member taken for dead cannot move the group back.
//!
//! A member whose log's file was deleted or replaced stops for good: it logs an ERROR, says why in its
//! [`StopCause`] and ends its thread (writing nothing more), so its subscription reports it stopped.

use std::{
    collections::{HashMap, VecDeque},
    sync::{mpsc, Arc},
    time::{Duration, Instant},
};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::mpsc as async_mpsc;

use super::{now_ms, sql};
use crate::{
    error::with_causes,
    transport::{
        owned_partitions,
        threaded::{drop_revoked, hand_over, MemberCommand, ReadAhead, StopCause, ThreadedSubscription},
        Assignment, Committed, Event, Received,
    },
    Error, Result,
};

/// How often a member renews its heartbeat and looks at the group.
const HEARTBEAT: Duration = Duration::from_millis(250);
/// How long the thread waits for the app when it has nothing to do.
const POLL: Duration = Duration::from_millis(2);
/// How many rows are read from a partition at once.
const FETCH: i64 = 256;
/// Events the thread keeps ready; it reads no more rows while this many wait.
const READY: usize = 512;

/// Where a member's thread reads and who it is.
pub(super) struct MemberConfig {
    pub(super) connection: Connection,
    pub(super) group: String,
    pub(super) streams: Vec<Arc<str>>,
    pub(super) partitions: u32,
    pub(super) member_timeout: Duration,
    pub(super) poison: super::stored::PoisonCounts,
    pub(super) identity: super::identity::FileIdentity,
    /// The most bytes of messages read ahead of the app.
    pub(super) read_ahead_bytes: usize,
}

/// Joins the group and starts the member's thread.
pub(super) fn join(config: MemberConfig) -> Result<ThreadedSubscription> {
    let (events_tx, events) = async_mpsc::channel(READY);
    let (commands, commands_rx) = mpsc::channel();
    let streams = config.streams.clone();
    let read_ahead = ReadAhead::new(config.read_ahead_bytes);
    let stop_cause = StopCause::default();
    let mut member = MemberThread {
        key: config.streams.iter().map(|s| &**s).collect::<Vec<_>>().join("\n"),
        me: crate::sync::random_uuid(),
        paused: vec![false; config.streams.len()],
        config,
        owned: Vec::new(),
        cursors: HashMap::new(),
        releasing: false,
        commits: HashMap::new(),
        ready: VecDeque::new(),
        events: events_tx,
        data_version: None,
        next_heartbeat: Instant::now(),
        stop_cause: stop_cause.clone(),
        stopped: false,
        read_ahead: read_ahead.clone(),
    };
    member.heartbeat().map_err(sql)?;
    let thread = std::thread::Builder::new()
        .name("livecheck-sqlite-member".into())
        .spawn(move || member.run(commands_rx))
        .map_err(|e| Error::transport("starting a group member thread", false, e))?;
    Ok(ThreadedSubscription::new(streams, events, commands, read_ahead, stop_cause, thread))
}

struct MemberThread {
    config: MemberConfig,
    /// The subscribed streams' names joined: the group's membership is per set of streams.
    key: String,
    me: String,
    /// Held partitions, in order.
    owned: Vec<u32>,
    /// Next offset to read by (stream index, partition).
    cursors: HashMap<(usize, u32), u64>,
    paused: Vec<bool>,
    /// Waiting for the app to finish revoked partitions before letting go of them.
    releasing: bool,
    /// Commits to write, latest per (stream index, partition).
    commits: HashMap<(usize, u32), (u64, String)>,
    ready: VecDeque<Event>,
    events: async_mpsc::Sender<Event>,
    data_version: Option<i64>,
    next_heartbeat: Instant,
    /// Why the member stopped for good, for its subscription.
    stop_cause: StopCause,
    /// Stopped for good (the log's file is gone): the thread ends, writing nothing more.
    stopped: bool,
    /// The bytes of messages read and not yet taken by the app: no more reading at its limit.
    read_ahead: ReadAhead,
}

impl MemberThread {
    fn run(mut self, commands: mpsc::Receiver<MemberCommand>) {
        loop {
            let wait = if self.ready.is_empty() { POLL } else { Duration::ZERO };
            let first = match commands.recv_timeout(wait) {
                Ok(command) => Some(command),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let mut disconnected = false;
            for command in first.into_iter().chain(std::iter::from_fn(|| match commands.try_recv() {
                Ok(command) => Some(command),
                Err(mpsc::TryRecvError::Empty) => None,
                Err(mpsc::TryRecvError::Disconnected) => {
                    disconnected = true;
                    None
                }
            })) {
                self.handle(command);
            }
            if let Err(error) = self.step() {
                tracing::warn!(%error, group = %self.config.group, "embedded log member: retrying after an error");
                std::thread::sleep(Duration::from_millis(100));
            }
            if self.stopped {
                // The events read so far reach the app; then the channel closes.
                return;
            }
            if disconnected || self.events.is_closed() {
                break;
            }
        }
        // What the app sent last (its final commits) may still be queued.
        for command in commands.try_iter() {
            self.handle(command);
        }
        if let Err(error) = self.write_commits().and_then(|()| self.leave()) {
            tracing::warn!(%error, "could not leave the consumer group; the others take over after the timeout");
        }
    }

    fn handle(&mut self, command: MemberCommand) {
        match command {
            MemberCommand::Commit { stream, partition, offset, metadata } => {
                self.commits.insert((stream, partition), (offset, metadata));
            }
            MemberCommand::Pause(stream) => self.paused[stream] = true,
            MemberCommand::Resume(stream) => {
                self.paused[stream] = false;
                self.data_version = None;
            }
            MemberCommand::Released(partitions) => {
                if let Err(error) = self.write_commits().and_then(|()| self.release(&partitions)) {
                    tracing::warn!(%error, "could not let go of revoked partitions; they move after the timeout");
                }
                self.releasing = false;
                self.next_heartbeat = Instant::now();
            }
        }
    }

    fn step(&mut self) -> rusqlite::Result<()> {
        self.write_commits()?;
        if Instant::now() >= self.next_heartbeat {
            self.next_heartbeat = Instant::now() + HEARTBEAT;
            // Reading a deleted log would show nothing new, silently, for good: stop, and say so.
            if let Err(gone) = self.config.identity.check() {
                tracing::error!(error = %with_causes(&gone), group = %self.config.group, "stopped reading");
                self.stop_cause.set(gone);
                self.stopped = true;
                self.flush();
                return Ok(());
            }
            self.heartbeat()?;
            if !self.releasing {
                self.rebalance()?;
            }
        }
        self.flush();
        if self.ready.len() < READY / 2 && self.read_ahead.has_room() {
            self.fetch()?;
            self.flush();
        }
        Ok(())
    }

    /// Hands ready events to the app, as many as its channel takes.
    fn flush(&mut self) {
        // A closed channel is noticed by the run loop.
        let _ = hand_over(&mut self.ready, &self.events);
    }

    fn heartbeat(&mut self) -> rusqlite::Result<()> {
        self.config.connection.execute(
            "INSERT INTO group_members (grp, streams, member, heartbeat_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (grp, streams, member) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms",
            params![self.config.group, self.key, self.me, now_ms()],
        )?;
        Ok(())
    }

    /// Gives up (after telling the app) the partitions another member should have, notices those taken from it,
    /// and takes the ones it should have that nobody live holds.
    fn rebalance(&mut self) -> rusqlite::Result<()> {
        let timeout = self.config.member_timeout.as_millis() as i64;
        let (group, key, me) = (self.config.group.clone(), self.key.clone(), self.me.clone());
        let tx = self.config.connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = now_ms();
        tx.execute(
            "DELETE FROM group_members WHERE grp = ?1 AND streams = ?2 AND heartbeat_ms < ?3",
            params![group, key, now - 10 * timeout],
        )?;
        let live: Vec<String> = {
            let mut statement = tx.prepare_cached(
                "SELECT member FROM group_members WHERE grp = ?1 AND streams = ?2 AND heartbeat_ms >= ?3 ORDER BY member",
            )?;
            let rows = statement.query_map(params![group, key, now - timeout], |row| row.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let owners: HashMap<u32, String> = {
            let mut statement =
                tx.prepare_cached("SELECT partition, member FROM partition_owners WHERE grp = ?1 AND streams = ?2")?;
            let rows = statement.query_map(params![group, key], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let Some(index) = live.iter().position(|m| *m == me) else {
            // Our own heartbeat is not live (the clock jumped?): hold still until it is.
            return Ok(());
        };
        let desired = owned_partitions(self.config.partitions, live.len(), index);
        let lost: Vec<u32> = self.owned.iter().copied().filter(|p| owners.get(p) != Some(&me)).collect();
        let give_up: Vec<u32> =
            self.owned.iter().copied().filter(|p| !desired.contains(p) && !lost.contains(p)).collect();
        let take: Vec<u32> = desired
            .filter(|p| !self.owned.contains(p))
            .filter(|p| owners.get(p).is_none_or(|holder| *holder == me || !live.contains(holder)))
            .collect();
        for partition in &take {
            tx.execute(
                "INSERT INTO partition_owners (grp, streams, partition, member) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (grp, streams, partition) DO UPDATE SET member = excluded.member",
                params![group, key, partition, me],
            )?;
        }
        let mut assignments = Vec::new();
        for &partition in &take {
            let mut committed = Vec::new();
            for (i, stream) in self.config.streams.iter().enumerate() {
                let position: Option<(i64, String)> = tx
                    .query_row(
                        "SELECT next_offset, metadata FROM offsets WHERE grp = ?1 AND stream = ?2 AND partition = ?3",
                        params![group, &**stream, partition],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )
                    .optional()?;
                let (offset, metadata) = position.unwrap_or_default();
                self.cursors.insert((i, partition), offset as u64);
                committed.push(Committed { stream: stream.clone(), offset: offset as u64, metadata });
            }
            assignments.push(Assignment { partition, committed });
        }
        tx.commit()?;

        let revoked: Vec<u32> = lost.iter().chain(&give_up).copied().collect();
        if !lost.is_empty() {
            tracing::warn!(group = %group, partitions = ?lost, "partitions were taken over by another member");
        }
        if !revoked.is_empty() {
            self.owned.retain(|p| !revoked.contains(p));
            self.cursors.retain(|(_, p), _| !revoked.contains(p));
            drop_revoked(&mut self.ready, &revoked, &self.read_ahead);
            self.ready.push_back(Event::Revoked(revoked));
            self.releasing = !give_up.is_empty();
        }
        if !assignments.is_empty() {
            tracing::debug!(group = %group, partitions = ?take, "partitions assigned");
            self.owned.extend(&take);
            self.owned.sort_unstable();
            self.ready.push_back(Event::Assigned(assignments));
            self.data_version = None;
        }
        Ok(())
    }

    /// Writes the commits the app made, for the partitions this member still holds.
    fn write_commits(&mut self) -> rusqlite::Result<()> {
        if self.commits.is_empty() {
            return Ok(());
        }
        let tx = self.config.connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut statement = tx.prepare_cached(
                "INSERT INTO offsets (grp, stream, partition, next_offset, metadata)
                 SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM partition_owners
                     WHERE grp = ?1 AND streams = ?6 AND partition = ?3 AND member = ?7)
                 ON CONFLICT (grp, stream, partition)
                 DO UPDATE SET next_offset = excluded.next_offset, metadata = excluded.metadata",
            )?;
            for ((stream, partition), (offset, metadata)) in &self.commits {
                let stream = &*self.config.streams[*stream];
                let written = statement.execute(params![
                    self.config.group,
                    stream,
                    partition,
                    *offset as i64,
                    metadata,
                    self.key,
                    self.me
                ])?;
                if written == 0 {
                    tracing::debug!(stream, partition, "ignored a commit for a partition this member does not hold");
                }
            }
        }
        tx.commit()?;
        self.commits.clear();
        Ok(())
    }

    fn release(&mut self, partitions: &[u32]) -> rusqlite::Result<()> {
        for partition in partitions {
            self.config.connection.execute(
                "DELETE FROM partition_owners WHERE grp = ?1 AND streams = ?2 AND partition = ?3 AND member = ?4",
                params![self.config.group, self.key, partition, self.me],
            )?;
        }
        Ok(())
    }

    fn leave(&mut self) -> rusqlite::Result<()> {
        let connection = &self.config.connection;
        connection.execute(
            "DELETE FROM partition_owners WHERE grp = ?1 AND streams = ?2 AND member = ?3",
            params![self.config.group, self.key, self.me],
        )?;
        connection.execute(
            "DELETE FROM group_members WHERE grp = ?1 AND streams = ?2 AND member = ?3",
            params![self.config.group, self.key, self.me],
        )?;
        Ok(())
    }

    /// Reads the next rows of the held, unpaused partitions, if the database changed since last time — until the
    /// bytes read ahead of the app reach their limit.
    fn fetch(&mut self) -> rusqlite::Result<()> {
        let connection = &self.config.connection;
        let version: i64 = connection.query_row("PRAGMA data_version", [], |row| row.get(0))?;
        if self.data_version == Some(version) {
            return Ok(());
        }
        let mut statement = connection.prepare_cached(super::stored::SELECT_MESSAGES)?;
        let mut complete = true;
        'streams: for (i, stream) in self.config.streams.iter().enumerate() {
            if self.paused[i] {
                continue;
            }
            for &partition in &self.owned {
                let next = self.cursors.entry((i, partition)).or_default();
                let rows =
                    statement.query_map(params![&**stream, partition, *next as i64, FETCH], super::stored::message)?;
                let mut count = 0;
                for row in rows {
                    let (offset, message) = row?;
                    *next = offset + 1;
                    count += 1;
                    match message {
                        Ok(message) => {
                            let event = Event::Message(Received {
                                stream: stream.clone(),
                                partition,
                                offset,
                                message: Arc::new(message),
                            });
                            self.read_ahead.read(&event);
                            self.ready.push_back(event);
                            if !self.read_ahead.has_room() {
                                // The rest next time, once the app has taken some.
                                complete = false;
                                break 'streams;
                            }
                        }
                        Err(cause) => {
                            self.config.poison.count(cause);
                            tracing::warn!(
                                %stream,
                                partition,
                                offset,
                                cause = cause.as_str(),
                                "a stored row is not a message (poison message); skipped it"
                            );
                        }
                    }
                }
                complete &= count < FETCH;
            }
        }
        // Everything up to this version is read: until the database changes, there is nothing more.
        self.data_version = complete.then_some(version);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::SqliteTransport;
    use crate::transport::{Event, Transport};

    /// A member whose log's file is deleted stops for good: `recv` fails, saying why, and `stopped` says so too
    /// (it used to go on, reading nothing, for good).
    #[tokio::test]
    async fn a_member_stops_for_good_saying_why_when_its_log_is_deleted() {
        let dir = std::env::temp_dir().join(format!("livecheck-member-{}", fastrand::u64(..)));
        let path = dir.join("lc.sqlite3");
        let transport = SqliteTransport::open(&path).unwrap().with_partitions(1);
        let mut member = transport.subscribe(&["s"], "g").await.unwrap();
        let assigned = tokio::time::timeout(Duration::from_secs(5), member.recv()).await.unwrap().unwrap();
        assert!(matches!(assigned, Event::Assigned(_)), "{assigned:?}");
        assert!(member.stopped().is_none(), "it runs");

        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let error = tokio::time::timeout(Duration::from_secs(5), member.recv())
            .await
            .expect("the member stops within a heartbeat or so")
            .expect_err("no event from a deleted log");
        assert!(!error.is_retriable());
        let error = crate::error::with_causes(&error);
        assert!(error.contains("was deleted while in use"), "{error}");
        let cause = member.stopped().expect("stopped for good");
        assert!(cause.to_string().contains("was deleted while in use"), "{cause}");
        assert!(member.try_recv().is_err(), "and stays stopped");
        drop(member);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
