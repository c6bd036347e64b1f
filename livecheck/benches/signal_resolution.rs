//! The cost of resolving one signal with 10 and with 100 000 other tests waiting: from sending the signal (in the
//! test's scope, through the in-memory bus) to the waiting test running again. Only that test's waiter should be
//! woken, so the two should be within 2× of each other.
//!
//! Method: N tests of one case wait on signal `first` (each then waits on `second`). For each sample a probe test
//! is triggered; once `metrics().tests_executing == N + 1` the bench sends `first` for the probe and measures until
//! the probe's body, woken, stamps the time; `second` then ends the probe. Single-threaded runtime.
//!
//! Run: `cargo bench -p livecheck --bench signal_resolution`

use std::time::{Duration, Instant};

use livecheck::{transport::MemoryTransport, Case, CaseResult, CaseSettings, LiveCheck, Signal, TestRun};
use tokio::sync::mpsc;

struct Probe {
    first: Signal<()>,
    second: Signal<()>,
    woken: mpsc::UnboundedSender<Instant>,
}

impl Case for Probe {
    type Args = ();
    async fn run(&self, _test: &TestRun, _args: ()) -> CaseResult {
        self.first.wait(Duration::from_secs(3600)).await?;
        let _ = self.woken.send(Instant::now());
        self.second.wait(Duration::from_secs(3600)).await?;
        Ok(())
    }
}

async fn until(what: &str, app: &LiveCheck, mut cond: impl FnMut(u64) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let executing = app.metrics().tests_executing;
        if cond(executing) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {:?}", app.metrics());
        tokio::task::yield_now().await;
    }
}

struct Stats {
    median: f64,
    mean: f64,
    p90: f64,
}

/// Microseconds from sending `first` to the probe test running again, with `crowd` tests waiting.
async fn measure(crowd: u64, samples: usize) -> Stats {
    let transport = MemoryTransport::new();
    let app = LiveCheck::builder()
        .transport(transport)
        .max_concurrent_tests(200_000)
        .early_signal_limit(200_000)
        .send_reports(false)
        .build();
    let (woken, mut wakes) = mpsc::unbounded_channel();
    let case = app
        .register(CaseSettings::new("probe"), |s| Probe {
            first: s.declare("first"),
            second: s.declare("second"),
            woken,
        })
        .unwrap();
    let running = app.start().await.unwrap();
    for _ in 0..crowd {
        case.trigger(&()).await.unwrap();
    }
    until("the crowd to execute", &app, |n| n == crowd).await;

    let mut micros = Vec::with_capacity(samples);
    for _ in 0..samples {
        let probe = case.trigger(&()).await.unwrap();
        until("the probe to execute", &app, |n| n == crowd + 1).await;
        let sent = Instant::now();
        livecheck::scope(Some(probe.clone()), case.first.notify()).await.unwrap();
        let woke = wakes.recv().await.unwrap();
        micros.push(woke.duration_since(sent).as_secs_f64() * 1e6);
        livecheck::scope(Some(probe), case.second.notify()).await.unwrap();
        until("the probe to finish", &app, |n| n == crowd).await;
    }
    assert!(wakes.try_recv().is_err(), "only the probe was woken past its first signal");
    running.shutdown().await.unwrap();
    micros.sort_by(f64::total_cmp);
    Stats {
        median: micros[micros.len() / 2],
        mean: micros.iter().sum::<f64>() / micros.len() as f64,
        p90: micros[micros.len() * 9 / 10],
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        measure(10, 500).await; // warm-up
        let small = measure(10, 5000).await;
        let large = measure(100_000, 5000).await;
        for (n, s) in [(10, &small), (100_000, &large)] {
            println!(
                "signal resolution, {n:>6} tests waiting: median {:.2} us, mean {:.2} us, p90 {:.2} us (5000 samples)",
                s.median, s.mean, s.p90
            );
        }
        println!(
            "signal resolution ratio 100000/10: median {:.2}x, mean {:.2}x [target <= 2x]",
            large.median / small.median,
            large.mean / small.mean
        );
    });
}
