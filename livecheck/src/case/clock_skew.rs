//! Noticing that this instance's clock and the services' disagree: executions that arrive already expired, or
//! issued in the future, in a row. Each alone is skipped (or run) as usual; in numbers they are a suite failure of
//! their own kind ([`SuiteFailureKind::ClockSkew`](super::SuiteFailureKind::ClockSkew)), with the skew measured.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::wire::timestamp;

/// Executions arriving skewed in a row before the case fails for it (fewer when `max_consecutive_failures` is).
pub(crate) const SKEWED_IN_A_ROW: u32 = 10;

/// How far in the future an execution may be issued, by this instance's clock, before it counts as skewed.
pub(crate) const FUTURE_TOLERANCE: Duration = Duration::from_secs(60);

/// Since when executions arrive skewed, and by how much.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ClockSkewState {
    /// When the first of the executions in a row arrived.
    #[serde(serialize_with = "timestamp::serialize")]
    pub since: DateTime<Utc>,
    /// How far this instance's clock was from the last one's issue time when it arrived, in seconds: positive when
    /// the instance's clock is ahead (the execution arrived expired), negative when behind (issued in the future).
    /// It includes the time the execution waited on the stream.
    pub skew_seconds: f64,
    /// Executions in a row that arrived expired or from the future.
    pub executions: u32,
}

/// Executions arriving skewed in a row.
#[derive(Default)]
pub(crate) struct ClockSkew {
    state: Option<ClockSkewState>,
}

/// What one arrival says about the clocks.
#[derive(Debug, PartialEq)]
pub(crate) enum Arrival {
    /// In time: the clocks agree (well enough).
    InTime,
    /// Skewed, but not yet in numbers.
    Skewed,
    /// Skewed, the `SKEWED_IN_A_ROW`th in a row or more: the reason, in words.
    SkewedInNumbers(String),
}

impl ClockSkew {
    /// An execution issued at `issued`, expiring at `expires`, arrived at `now`; `in_a_row` skewed ones make a
    /// suite failure.
    pub(crate) fn arrived(
        &mut self,
        issued: DateTime<Utc>,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
        in_a_row: u32,
    ) -> Arrival {
        let future = chrono::TimeDelta::from_std(FUTURE_TOLERANCE).expect("a minute");
        let expired = expires <= now;
        let from_the_future = issued > now + future;
        if !expired && !from_the_future {
            self.state = None;
            return Arrival::InTime;
        }
        let skew_seconds = (now - issued).as_seconds_f64();
        let state = self.state.get_or_insert(ClockSkewState { since: now, skew_seconds, executions: 0 });
        state.executions += 1;
        state.skew_seconds = skew_seconds;
        if state.executions < in_a_row.max(1) {
            return Arrival::Skewed;
        }
        let by = duration_words(skew_seconds.abs());
        let executions = state.executions;
        Arrival::SkewedInNumbers(if expired {
            format!(
                "clock skew: {executions} executions in a row arrived expired, issued {by} before this instance's \
                 clock: it may be ahead of the services' clocks (or the executions waited that long to be read)"
            )
        } else {
            format!(
                "clock skew: {executions} executions in a row arrived issued {by} in the future by this instance's \
                 clock: it may be behind the services' clocks"
            )
        })
    }

    /// Since when executions arrive skewed, while they do.
    pub(crate) fn state(&self) -> Option<&ClockSkewState> {
        self.state.as_ref()
    }
}

/// `42 s`, `5 min 3 s`, `3 h 5 min`.
fn duration_words(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn expired_or_future_executions_in_a_row_are_skew_and_one_in_time_ends_it() {
        let mut skew = ClockSkew::default();
        // Issued 3 h 5 min ago by this clock, expired 5 min ago.
        let (issued, expires, now) = (at(0), at(3 * 3600), at(3 * 3600 + 300));
        assert_eq!(skew.arrived(issued, expires, now, 3), Arrival::Skewed);
        assert_eq!(skew.arrived(issued, expires, now, 3), Arrival::Skewed);
        let Arrival::SkewedInNumbers(reason) = skew.arrived(issued, expires, now, 3) else { panic!("third") };
        assert!(reason.contains("3 executions in a row arrived expired, issued 3 h 5 min before"), "{reason}");
        let state = skew.state().unwrap();
        assert_eq!((state.since, state.skew_seconds, state.executions), (now, 11_100.0, 3));

        assert_eq!(skew.arrived(at(0), at(100), at(50), 3), Arrival::InTime);
        assert!(skew.state().is_none());

        // Issued two hours ahead of this clock.
        let (issued, expires, now) = (at(7200), at(7200 + 3600), at(0));
        assert_eq!(skew.arrived(issued, expires, now, 2), Arrival::Skewed);
        let Arrival::SkewedInNumbers(reason) = skew.arrived(issued, expires, now, 2) else { panic!("second") };
        assert!(reason.contains("issued 2 h 0 min in the future"), "{reason}");
        assert_eq!(skew.state().unwrap().skew_seconds, -7200.0);
        // Within the tolerance: in time.
        assert_eq!(skew.arrived(at(30), at(3600), at(0), 2), Arrival::InTime);
    }
}
