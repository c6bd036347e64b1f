//! Signals through the web API (issue 19): `POST /api/signals` on one instance on the embedded log, keep-alive
//! clients (one connection pool, 64 requests in flight by default), each answered once its signal is durable on the log.
//! Prints signals per second (target ≥ 20 000) and the latency percentiles of one request.
//!
//! Run: `cargo bench -p livecheck --features web,sqlite --bench api_signals` (`LIVECHECK_BENCH_BROKER=memory`: the
//! in-memory transport instead, to tell the HTTP path from the log).

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use livecheck::{transport::SqliteTransport, Case, CaseResult, CaseSettings, LiveCheck, Signal, TestRun};

struct Checkout {
    paid: Signal<u32>,
}

impl Case for Checkout {
    type Args = ();
    async fn run(&self, _test: &TestRun, _: ()) -> CaseResult {
        self.paid.wait(Duration::from_secs(1)).await?;
        Ok(())
    }
}

/// Requests in flight (`LIVECHECK_BENCH_IN_FLIGHT`, default 64): each waits for its signal to be durable, and the
/// embedded log commits the signals of the requests waiting together.
fn in_flight() -> usize {
    std::env::var("LIVECHECK_BENCH_IN_FLIGHT").ok().and_then(|n| n.parse().ok()).unwrap_or(64)
}

async fn post_signals(url: &str, seconds: f64) -> (f64, Vec<Duration>) {
    let client = reqwest::Client::builder().pool_max_idle_per_host(in_flight()).build().unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..in_flight() {
        let (client, url, sent) = (client.clone(), url.to_owned(), sent.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = 0u64;
            while started.elapsed().as_secs_f64() < seconds {
                let body = format!(r#"{{"test_id":"t-{worker}-{n}","signal":"paid","value":42}}"#);
                let at = Instant::now();
                let answer =
                    client.post(&url).header("content-type", "application/json").body(body).send().await.unwrap();
                assert_eq!(answer.status(), 202);
                latencies.push(at.elapsed());
                sent.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let rate = sent.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    latencies.sort();
    (rate, latencies)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let db = std::env::temp_dir().join(format!("livecheck-api-bench-{}.sqlite3", std::process::id()));
        let transport: std::sync::Arc<dyn livecheck::transport::Transport> =
            if std::env::var("LIVECHECK_BENCH_BROKER").as_deref() == Ok("memory") {
                std::sync::Arc::new(livecheck::transport::MemoryTransport::new())
            } else {
                std::sync::Arc::new(SqliteTransport::open(&db).unwrap())
            };
        let app = LiveCheck::builder()
            .shared_transport(transport)
            .web_address("127.0.0.1:0")
            .web_api_rate_limit(10_000_000)
            .build();
        app.register(CaseSettings::new("checkout"), |s| Checkout { paid: s.declare("paid") }).unwrap();
        let running = app.start().await.unwrap();
        let url = format!("http://{}/api/signals", running.web_address().unwrap());
        post_signals(&url, 1.0).await;
        let (rate, latencies) = post_signals(&url, 5.0).await;
        let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
        println!(
            "POST /api/signals, embedded log, {} keep-alive requests in flight: {rate:.0} signals/s (target ≥ 20 000); latency p50 {:?} p99 {:?}",
            in_flight(),
            at(0.5),
            at(0.99)
        );
        running.shutdown().await.unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
    });
}
