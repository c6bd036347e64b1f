//! Executions that already have a report, so that a copy of one — delivered again after a crash or a rebalance,
//! replayed onto the pending-tests stream, or written twice by a producer's retry — is never run again.
//!
//! **What is remembered, and for how long.** Each execution this instance reported (or found reported) is kept,
//! as a keyed 64-bit hash of its id and its issue time, until its expiry plus [`REMEMBERED_AFTER_EXPIRY`]: a copy
//! arriving meanwhile is dropped, counted in `tests_redelivered`. A copy arriving later than that is expired: it
//! is skipped (one SKIP report saying so, never run). At most `remembered_reports` executions are kept (about
//! 64 bytes each: a 16-byte entry and a control byte in a hash table at its lowest load); beyond, those expiring first are forgotten, counted in
//! `reports_forgotten`.
//!
//! **Across restarts and rebalances.** When a member is assigned a partition, it reads the report stream's same
//! partition from the lower of two positions stored with the group's commits:
//! - the *mark*: how far the report partition reached when the message at the committed offset was read. Any
//!   report of an execution delivered again (it finished after the last commit) was published after that.
//! - the *horizon*: how far the report partition reached about `test_expires` + [`REMEMBERED_AFTER_EXPIRY`] ago
//!   (the longest of the cases'). Any report of an execution not yet forgotten was published after that, so a
//!   replay of an old message is recognised after a restart too.
//!
//! Reading is bounded by `remembered_reports` per partition.

use std::{
    collections::{hash_map::RandomState, HashMap, VecDeque},
    hash::BuildHasher,
    sync::Mutex,
    time::Duration,
};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::LiveCheck;
use crate::Result;

/// Reports read at a time.
const PAGE: usize = 1000;

/// How long after its expiry an execution's report is still remembered: copies that arrive a little after their
/// expiry (clocks of instances a little apart, a slow broker) are still recognised.
pub(crate) const REMEMBERED_AFTER_EXPIRY: Duration = Duration::from_secs(600);

/// The default of `remembered_reports`: about 16 MiB at most.
pub(crate) const DEFAULT_REMEMBERED: usize = 250_000;

/// The positions stored with a commit: the report stream's mark and horizon (see the module's docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ReportMarks {
    pub(crate) mark: u64,
    pub(crate) horizon: u64,
}

impl ReportMarks {
    /// The metadata committed with an offset: `reports={mark};since={horizon}`.
    pub(crate) fn metadata(self) -> String {
        format!("reports={};since={}", self.mark, self.horizon)
    }

    /// The marks in committed metadata, if it has them; metadata of an earlier version (`reports={mark}`) has no
    /// horizon: the mark stands for it.
    pub(crate) fn parse(metadata: &str) -> Option<Self> {
        let rest = metadata.strip_prefix("reports=")?;
        let (mark, horizon) = match rest.split_once(";since=") {
            Some((mark, horizon)) => (mark.parse().ok()?, horizon.parse().ok()?),
            None => (rest.parse().ok()?, rest.parse().ok()?),
        };
        Some(ReportMarks { mark, horizon })
    }

    /// Where reading the report stream must start to find every report still remembered.
    pub(crate) fn scan_from(self) -> u64 {
        self.mark.min(self.horizon)
    }
}

/// Remembered executions: a keyed hash of (id, issue time in µs) → expiry in µs.
pub(crate) struct ReportedExecutions {
    state: Mutex<Remembered>,
    limit: usize,
    hasher: RandomState,
}

#[derive(Default)]
struct Remembered {
    executions: HashMap<u64, i64>,
    /// When the expired ones were last dropped (µs since the epoch).
    pruned_at: i64,
}

/// How often expired executions are dropped, at most.
const PRUNE_EVERY_MICROS: i64 = 60_000_000;

/// What [`ReportedExecutions::remember`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Remembering {
    /// Executions forgotten to stay within the limit (not expired yet).
    pub(crate) forgotten: usize,
}

impl ReportedExecutions {
    /// Remembers at most `limit` executions (at least one).
    pub(crate) fn new(limit: usize) -> Self {
        ReportedExecutions { state: Mutex::default(), limit: limit.max(1), hasher: RandomState::new() }
    }

    fn key(&self, id: &str, issued: DateTime<Utc>) -> u64 {
        self.hasher.hash_one((id, issued.timestamp_micros()))
    }

    /// Whether the execution `id` issued at `issued` has a report that is still remembered at `now`.
    pub(crate) fn contains(&self, id: &str, issued: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        let key = self.key(id, issued);
        crate::sync::lock(&self.state).executions.get(&key).is_some_and(|until| *until > now.timestamp_micros())
    }

