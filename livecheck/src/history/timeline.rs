//! A case's outcomes over the last hours, in fixed-size buckets: how many executions passed, were degraded, failed
//! and were skipped per minute, their runtime's median and 99th percentile, and each stage's latency from the
//! issue (median and 99th) — what the dashboard's charts draw. Memory is bounded per case: [`BUCKETS`] buckets of
//! about 280 bytes and 256 more per declared signal: some 100 KiB when all are filled, 370 KiB for a case of three
//! signals.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{history::SignalStatus, observe::SignalOutcome, State};

/// How long one bucket spans, in seconds.
pub(crate) const BUCKET_SECONDS: i64 = 60;
/// How many buckets are kept: 6 hours of minutes.
pub(crate) const BUCKETS: usize = 360;
/// Runtime bins: 3 per doubling from 1 ms, so about 26 % wide; the last holds everything from ~35 min on.
const BINS: usize = 64;

/// One bucket of a case's timeline, as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TimelineBucket {
    /// When the bucket starts (it spans `bucket_seconds`).
    pub start: DateTime<Utc>,
    /// Executions that passed.
    pub passed: u32,
    /// Executions that passed with a stage over its latency budget.
    pub degraded: u32,
    /// Executions that failed: FAIL, ERROR or TIMEOUT.
    pub failed: u32,
    /// Executions skipped.
    pub skipped: u32,
    /// The median runtime of the executions that ran, in seconds (to within a bin, about 26 %).
    pub runtime_p50_seconds: Option<f64>,
    /// The 99th percentile of their runtime, in seconds (to within a bin).
    pub runtime_p99_seconds: Option<f64>,
    /// Each declared signal's latency from the issue (in declaration order): median and 99th percentile, in
    /// seconds, to within a bin; `null` when it did not arrive in this minute.
    pub stages: Vec<StageLatency>,
}

/// One stage's latency within a bucket.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StageLatency {
    /// The median, in seconds.
    pub p50_seconds: Option<f64>,
    /// The 99th percentile, in seconds.
    pub p99_seconds: Option<f64>,
}

/// The buckets of one case, oldest first.
#[derive(Default)]
pub(crate) struct CaseTimeline {
    buckets: VecDeque<Bucket>,
}

struct Bucket {
    /// Its index since the epoch (`seconds / BUCKET_SECONDS`).
    index: i64,
    passed: u32,
    degraded: u32,
    failed: u32,
    skipped: u32,
    runtimes: [u32; BINS],
    /// Per declared signal, its latencies from the issue.
    stages: Vec<[u32; BINS]>,
}

impl CaseTimeline {
    /// Counts an execution that finished at `at` in `state`, having run `runtime` seconds (`None`: not run), with
    /// what became of its declared signals.
    pub(crate) fn record(&mut self, at: DateTime<Utc>, state: State, runtime: Option<f64>, signals: &[SignalOutcome]) {
        let index = at.timestamp().div_euclid(BUCKET_SECONDS);
        let bucket = match self.buckets.iter().rposition(|b| b.index == index) {
            Some(found) => &mut self.buckets[found],
            None => {
                // Out of order by more than a bucket (a clock step back): counted in the newest.
                if self.buckets.back().is_some_and(|newest| newest.index > index) {
                    self.buckets.back_mut().expect("there is a newest")
                } else {
                    self.buckets.push_back(Bucket {
                        index,
                        passed: 0,
                        degraded: 0,
                        failed: 0,
                        skipped: 0,
                        runtimes: [0; BINS],
                        stages: Vec::new(),
                    });
                    while self.buckets.len() > BUCKETS {
                        self.buckets.pop_front();
                    }
                    self.buckets.back_mut().expect("just pushed")
                }
            }
        };
        match state {
            State::Pass => bucket.passed += 1,
            State::Degraded => bucket.degraded += 1,
            State::Skip => bucket.skipped += 1,
            State::Fail | State::Error | State::Timeout => bucket.failed += 1,
            State::Init | State::Stall => return,
        }
        if let Some(runtime) = runtime.filter(|r| r.is_finite() && *r >= 0.0) {
            bucket.runtimes[bin_of(runtime)] += 1;
        }
        if bucket.stages.len() < signals.len() {
            bucket.stages.resize(signals.len(), [0; BINS]);
        }
        for (bins, outcome) in bucket.stages.iter_mut().zip(signals) {
            if let (SignalStatus::Received, Some(latency)) = (outcome.status, outcome.after_issue_seconds) {
                if latency.is_finite() {
                    bins[bin_of(latency.max(0.0))] += 1;
                }
            }
        }
    }

