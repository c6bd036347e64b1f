//! The cost of resolving one signal with 10 and with 100 000 other tests waiting: from sending the signal to the
//! waiting test running again. Only that test's waiter is woken, so the two should be within 2× of each other.

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

async fn until(mut cond: impl FnMut() -> bool) {
    while !cond() {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// Median and mean microseconds from sending `first` to the probe test running again, with `crowd` tests waiting.
async fn measure(crowd: u64, samples: usize) -> (f64, f64) {
    let transport = MemoryTransport::new();
    let app = LiveCheck::builder()
        .transport(transport)
        .max_concurrent_tests(crowd as usize + 10)
        .send_reports(false)
        .build();
    let (woken, mut wakes) = mpsc::unbounded_channel();
    let case = app
        .register(CaseSettings::new("probe"), |s| Probe { first: s.declare("first"), second: s.declare("second"), woken })
        .unwrap();
    let running = app.start().await.unwrap();
    for _ in 0..crowd {
        case.trigger(None, &()).await.unwrap();
    }
    until(|| app.metrics().tests_executing == crowd).await;

    let mut micros = Vec::with_capacity(samples);
    for _ in 0..samples {
        let probe = case.trigger(None, &()).await.unwrap();
        until(|| app.metrics().tests_executing == crowd + 1).await;
        let sent = Instant::now();
        livecheck::scope(Some(probe.clone()), case.first.send(&())).await.unwrap();
        let woke = wakes.recv().await.unwrap();
        micros.push(woke.duration_since(sent).as_secs_f64() * 1e6);
        livecheck::scope(Some(probe), case.second.send(&())).await.unwrap();
        until(|| app.metrics().tests_executing == crowd).await;
    }
    running.shutdown().await;
    micros.sort_by(f64::total_cmp);
    (micros[micros.len() / 2], micros.iter().sum::<f64>() / micros.len() as f64)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        measure(10, 200).await; // warm-up
        let (median_small, mean_small) = measure(10, 2000).await;
        let (median_large, mean_large) = measure(100_000, 2000).await;
        println!("signal resolution with     10 tests waiting: median {median_small:.1} us, mean {mean_small:.1} us");
        println!("signal resolution with 100000 tests waiting: median {median_large:.1} us, mean {mean_large:.1} us");
        println!(
            "ratio 100000/10: median {:.2}x, mean {:.2}x; target within 2x",
            median_large / median_small,
            mean_large / mean_small
        );
    });
}