    /// Remembers that the execution `id` issued at `issued`, expiring at `expires`, has a report, until `expires`
    /// plus [`REMEMBERED_AFTER_EXPIRY`]; `now` is the wall clock's time.
    pub(crate) fn remember(
        &self,
        id: &str,
        issued: DateTime<Utc>,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Remembering {
        let key = self.key(id, issued);
        let until = expires.timestamp_micros().saturating_add(REMEMBERED_AFTER_EXPIRY.as_micros() as i64);
        let now = now.timestamp_micros();
        let mut state = crate::sync::lock(&self.state);
        let mut done = Remembering::default();
        if now.saturating_sub(state.pruned_at) >= PRUNE_EVERY_MICROS {
            state.executions.retain(|_, until| *until > now);
            state.pruned_at = now;
        }
        if state.executions.len() >= self.limit && !state.executions.contains_key(&key) {
            state.executions.retain(|_, until| *until > now);
            state.pruned_at = now;
            if state.executions.len() >= self.limit {
                done.forgotten = forget_first_expiring(&mut state.executions, self.limit / 10 + 1);
            }
        }
        if until > now {
            let kept = state.executions.entry(key).or_insert(until);
            *kept = (*kept).max(until);
        }
        done
    }

    /// Forgets the execution `id` issued at `issued` (its report could not be published after all: it is to run
    /// again).
    pub(crate) fn forget(&self, id: &str, issued: DateTime<Utc>) {
        let key = self.key(id, issued);
        crate::sync::lock(&self.state).executions.remove(&key);
    }

    /// How many executions may be remembered.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// How many executions are remembered.
    pub(crate) fn len(&self) -> usize {
        crate::sync::lock(&self.state).executions.len()
    }

    /// Reads `partition` of the report stream from `from` to `end`, remembering every execution reported there;
    /// the router learns of each, so that its signals, read again, are known to be late. Returns how many reports
    /// of executions it read, and how many executions were forgotten to stay within the limit.
    pub(crate) async fn scan(app: &LiveCheck, partition: u32, from: u64, end: u64) -> Result<(usize, usize)> {
        let shared = &app.shared;
        let reported = &shared.reported;
        let (mut read, mut forgotten) = (0, 0);
        let mut next = from;
        let now = shared.clock.now();
        while next < end {
            let page = shared.transport.read(&shared.streams.reports, partition, next, PAGE).await?;
            let Some(last) = page.last() else { break };
            next = last.offset + 1;
            for received in &page {
                // Suite reports (no test) and anything that does not decode are not executions' reports.
                let Ok(ReportedTest { test: Some(test) }) = serde_json::from_slice(&received.message.value) else {
                    continue;
                };
                shared.router.already_reported(&test.id, test.timestamp);
                read += 1;
                forgotten += reported.remember(&test.id, test.timestamp, test.expires, now).forgotten;
            }
        }
        Ok((read, forgotten))
    }
}

/// Drops the `n` executions remembered until the earliest; returns how many were dropped.
fn forget_first_expiring(executions: &mut HashMap<u64, i64>, n: usize) -> usize {
    let n = n.min(executions.len());
    if n == 0 {
        return 0;
    }
    let mut untils: Vec<i64> = executions.values().copied().collect();
    let (_, cut, _) = untils.select_nth_unstable(n - 1);
    let cut = *cut;
    let before = executions.len();
    // Ties at the cut may drop a few more than `n`: harmless, and it keeps this one pass.
    executions.retain(|_, until| *until > cut);
    before - executions.len()
}

#[derive(Deserialize)]
struct ReportedTest {
    test: Option<ExecutionIdentity>,
}

#[derive(Deserialize)]
struct ExecutionIdentity {
    id: String,
    #[serde(with = "crate::wire::timestamp")]
    timestamp: DateTime<Utc>,
    #[serde(with = "crate::wire::timestamp")]
    expires: DateTime<Utc>,
}

/// How far a partition of the report stream reached over time, to know its horizon: the position reached about
/// `window` ago (see the module's docs).
pub(crate) struct ReportHorizon {
    /// The horizon until a sample is old enough: where this member started from.
    floor: u64,
    /// (when, how far the report partition reached then), oldest first, at most one a minute.
    samples: VecDeque<(DateTime<Utc>, u64)>,
}

/// How often the report partition's position is sampled.
const SAMPLE_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

impl ReportHorizon {
    /// Starting from `floor`: the horizon the partition was assigned with.
    pub(crate) fn new(floor: u64) -> Self {
        ReportHorizon { floor, samples: VecDeque::new() }
    }

