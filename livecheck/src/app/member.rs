//! The LiveCheck instance's one member of its group, for the pending-tests and bus streams together: partition
//! *p* of both is always this member's or another's, so a test and its signals meet in one process.
//!
//! - **Tests** run in tasks of their own, at most `max_concurrent_tests` at once; at the limit the pending stream
//!   is paused while signals and assignment changes keep flowing. A test's offset is committed once it has a
//!   verdict (and its report is out).
//! - **Signals** are routed as they arrive. The bus is committed only below the lowest signal still needed — held
//!   for a test not started, or given to a test without a report yet — so a restart or a new owner reads again
//!   every signal of every unfinished test.
//! - **Assigned** partitions: the report stream is read from the committed mark and horizon (see `reported.rs`)
//!   so that an execution delivered again or replayed that already has a report is not run again.
//! - **Revoked** partitions: their tests stop without a verdict, their commits are written, their held signals
//!   are dropped; then the partition is let go.
//! - **Shutdown**: tests still executing stop without a verdict; those publishing their report are waited for
//!   until `give_up` (the instance's `shutdown_timeout`), then what finished is committed.

use std::{
    collections::{HashMap, VecDeque},
    time::Duration,
};

use tokio::{sync::mpsc, time::MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::{
    bus,
    consumer::{Completion, Done, Handled},
    offsets::OffsetTracker,
    pending,
    reported::{ReportHorizon, ReportMarks, ReportedExecutions, REMEMBERED_AFTER_EXPIRY},
    LiveCheck,
};
use crate::{
    backoff::Backoff,
    runner::BusPosition,
    transport::{Assignment, Event, Received, Subscription},
    Result,
};

/// How often finished work is committed.
const COMMIT_EVERY: Duration = Duration::from_millis(100);

/// Runs the member until `shutdown`; then interrupts the tests in flight (no verdict), waits for them — for those
/// publishing their report, until `give_up` at most — and commits what finished. A subscription that stopped for
/// good (the log deleted) ends it too, said in `runs` (`/healthz` is 503 from then on): its tests are interrupted
/// likewise — no signal can reach them any more — and nothing can be committed.
pub(crate) async fn run(
    app: LiveCheck,
    mut subscription: Box<dyn Subscription>,
    runs: super::ConsumerRuns,
    shutdown: CancellationToken,
    give_up: CancellationToken,
) {
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    // Reports are remembered as long as the longest-lived execution of any case is.
    let longest = app.registry.all().iter().map(|case| case.core().settings.test_expires).max().unwrap_or_default();
    let mut member = Member {
        remembered_for: longest.saturating_add(REMEMBERED_AFTER_EXPIRY),
        pending: app.shared.streams.pending.clone(),
        bus: app.shared.streams.bus.clone(),
        app,
        shutdown: shutdown.clone(),
        give_up: give_up.clone(),
        partitions: HashMap::new(),
        tests: OffsetTracker::default(),
        in_flight: 0,
        in_flight_bytes: 0,
        waiting: VecDeque::new(),
        waiting_bytes: 0,
        paused: false,
        done: done_tx,
    };
    let mut commit_every = tokio::time::interval(COMMIT_EVERY);
    commit_every.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut stopped = None;
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(done) = done_rx.recv() => member.finished(done),
            _ = commit_every.tick() => member.commit(subscription.as_mut()),
            event = subscription.recv() => match event {
                Ok(event) => {
                    member.handle(event, subscription.as_mut(), &mut done_rx).await;
                    // Take what else is ready, up to a batch, before looking at the other branches again.
                    for _ in 0..member.app.shared.config.bus_concurrency {
                        match subscription.try_recv() {
                            Ok(Some(event)) => member.handle(event, subscription.as_mut(), &mut done_rx).await,
                            Ok(None) => break,
                            Err(error) => {
                                tracing::warn!(error = %crate::error::with_causes(&error), "receiving failed");
                                break;
                            }
                        }
                    }
                }
                Err(error) => {
                    if let Some(cause) = subscription.stopped() {
                        tracing::error!(error = %cause, group = %member.app.shared.config.group,
                            "stopped consuming tests and signals for good; the instance must be restarted");
                        stopped = Some(cause);
                        break;
                    }
                    tracing::error!(error = %crate::error::with_causes(&error), "receiving tests and signals failed; retrying in 1 s");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            },
        }
        member.start_waiting(subscription.as_mut());
    }
    if let Some(cause) = stopped {
        runs.stopped(&cause);
        for work in member.partitions.values() {
            work.stop.cancel();
        }
    }
    while member.in_flight > 0 {
        tokio::select! {
            // What already finished first.
            biased;
            done = done_rx.recv() => match done {
                Some(done) => member.finished(done),
                None => break,
            },
            // Past the shutdown timeout, a test still publishing gives up (not committed: it runs again); one stuck
            // elsewhere (a case's hook) is not waited for.
            _ = give_up.cancelled() => break,
        }
    }
    if subscription.stopped().is_none() {
        member.commit(subscription.as_mut());
    }
    // Closing the subscription writes the commits and leaves the group, waiting for the transport as long as the
    // instance's shutdown deadline allows (off the async threads, which other tasks need meanwhile).
    subscription.close().await;
}

