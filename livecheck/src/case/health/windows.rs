//! What a case's health remembers of its recent past, in bounded memory: the outcomes of the last executions, the
//! passed and finished counts over a sliding time window, and samples for medians.

use std::{collections::VecDeque, time::Duration};

use tokio::time::Instant;

/// Whether each of the last finished executions (SKIP excluded) failed, newest last.
pub(super) struct RecentOutcomes {
    capacity: usize,
    failed: VecDeque<bool>,
}

impl RecentOutcomes {
    pub(super) fn new(capacity: usize) -> Self {
        RecentOutcomes { capacity: capacity.max(1), failed: VecDeque::new() }
    }

    pub(super) fn push(&mut self, failed: bool) {
        if self.failed.len() == self.capacity {
            self.failed.pop_front();
        }
        self.failed.push_back(failed);
    }

    /// How many of the last `n` failed, and how many there are (fewer than `n` early on).
    pub(super) fn failures_in_last(&self, n: usize) -> (u32, u32) {
        let last = self.failed.iter().rev().take(n);
        let seen = last.len() as u32;
        (last.filter(|failed| **failed).count() as u32, seen)
    }
}

/// Steps a [`WindowCounts`] window is counted in.
const WINDOW_STEPS: u64 = 60;

/// Passed and finished executions over a sliding time window, counted per step of 1/60 of the window: memory
/// stays bounded whatever the rate of tests. The window covers the current step and the 60 before it: the last
/// `window`, and at most one step more.
pub(super) struct WindowCounts {
    step: Duration,
    origin: Instant,
    /// Oldest first; only steps that had executions.
    steps: VecDeque<StepCounts>,
}

struct StepCounts {
    step: u64,
    passed: u64,
    finished: u64,
}

impl WindowCounts {
    pub(super) fn new(window: Duration, origin: Instant) -> Self {
        let step = (window / WINDOW_STEPS as u32).max(Duration::from_nanos(1));
        WindowCounts { step, origin, steps: VecDeque::new() }
    }

    fn step_of(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.origin).as_nanos() / self.step.as_nanos();
        u64::try_from(since).unwrap_or(u64::MAX)
    }

    pub(super) fn record(&mut self, now: Instant, passed: bool) {
        let step = self.step_of(now);
        match self.steps.back_mut() {
            Some(last) if last.step == step => {
                last.finished += 1;
                last.passed += u64::from(passed);
            }
            _ => self.steps.push_back(StepCounts { step, passed: u64::from(passed), finished: 1 }),
        }
        while self.steps.front().is_some_and(|oldest| oldest.step.saturating_add(WINDOW_STEPS) < step) {
            self.steps.pop_front();
        }
    }

    /// (passed, finished) within the window that ends at `now`.
    pub(super) fn counts(&self, now: Instant) -> (u64, u64) {
        let current = self.step_of(now);
        self.steps
            .iter()
            .filter(|s| s.step.saturating_add(WINDOW_STEPS) >= current)
            .fold((0, 0), |(passed, finished), s| (passed + s.passed, finished + s.finished))
    }
}

/// The last `capacity` samples.
pub(super) struct History {
    capacity: usize,
    samples: VecDeque<f64>,
}

impl History {
    pub(super) fn new(capacity: usize) -> Self {
        History { capacity: capacity.max(1), samples: VecDeque::new() }
    }

    pub(super) fn push(&mut self, sample: f64) {
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    /// The samples kept, oldest first.
    #[cfg(test)]
    pub(super) fn samples(&self) -> &VecDeque<f64> {
        &self.samples
    }

    pub(super) fn median(&self) -> Option<f64> {
        if self.samples.is_empty() {
            return None;
        }
        let mut sorted: Vec<f64> = self.samples.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let mid = sorted.len() / 2;
        Some(if sorted.len() % 2 == 0 { (sorted[mid - 1] + sorted[mid]) / 2.0 } else { sorted[mid] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_is_over_the_last_samples_only() {
        let mut h = History::new(3);
        for x in [100.0, 1.0, 2.0, 3.0] {
            h.push(x);
        }
        assert_eq!(h.median(), Some(2.0));
        h.push(5.0);
        assert_eq!(h.median(), Some(3.0));
        let mut even = History::new(4);
        for x in [1.0, 2.0, 3.0, 4.0] {
            even.push(x);
        }
        assert_eq!(even.median(), Some(2.5));
    }

    #[test]
    fn failures_are_counted_over_the_last_n_outcomes_only() {
        let mut recent = RecentOutcomes::new(5);
        assert_eq!(recent.failures_in_last(3), (0, 0));
        for failed in [true, true, false, true] {
            recent.push(failed);
        }
        assert_eq!(recent.failures_in_last(10), (3, 4), "fewer than asked for: all there are");
        assert_eq!(recent.failures_in_last(2), (1, 2));
        recent.push(false);
        recent.push(false);
        assert_eq!(recent.failures_in_last(5), (2, 5), "the first outcome fell out of the capacity");
    }

    #[test]
    fn the_pass_rate_window_slides_and_stays_bounded() {
        let origin = Instant::now();
        let mut window = WindowCounts::new(Duration::from_secs(60), origin); // steps of 1 s
        window.record(origin, false);
        window.record(origin + Duration::from_millis(500), true);
        window.record(origin + Duration::from_secs(30), true);
        assert_eq!(window.counts(origin + Duration::from_secs(30)), (2, 3));
        // 60.5 s later the first step is exactly 60 steps back: still inside (the window plus at most one step).
        assert_eq!(window.counts(origin + Duration::from_millis(60_500)), (2, 3));
        assert_eq!(window.counts(origin + Duration::from_secs(61)), (1, 1), "the first second left the window");
        assert_eq!(window.counts(origin + Duration::from_secs(91)), (0, 0));
        for i in 0..10_000u64 {
            window.record(origin + Duration::from_millis(100_000 + 37 * i), i % 2 == 0);
        }
        assert!(window.steps.len() <= WINDOW_STEPS as usize + 1, "{} steps kept", window.steps.len());
    }
}