    /// Notes that the report partition reached `mark` at `now` (kept at most once a minute).
    pub(crate) fn sample(&mut self, now: DateTime<Utc>, mark: u64) {
        if self.samples.back().is_none_or(|(at, _)| now - *at >= SAMPLE_EVERY) {
            self.samples.push_back((now, mark));
        }
    }

    /// The position the report partition reached `window` before `now` (or where this member started, when it
    /// has not run that long).
    pub(crate) fn at(&mut self, now: DateTime<Utc>, window: Duration) -> u64 {
        let window = chrono::TimeDelta::from_std(window).unwrap_or(chrono::TimeDelta::MAX);
        let Some(cutoff) = now.checked_sub_signed(window) else { return self.floor };
        // The newest sample at or before the cutoff becomes the floor; older ones are no longer needed.
        while self.samples.front().is_some_and(|(at, _)| *at <= cutoff) {
            let (_, mark) = self.samples.pop_front().expect("checked");
            self.floor = self.floor.max(mark);
        }
        self.floor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn the_marks_round_trip_through_commit_metadata_and_read_an_earlier_version() {
        let marks = ReportMarks { mark: 42, horizon: 7 };
        assert_eq!(ReportMarks::parse(&marks.metadata()), Some(marks));
        assert_eq!(marks.scan_from(), 7);
        assert_eq!(ReportMarks::parse("reports=42"), Some(ReportMarks { mark: 42, horizon: 42 }));
        for bad in ["", "reports=x", "reports=1;since=", "reports=1;since=x", "since=1"] {
            assert_eq!(ReportMarks::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn an_execution_is_remembered_by_id_and_issue_time_until_its_expiry_and_a_grace() {
        let reported = ReportedExecutions::new(10);
        let grace = REMEMBERED_AFTER_EXPIRY.as_secs() as i64;
        reported.remember("t-1", at(0), at(100), at(1));
        assert!(reported.contains("t-1", at(0), at(0)));
        assert!(!reported.contains("t-1", at(1), at(0)), "another execution reusing the id");
        assert!(!reported.contains("t-2", at(0), at(0)));
        // Pruned once the grace after its expiry passed (pruning runs at most once a minute, on a new report).
        reported.remember("t-2", at(0), at(100), at(100 + grace - 1));
        assert!(reported.contains("t-1", at(0), at(0)), "still within the grace");
        assert!(!reported.contains("t-1", at(0), at(100 + grace)), "forgotten once the grace passed");
        reported.remember("t-3", at(0), at(10_000), at(100 + grace + 61));
        assert!(!reported.contains("t-1", at(0), at(0)) && !reported.contains("t-2", at(0), at(0)));
        assert!(reported.contains("t-3", at(0), at(0)));
        // Expired long ago: not kept at all.
        reported.remember("t-4", at(0), at(1), at(100_000));
        assert!(!reported.contains("t-4", at(0), at(0)));
    }

    #[test]
    fn at_the_limit_those_expiring_first_are_forgotten() {
        let reported = ReportedExecutions::new(10);
        for i in 0..10 {
            assert_eq!(reported.remember(&format!("t-{i}"), at(0), at(1000 + i), at(0)).forgotten, 0);
        }
        let done = reported.remember("t-new", at(0), at(5000), at(0));
        assert_eq!(done.forgotten, 2, "a tenth and one");
        assert_eq!(reported.len(), 9);
        assert!(!reported.contains("t-0", at(0), at(0)) && !reported.contains("t-1", at(0), at(0)));
        assert!(reported.contains("t-2", at(0), at(0)) && reported.contains("t-new", at(0), at(0)));
    }

    #[test]
    fn the_horizon_is_the_position_reached_a_window_ago_or_the_start() {
        let window = Duration::from_secs(3600);
        let mut horizon = ReportHorizon::new(5);
        horizon.sample(at(0), 10);
        horizon.sample(at(30), 11); // within the minute: not kept
        horizon.sample(at(60), 20);
        horizon.sample(at(1800), 30);
        assert_eq!(horizon.at(at(1000), window), 5, "not running for a window yet");
        assert_eq!(horizon.at(at(3600), window), 10);
        assert_eq!(horizon.at(at(3700), window), 20);
        assert_eq!(horizon.at(at(100_000), window), 30);
        assert_eq!(horizon.at(at(100_000), Duration::MAX), 30, "an unbounded window keeps the floor");
    }
}
