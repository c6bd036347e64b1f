//! The calls that stay in production code paths: `maybe_trigger` when the draw misses, and `Signal::send` with
//! no current test. Both complete in one poll; they are polled once with a no-op waker (no runtime).
//! Target: ≤ 50 ns each.
//!
//! Run: `cargo bench -p livecheck --bench hot_path`
#![allow(missing_docs)] // `criterion_group!` generates an undocumented `pub fn`

use std::{
    future::Future,
    hint::black_box,
    pin::pin,
    task::{Context, Poll, Waker},
    time::Duration,
};

use criterion::{criterion_group, criterion_main, Criterion};
use livecheck::{Case, CaseResult, CaseSettings, LiveCheck, Signal, TestRun};

struct Order {
    placed: Signal<u64>,
}

impl Case for Order {
    type Args = u64;
    async fn run(&self, _test: &TestRun, _args: u64) -> CaseResult {
        Ok(())
    }
}

/// Polls a future that must complete at once.
fn complete<F: Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("expected to complete in one poll"),
    }
}

fn hot_path(c: &mut Criterion) {
    // The default draw (fastrand) against probability 0: every draw misses.
    let app = LiveCheck::builder().build();
    let never =
        app.register(CaseSettings::new("order").probability(0.0), |s| Order { placed: s.declare("placed") }).unwrap();
    c.bench_function("maybe_trigger miss, probability 0.0, default draw [target <= 50 ns]", |b| {
        b.iter(|| {
            let hit = complete(never.maybe_trigger_with_id(black_box("order-1"), black_box(&7))).unwrap();
            assert!(hit.is_none());
        })
    });

    // A draw that returns 0.99 against probability 0.5: a miss through a user-supplied draw.
    let app = LiveCheck::builder().draw(|| black_box(0.99)).build();
    let half =
        app.register(CaseSettings::new("order").probability(0.5), |s| Order { placed: s.declare("placed") }).unwrap();
    c.bench_function("maybe_trigger miss, probability 0.5, draw fn -> 0.99 [target <= 50 ns]", |b| {
        b.iter(|| {
            let hit = complete(half.maybe_trigger(black_box(&7))).unwrap();
            assert!(hit.is_none());
        })
    });

    c.bench_function("Signal::send, no current test [target <= 50 ns]", |b| {
        b.iter(|| complete(never.placed.send(black_box(&7))).unwrap())
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(50)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    targets = hot_path
}
criterion_main!(benches);