struct Member {
    app: LiveCheck,
    /// How far back the report stream is read when a partition is assigned (see `reported.rs`).
    remembered_for: Duration,
    pending: String,
    bus: String,
    shutdown: CancellationToken,
    give_up: CancellationToken,
    partitions: HashMap<u32, PartitionWork>,
    tests: OffsetTracker,
    in_flight: usize,
    /// The bytes of the messages of the tests in flight.
    in_flight_bytes: usize,
    /// Tests received while at the concurrency limit (the stream is paused, but some were on their way).
    waiting: VecDeque<Received>,
    /// The bytes of their messages.
    waiting_bytes: usize,
    paused: bool,
    done: mpsc::UnboundedSender<Done>,
}

/// What the member keeps for one assigned partition.
struct PartitionWork {
    /// Interrupts this partition's tests.
    stop: CancellationToken,
    /// Makes this partition's tests give up publishing their report (revoked, or the shutdown timeout passed).
    abandon: CancellationToken,
    /// Its tests running now.
    running: usize,
    /// How far this partition of the report stream reached, at least.
    report_mark: u64,
    /// How far it reached over time, for the horizon committed with the marks.
    horizon: ReportHorizon,
    /// The next bus offset to read, and the last bus position committed.
    bus_next: u64,
    bus_committed: Option<(u64, u64)>,
}

