//! The rollout gate: (1) how many executions of each version it takes to call a canary failing 5 % or 20 % of its
//! executions (contract failures; the baseline never fails) Failed in 95 % of trials, at the default thresholds;
//! (2) what the per-version bookkeeping costs per finished execution (a `VersionTally` observer, 4 stages).
//! Deterministic: every trial has its own fixed seed.
//!
//! Run: `cargo bench -p livecheck --bench version_gate`
#![allow(missing_docs)]

use std::{hint::black_box, sync::Arc, time::Instant};

use chrono::Utc;
use livecheck::{
    gate::{Thresholds, VersionTally, Window},
    observe::{ExecutionFinished, Observer, SignalOutcome},
    wire::{SignalLatency, TestReport},
    State,
};

const STAGES: [&str; 4] = ["order_sent_to_db", "order_sent_to_kafka", "order_cache_in_redis", "order_executed"];
const TRIALS: u64 = 200;

fn feed(tally: &VersionTally, names: &[Arc<str>], version: &str, failed: bool, rng: &mut fastrand::Rng) {
    let state = if failed { State::Fail } else { State::Pass };
    let mut report = TestReport::new("test_order", state, None);
    report.runtime = Some(0.05 + 0.02 * rng.f64());
    report.error = failed.then(|| "assertion failed: the order kept its side".to_owned());
    report.signal_latency = SignalLatency(vec![(STAGES[0].to_owned(), 0.01)]);
    let mut at = 0.0;
    let signals: Vec<SignalOutcome> = names
        .iter()
        .map(|name| {
            at += 0.01 + 0.005 * rng.f64();
            SignalOutcome::received(name.clone(), at, None)
        })
        .collect();
    let finished = ExecutionFinished::new("test_order", names, "t", &report, Utc::now())
        .with_signals(&signals)
        .with_service_version(Some(version));
    tally.execution_finished(&finished);
}

/// Whether a canary failing `rate` of its executions is called Failed after `n` executions of each version.
fn called(n: usize, rate: f64, seed: u64, names: &[Arc<str>]) -> bool {
    let tally = VersionTally::default();
    let mut rng = fastrand::Rng::with_seed(seed);
    for _ in 0..n {
        feed(&tally, names, "v1", false, &mut rng);
        let failed = rng.f64() < rate;
        feed(&tally, names, "v2", failed, &mut rng);
    }
    tally.verdict("test_order", "v2", "v1", &Thresholds::default(), Window::All).is_failed()
}

fn main() {
    let names: Vec<Arc<str>> = STAGES.iter().map(|s| Arc::from(*s)).collect();
    for rate in [0.05, 0.20] {
        let needed = (10..=2000).step_by(5).find(|&n| {
            let hits = (0..TRIALS).filter(|seed| called(n, rate, *seed, &names)).count();
            hits as f64 >= 0.95 * TRIALS as f64
        });
        match needed {
            Some(n) => println!(
                "executions needed to call a {:.0} % contract failure rate Failed in 95 % of {TRIALS} trials: {n} of each version",
                rate * 100.0
            ),
            None => println!("a {:.0} % failure rate is not called within 2000 executions", rate * 100.0),
        }
    }

    // Bookkeeping cost: executions finished into one tally, two versions in turn.
    let tally = VersionTally::default();
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..5_000 {
        feed(&tally, &names, "v1", false, &mut rng);
    }
    let mut report = TestReport::new("test_order", State::Pass, None);
    report.runtime = Some(0.05);
    let signals: Vec<SignalOutcome> = names
        .iter()
        .enumerate()
        .map(|(i, n)| SignalOutcome::received(n.clone(), 0.01 * (i + 1) as f64, None))
        .collect();
    let rounds = 1_000_000;
    let started = Instant::now();
    for i in 0..rounds {
        let version = if i % 2 == 0 { "v1" } else { "v2" };
        let finished = ExecutionFinished::new("test_order", &names, "t", &report, Utc::now())
            .with_signals(&signals)
            .with_service_version(Some(version));
        tally.execution_finished(black_box(&finished));
    }
    let per = started.elapsed().as_nanos() as f64 / rounds as f64;
    println!("per-version bookkeeping: {per:.0} ns per finished execution (4 stages, 2 versions, 2000 kept each)");
}
