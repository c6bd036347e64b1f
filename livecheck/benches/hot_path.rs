//! The calls that stay in production code paths: `maybe_trigger` when the draw misses, and `Signal::send` with
//! no current test. Target: ≤ 50 ns each.

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
    let app = LiveCheck::builder().build();
    // The real random draw against probability 0: every draw misses.
    let case = app.register(CaseSettings::new("order").probability(0.0), |s| Order { placed: s.declare("placed") }).unwrap();
    c.bench_function("maybe_trigger when the draw misses", |b| {
        b.iter(|| {
            let hit = complete(case.maybe_trigger(Some(black_box("order-1")), black_box(&7))).unwrap();
            assert!(hit.is_none());
        })
    });
    c.bench_function("Signal::send with no current test", |b| {
        b.iter(|| complete(case.placed.send(black_box(&7))).unwrap())
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = hot_path
}
criterion_main!(benches);