    /// The buckets of the last `BUCKETS` minutes before `now` that hold anything, oldest first.
    pub(crate) fn buckets(&self, now: DateTime<Utc>) -> Vec<TimelineBucket> {
        let oldest = now.timestamp().div_euclid(BUCKET_SECONDS) - BUCKETS as i64;
        self.buckets
            .iter()
            .filter(|b| b.index > oldest)
            .map(|b| TimelineBucket {
                start: DateTime::from_timestamp(b.index * BUCKET_SECONDS, 0).unwrap_or_default(),
                passed: b.passed,
                degraded: b.degraded,
                failed: b.failed,
                skipped: b.skipped,
                runtime_p50_seconds: percentile(&b.runtimes, 0.50),
                runtime_p99_seconds: percentile(&b.runtimes, 0.99),
                stages: b
                    .stages
                    .iter()
                    .map(|bins| StageLatency {
                        p50_seconds: percentile(bins, 0.50),
                        p99_seconds: percentile(bins, 0.99),
                    })
                    .collect(),
            })
            .collect()
    }
}

/// The bin of a runtime in seconds.
fn bin_of(seconds: f64) -> usize {
    let ms = seconds * 1e3;
    if ms <= 1.0 {
        return 0;
    }
    ((ms.log2() * 3.0).ceil() as usize).min(BINS - 1)
}

/// The upper bound of bin `bin`, in seconds.
fn bin_top(bin: usize) -> f64 {
    2f64.powf(bin as f64 / 3.0) / 1e3
}

/// The `q` quantile of the binned runtimes (the top of the bin it falls in); `None` without any.
fn percentile(bins: &[u32; BINS], q: f64) -> Option<f64> {
    let total: u64 = bins.iter().map(|n| u64::from(*n)).sum();
    if total == 0 {
        return None;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0u64;
    for (bin, n) in bins.iter().enumerate() {
        seen += u64::from(*n);
        if seen >= rank {
            return Some(bin_top(bin));
        }
    }
    Some(bin_top(BINS - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn stages(latency: f64) -> [SignalOutcome; 2] {
        [
            SignalOutcome::received("sent".into(), latency, None),
            SignalOutcome {
                signal: "executed".into(),
                status: SignalStatus::Missing,
                after_issue_seconds: None,
                service_version: None,
            },
        ]
    }

    #[test]
    fn counts_per_minute_with_runtime_percentiles_within_a_bin() {
        let mut timeline = CaseTimeline::default();
        for i in 0..100 {
            let latency = 0.005 + f64::from(i as u32) * 0.0001;
            timeline.record(at(i % 60), State::Pass, Some(0.010 + f64::from(i as u32) * 0.0001), &stages(latency));
        }
        timeline.record(at(10), State::Timeout, Some(30.0), &[]);
        timeline.record(at(20), State::Degraded, Some(0.012), &[]);
        timeline.record(at(70), State::Skip, None, &[]);
        timeline.record(at(70), State::Fail, Some(0.5), &[]);
        let buckets = timeline.buckets(at(120));
        assert_eq!(buckets.len(), 2);
        assert_eq!((buckets[0].passed, buckets[0].degraded, buckets[0].failed, buckets[0].skipped), (100, 1, 1, 0));
        let sent = buckets[0].stages[0];
        assert!((0.0075..0.0105).contains(&sent.p50_seconds.unwrap()), "{sent:?}");
        assert_eq!(buckets[0].stages[1].p99_seconds, None, "the second stage never arrived");
        assert!(buckets[1].stages.is_empty());
        let p50 = buckets[0].runtime_p50_seconds.unwrap();
        assert!((0.014..0.020).contains(&p50), "{p50}");
        assert!(buckets[0].runtime_p99_seconds.unwrap() >= 0.019, "the 99th is among the slowest");
        assert_eq!((buckets[1].passed, buckets[1].failed, buckets[1].skipped), (0, 1, 1));
        assert!((0.5..0.65).contains(&buckets[1].runtime_p50_seconds.unwrap()));
    }

    #[test]
    fn keeps_six_hours_and_shows_only_the_last_ones() {
        let mut timeline = CaseTimeline::default();
        for minute in 0..(BUCKETS as i64 + 50) {
            timeline.record(at(minute * 60), State::Pass, Some(0.1), &[]);
        }
        assert_eq!(timeline.buckets.len(), BUCKETS, "bounded");
        let now = at((BUCKETS as i64 + 49) * 60);
        let shown = timeline.buckets(now);
        assert_eq!(shown.len(), BUCKETS);
        assert!(shown.windows(2).all(|w| w[0].start < w[1].start));
        // A clock step back: counted in the newest bucket, nothing reordered.
        timeline.record(at(0), State::Fail, Some(0.1), &[]);
        assert_eq!(timeline.buckets(now).last().unwrap().failed, 1);
        assert_eq!(bin_of(-1.0_f64.max(0.0)), 0);
        assert_eq!(bin_of(1e9), BINS - 1);
    }
}