impl Member {
    async fn handle(
        &mut self,
        event: Event,
        subscription: &mut dyn Subscription,
        done_rx: &mut mpsc::UnboundedReceiver<Done>,
    ) {
        match event {
            Event::Message(received) if *received.stream == *self.bus => self.signal(&received),
            Event::Message(received) => {
                self.app.shared.lag.read_test(received.partition, received.offset);
                self.waiting_bytes += received.message.byte_len();
                self.waiting.push_back(received);
            }
            Event::Assigned(assignments) => {
                // Without knowing which of its executions have a report, a partition cannot be worked on: retry.
                let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
                let shutdown = self.shutdown.clone();
                loop {
                    // A transport that does not answer does not hold the shutdown up.
                    let error = tokio::select! {
                        assigned = self.assigned(&assignments) => match assigned {
                            Ok(()) => break,
                            Err(error) => error,
                        },
                        _ = shutdown.cancelled() => return,
                    };
                    let delay = backoff.next();
                    tracing::error!(error = %crate::error::with_causes(&error), retry_in = ?delay, "reading the reports of newly assigned partitions failed");
                    tokio::select! {
                        _ = self.shutdown.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
            Event::Revoked(partitions) => self.revoked(&partitions, subscription, done_rx).await,
        }
    }

    fn signal(&mut self, received: &Received) {
        let Some(work) = self.partitions.get_mut(&received.partition) else {
            tracing::debug!(partition = received.partition, "a signal of a partition not assigned here");
            return;
        };
        work.bus_next = received.offset + 1;
        self.app.shared.lag.read_signal(received.partition, received.offset);
        let position = BusPosition { partition: received.partition, offset: received.offset, mark: work.report_mark };
        bus::handle(&self.app, received, position);
    }

    /// Starts the tests waiting, as far as the limits of tests and bytes in flight allow (a test bigger than the
    /// byte limit starts when none runs). Up to another limit's worth of tests (or bytes) wait their turn here, so
    /// that one starts the moment another ends; the pending stream is paused when that many wait, and resumed once
    /// half of them started (not at every test: pausing is not free).
    fn start_waiting(&mut self, subscription: &mut dyn Subscription) {
        let config = &self.app.shared.config;
        let (limit, byte_limit) = (config.max_concurrent_tests, config.max_in_flight_bytes);
        while self.in_flight < limit {
            let Some(next) = self.waiting.front() else { break };
            let bytes = next.message.byte_len();
            if self.in_flight > 0 && self.in_flight_bytes + bytes > byte_limit {
                break;
            }
            let received = self.waiting.pop_front().expect("looked at");
            self.waiting_bytes -= bytes;
            self.start(received);
        }
        let held = self.waiting_bytes + self.in_flight_bytes;
        if !self.paused && (self.waiting.len() >= limit || held >= byte_limit) {
            self.paused = true;
            subscription.pause(&self.pending);
        } else if self.paused && self.waiting.len() <= limit / 2 && held <= byte_limit / 2 {
            self.paused = false;
            subscription.resume(&self.pending);
        }
    }

    fn start(&mut self, received: Received) {
        let Some(work) = self.partitions.get_mut(&received.partition) else {
            tracing::debug!(partition = received.partition, "a test of a partition not assigned here");
            return;
        };
        self.tests.started(received.partition, received.offset, work.report_mark);
        work.running += 1;
        self.in_flight += 1;
        self.in_flight_bytes += received.message.byte_len();
        let mut completion = Completion::new(&received, &self.done);
        let work = pending::handle(self.app.clone(), received, work.stop.clone(), work.abandon.clone());
        tokio::spawn(async move {
            let (handled, report) = work.await;
            completion.set(handled, report);
        });
    }

    fn finished(&mut self, done: Done) {
        self.in_flight -= 1;
        self.in_flight_bytes -= done.bytes;
        if let Some(work) = self.partitions.get_mut(&done.partition) {
            work.running -= 1;
        }
        if let Some(report) = done.report {
            if let Some(work) = self.partitions.get_mut(&report.partition) {
                work.report_mark = work.report_mark.max(report.offset + 1);
            }
        }
        // An interrupted test stays in flight: its offset is not committed, so it runs again.
        if done.handled == Handled::Done {
            self.tests.finished(done.partition, done.offset);
        }
    }

    /// Reads the reports of the new partitions since their commits' marks and horizons, then starts reading them.
    async fn assigned(&mut self, assignments: &[Assignment]) -> Result<()> {
        let shared = &self.app.shared;
        let streams = &shared.streams;
        let report_ends = shared.transport.end_offsets(&streams.reports).await?;
        for assignment in assignments {
            let partition = assignment.partition;
            if self.partitions.contains_key(&partition) {
                continue;
            }
            let pending = assignment.committed(&self.pending).cloned().unwrap_or_default();
            let bus = assignment.committed(&self.bus).cloned().unwrap_or_default();
            let marks = |metadata: &str| ReportMarks::parse(metadata).unwrap_or_default();
            let (pending_marks, bus_marks) = (marks(&pending.metadata), marks(&bus.metadata));
            let end = report_ends.get(partition as usize).copied().unwrap_or(0);
            // Never more reports than can be remembered.
            let oldest_kept = end.saturating_sub(shared.reported.limit() as u64);
            let from = pending_marks.scan_from().min(bus_marks.scan_from()).max(oldest_kept);
            let (reported, forgotten) = ReportedExecutions::scan(&self.app, partition, from, end).await?;
            shared.metrics.reports_forgotten.add(forgotten as u64);
            tracing::debug!(
                partition,
                tests_from = pending.offset,
                signals_from = bus.offset,
                reports_from = from,
                reported,
                "partition assigned"
            );
            self.tests.assigned(partition, pending.offset);
            shared.lag.assigned(partition, pending.offset, bus.offset);
            let work = PartitionWork {
                stop: self.shutdown.child_token(),
                abandon: self.give_up.child_token(),
                running: 0,
                report_mark: end,
                horizon: ReportHorizon::new(from),
                bus_next: bus.offset,
                bus_committed: Some((bus.offset, bus_marks.mark)),
            };
            self.partitions.insert(partition, work);
        }
        Ok(())
    }

    /// Stops the revoked partitions' tests (no verdict), waits for them, commits, and forgets the partitions.
    async fn revoked(
        &mut self,
        partitions: &[u32],
        subscription: &mut dyn Subscription,
        done_rx: &mut mpsc::UnboundedReceiver<Done>,
    ) {
        for partition in partitions {
            if let Some(work) = self.partitions.get(partition) {
                work.stop.cancel();
                work.abandon.cancel();
            }
        }
        self.waiting.retain(|r| !partitions.contains(&r.partition));
        self.waiting_bytes = self.waiting.iter().map(|r| r.message.byte_len()).sum();
        let running = |m: &Member| partitions.iter().any(|p| m.partitions.get(p).is_some_and(|w| w.running > 0));
        while running(self) {
            let Some(done) = done_rx.recv().await else { break };
            self.finished(done);
        }
        self.commit(subscription);
        for partition in partitions {
            self.partitions.remove(partition);
            self.tests.forget(*partition);
            self.app.shared.lag.revoked(*partition);
            self.app.shared.router.forget_partition(*partition);
        }
        tracing::debug!(?partitions, "partitions revoked");
    }

    /// Commits, for every partition, the tests that have a verdict and the signals no longer needed.
    fn commit(&mut self, subscription: &mut dyn Subscription) {
        let router = &self.app.shared.router;
        let now = self.app.shared.clock.now();
        for (partition, work) in &mut self.partitions {
            work.horizon.sample(now, work.report_mark);
            let horizon = work.horizon.at(now, self.remembered_for);
            let metadata = |mark| ReportMarks { mark, horizon }.metadata();
            if let Some((offset, mark)) = self.tests.commit_point(*partition, work.report_mark) {
                if let Err(error) = subscription.commit(&self.pending, *partition, offset, &metadata(mark)) {
                    tracing::warn!(error = %crate::error::with_causes(&error), partition, "committing tests failed; will retry");
                }
            }
            let bus = router.lowest_needed(*partition).unwrap_or((work.bus_next, work.report_mark));
            if work.bus_committed != Some(bus) {
                work.bus_committed = Some(bus);
                if let Err(error) = subscription.commit(&self.bus, *partition, bus.0, &metadata(bus.1)) {
                    tracing::warn!(error = %crate::error::with_causes(&error), partition, "committing signals failed; will retry");
                }
            }
        }
    }
}
