//! Delays between the attempts of an operation retried on transient errors: each a factor longer than the one
//! before, up to a maximum, and drawn at random below that when jitter is asked for — so that processes that fail
//! together do not all retry at the same moment. Without jitter the delays are exact (tests assert them).

use std::time::Duration;

/// Delays that start at `first` and grow by a factor (2 unless set) up to `max`, optionally with jitter: the fake
/// requests' retries (×`url_error_delay_backoff`, exact), the embedded log's open retries (jittered), the report
/// publisher, the consumers, the alert sender and the broker waits.
#[derive(Clone, Debug)]
pub(crate) struct Backoff {
    /// The delay of the next step, before jitter.
    next: Duration,
    max: Duration,
    factor: f64,
    /// The share of each step's delay that is random: 0 (exact) to 1.
    jitter: f64,
}

impl Backoff {
    /// Delays that start at `first` and double up to `max`, exactly.
    pub(crate) fn new(first: Duration, max: Duration) -> Self {
        Backoff { next: first, max, factor: 2.0, jitter: 0.0 }
    }

    /// Each delay is `factor` times the one before (at least 1: delays never shrink), up to the maximum.
    #[must_use]
    // Used by the fake requests (feature `http`).
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn factor(mut self, factor: f64) -> Self {
        self.factor = factor.max(1.0);
        self
    }

    /// Each delay is drawn at random between `1 - share` times its step's delay and the whole of it (`share` from
    /// 0, exact delays, to 1, anything from none to the whole). The steps themselves grow as without jitter.
    #[must_use]
    // Used by the embedded log (feature `sqlite`).
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn jitter(mut self, share: f64) -> Self {
        self.jitter = if share.is_nan() { 0.0 } else { share.clamp(0.0, 1.0) };
        self
    }

    /// The delay of the next step, without moving on: the next delay exactly, or the most it can be with jitter.
    pub(crate) fn peek(&self) -> Duration {
        self.next
    }

    /// The delay before the next attempt; the step after is `factor` times as long, up to the maximum.
    pub(crate) fn next(&mut self) -> Duration {
        let step = self.next;
        self.next = grow(step, self.factor).min(self.max);
        if self.jitter == 0.0 {
            return step;
        }
        step.mul_f64(1.0 - self.jitter * fastrand::f64())
    }
}

/// `delay` × `factor`, as [`Duration::mul_f64`] computes it; the longest duration there is when that overflows.
fn grow(delay: Duration, factor: f64) -> Duration {
    Duration::try_from_secs_f64(factor * delay.as_secs_f64()).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(backoff: &mut Backoff, n: usize) -> Vec<u128> {
        (0..n).map(|_| backoff.next().as_millis()).collect()
    }

    #[test]
    fn delays_double_up_to_the_maximum() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        assert_eq!(millis(&mut backoff, 4), vec![100, 200, 350, 350]);
        assert_eq!(backoff.peek(), Duration::from_millis(350));
    }

    #[test]
    fn delays_grow_by_the_factor_exactly_without_jitter() {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(5)).factor(1.5);
        let delays: Vec<Duration> = (0..8).map(|_| backoff.next()).collect();
        let expected = [500_000, 750_000, 1_125_000, 1_687_500, 2_531_250, 3_796_875, 5_000_000, 5_000_000];
        assert_eq!(delays, expected.map(Duration::from_micros));
        let mut never_shorter = Backoff::new(Duration::from_millis(10), Duration::from_secs(1)).factor(0.5);
        assert_eq!(millis(&mut never_shorter, 3), vec![10, 10, 10]);
        let mut huge = Backoff::new(Duration::MAX / 2, Duration::MAX).factor(4.0);
        assert_eq!((huge.next(), huge.next()), (Duration::MAX / 2, Duration::MAX), "no overflow");
    }

    #[test]
    fn jitter_draws_each_delay_below_its_step_which_grows_as_without_it() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(400)).jitter(0.8);
        let delays: Vec<Duration> = (0..200).map(|_| backoff.next()).collect();
        for (i, delay) in delays.iter().enumerate() {
            let step = Duration::from_millis([100, 200, 400][i.min(2)]);
            assert!(step.mul_f64(0.2) <= *delay && *delay <= step, "delay {i}: {delay:?} for a step of {step:?}");
        }
        assert!(delays[2..].windows(2).any(|w| w[0] != w[1]), "random: {:?}", &delays[..10]);
        assert_eq!(backoff.peek(), Duration::from_millis(400));
        let mut exact = Backoff::new(Duration::from_millis(100), Duration::from_millis(400)).jitter(0.0);
        assert_eq!(millis(&mut exact, 3), vec![100, 200, 400]);
    }
}
