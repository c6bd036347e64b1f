//! Cross-process signal latency on the embedded (SQLite) transport: a child process triggers tests and, once each
//! test is waiting in this process's LiveCheck instance, sends its signal carrying the send time; the case records
//! how long the signal took to wake it. Target: p99 ≤ 20 ms.

use std::{
    process::Command,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use livecheck::{transport::SqliteTransport, Case, CaseResult, CaseSettings, LiveCheck, Signal, TestRun};

const TESTS: u64 = 300;
const CHILD_ENV: &str = "LIVECHECK_BENCH_CHILD_DB";

fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as u64
}

struct Ping {
    ping: Signal<u64>,
    latencies: Arc<Mutex<Vec<u64>>>,
}

impl Case for Ping {
    type Args = ();
    async fn run(&self, _test: &TestRun, _args: ()) -> CaseResult {
        let sent = self.ping.wait(Duration::from_secs(30)).await?;
        self.latencies.lock().unwrap().push(now_micros().saturating_sub(sent));
        Ok(())
    }
}

fn app(db: &str, latencies: Arc<Mutex<Vec<u64>>>) -> (LiveCheck, livecheck::CaseHandle<Ping>) {
    let app = LiveCheck::builder().transport(SqliteTransport::open(db).unwrap()).send_reports(false).build();
    let case = app.register(CaseSettings::new("ping"), |s| Ping { ping: s.declare("ping"), latencies }).unwrap();
    (app, case)
}

/// The other process: triggers each test, gives the instance time to start it, then signals.
async fn child(db: &str) {
    let (_app, case) = app(db, Arc::default());
    for _ in 0..TESTS {
        let test = case.trigger(&()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(25)).await;
        livecheck::scope(Some(test), case.ping.send(&now_micros())).await.unwrap();
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    if let Ok(db) = std::env::var(CHILD_ENV) {
        runtime.block_on(child(&db));
        return;
    }
    let db = std::env::temp_dir().join(format!("livecheck-latency-{}.sqlite3", std::process::id()));
    let db_text = db.display().to_string();
    runtime.block_on(async {
        let latencies = Arc::new(Mutex::new(Vec::new()));
        let (instance, _case) = app(&db_text, latencies.clone());
        let running = instance.start().await.unwrap();
        let mut sender = Command::new(std::env::current_exe().unwrap()).env(CHILD_ENV, &db_text).spawn().unwrap();
        while instance.metrics().tests_finished < TESTS {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(sender.wait().unwrap().success());
        running.shutdown().await.unwrap();
        let mut micros = latencies.lock().unwrap().clone();
        assert_eq!(micros.len() as u64, TESTS, "every test passed");
        micros.sort_unstable();
        let at = |q: f64| micros[((micros.len() as f64 * q) as usize).min(micros.len() - 1)] as f64 / 1000.0;
        println!(
            "cross-process signal latency, embedded sqlite transport ({TESTS} tests): p50 {:.2} ms, p90 {:.2} ms, \
             p99 {:.2} ms, max {:.2} ms [target p99 <= 20 ms]",
            at(0.5),
            at(0.9),
            at(0.99),
            at(1.0)
        );
    });
    for suffix in ["", "-wal", "-shm", ".created"] {
        let _ = std::fs::remove_file(format!("{db_text}{suffix}"));
    }
}
