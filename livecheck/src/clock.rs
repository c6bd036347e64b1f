//! Wall-clock and monotonic time, kept apart.

use chrono::{DateTime, SubsecRound, Utc};
use tokio::time::Instant;

/// Where LiveCheck reads the time of day.
///
/// Timestamps on the wire (issue time, expiry) are wall-clock; every delay and timeout is measured on the monotonic
/// clock ([`tokio::time::Instant`]). The two are never compared with each other.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// The system's wall clock (the default).
    #[default]
    System,
    /// A wall clock that advances with tokio's clock from an anchor: with `tokio::time::pause()` in tests, time of
    /// day moves exactly as paused time does.
    FollowTokio {
        /// Wall-clock time at the anchor.
        wall: DateTime<Utc>,
        /// Tokio instant at the anchor.
        instant: Instant,
    },
}

impl Clock {
    /// A wall clock anchored now that follows tokio's (possibly paused) clock.
    pub fn follow_tokio() -> Self {
        Clock::FollowTokio { wall: Utc::now(), instant: Instant::now() }
    }

    /// The time of day, truncated to microseconds (the precision of the wire format).
    pub fn now(&self) -> DateTime<Utc> {
        let now = match self {
            Clock::System => Utc::now(),
            Clock::FollowTokio { wall, instant } => {
                let elapsed = chrono::Duration::from_std(instant.elapsed()).unwrap_or(chrono::Duration::zero());
                *wall + elapsed
            }
        };
        now.trunc_subsecs(6)
    }
}
