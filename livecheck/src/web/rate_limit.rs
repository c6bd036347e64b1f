//! The rate limit of the routes that publish: a token bucket shared by all clients of the instance, so that a
//! flood of API calls cannot fill the broker faster than the limit. Beyond it a request is answered 429 at once.

use std::{sync::Mutex, time::Instant};

use crate::sync::lock;

/// Requests per second the publishing routes take by default (and as many at once after a quiet while).
pub(crate) const DEFAULT_PUBLISHES_PER_SECOND: u32 = 50_000;

/// A token bucket: `rate` tokens a second, at most `rate` kept.
#[derive(Debug)]
pub(crate) struct RateLimit {
    rate: f64,
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl RateLimit {
    /// A bucket of `per_second` tokens a second (at least 1), full.
    pub(crate) fn new(per_second: u32) -> Self {
        let rate = f64::from(per_second.max(1));
        RateLimit { rate, bucket: Mutex::new(Bucket { tokens: rate, refilled: Instant::now() }) }
    }

    /// Takes a token if there is one (now being `now`).
    pub(crate) fn take_at(&self, now: Instant) -> bool {
        let mut bucket = lock(&self.bucket);
        let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.rate);
        bucket.refilled = now.max(bucket.refilled);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Takes a token if there is one.
    pub(crate) fn take(&self) -> bool {
        self.take_at(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_full_bucket_takes_its_rate_at_once_then_refills_with_time() {
        let limit = RateLimit::new(10);
        let start = Instant::now();
        assert_eq!((0..20).filter(|_| limit.take_at(start)).count(), 10);
        assert!(!limit.take_at(start + Duration::from_millis(50)));
        assert!(limit.take_at(start + Duration::from_millis(110)));
        assert_eq!(
            (0..20).filter(|_| limit.take_at(start + Duration::from_secs(60))).count(),
            10,
            "at most the rate kept"
        );
    }
}
