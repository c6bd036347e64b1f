//! The tutorial end to end under load, probability 1.0: real `worker` and `livecheck` processes on the embedded
//! log, logging at `info` into files as users run them, and 16 closed-loop clients (each places its next order
//! when the previous one was answered) for 10 s.
//!
//! Counts only the tests issued in that window — the orders the clients placed, by the id the worker answered
//! with — and tells how many passed within the window and by the end of the drain, the backlog when the window
//! ended, and how long the instance took to report every one of them.
//!
//! `LIVECHECK_BENCH_BROKER=kafka` runs it on Kafka instead of the embedded log: a tansu broker started here, and a
//! 20 s window.
//!
//! A test cannot pass before the worker's agents sent its four signals, and under this load the worker itself
//! falls behind; so the bench also tells the instance's own backlog: tests whose four signals were all on the bus
//! when the window ended, but that had no report yet.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use livecheck::{
    transport::{from_url, Event, Subscription, Transport},
    wire::{SignalEvent, TestReport},
    State,
};

const BIN: &str = env!("CARGO_BIN_EXE_orders");

#[path = "../../../livecheck/tests/support/tansu.rs"]
#[allow(dead_code, unreachable_pub)]
mod tansu;
const CLIENTS: usize = 16;
/// The load window on the embedded log; on Kafka it is twice that.
const LOAD: Duration = Duration::from_secs(10);
/// How long after the window the instance may take to report every test issued in it.
const DRAIN: Duration = Duration::from_secs(60);
/// How long a process may take to answer on its HTTP port.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// A child process, its stderr in `log`, killed when dropped.
struct Process {
    child: Child,
    name: &'static str,
    log: PathBuf,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    /// Waits until `url` answers HTTP with any status; panics with the log if the process exits first or does not
    /// answer within [`READY_WITHIN`].
    async fn wait_until_answering(&mut self, http: &reqwest::Client, url: &str) {
        let deadline = Instant::now() + READY_WITHIN;
        while http.get(url).send().await.is_err() {
            let log = || std::fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("{} exited ({status}) before {url} answered; its log:\n{}", self.name, log());
            }
            if Instant::now() >= deadline {
                panic!("{} did not answer on {url} within {READY_WITHIN:?}; its log:\n{}", self.name, log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_bytes(&self) -> u64 {
        std::fs::metadata(&self.log).map_or(0, |m| m.len())
    }
}

/// The reports the instance publishes, read as any consumer of the report stream does.
struct Reports(Box<dyn Subscription>);

impl Reports {
    async fn open(broker: &str) -> Self {
        Reports(from_url(broker).unwrap().subscribe(&["livecheck-report"], "bench").await.unwrap())
    }

    /// The next report, or `None` if none comes before `until`.
    async fn next(&mut self, until: Instant) -> Option<TestReport> {
        loop {
            let event = tokio::time::timeout_at(until.into(), self.0.recv()).await.ok()?.unwrap();
            if let Event::Message(received) = event {
                return Some(serde_json::from_slice(&received.message.value).unwrap());
            }
        }
    }
}

/// Places one order; its id, or `None` if the worker did not take it.
async fn place_order(http: &reqwest::Client, url: &str) -> Option<String> {
    let response = http.get(url).send().await.ok()?.error_for_status().ok()?;
    let order: serde_json::Value = response.json().await.ok()?;
    order["id"].as_str().map(str::to_owned)
}

/// The tests among `issued` whose four signals are all in the bus below `ends` (its end offsets at some moment).
async fn all_signals_sent(log: &dyn Transport, ends: &[u64], issued: &HashSet<String>) -> HashSet<String> {
    let mut signals: HashMap<String, HashSet<String>> = HashMap::new();
    for (partition, end) in ends.iter().enumerate() {
        let mut next = 0;
        while next < *end {
            let page = log.read("livecheck-bus", partition as u32, next, 5000).await.unwrap();
            let Some(last) = page.last() else { break };
            next = last.offset + 1;
            for received in page.iter().filter(|r| r.offset < *end) {
                if let Ok(signal) = serde_json::from_slice::<SignalEvent>(&received.message.value) {
                    signals.entry(signal.key).or_default().insert(signal.signal_name);
                }
            }
        }
    }
    signals.into_iter().filter(|(id, names)| names.len() == 4 && issued.contains(id)).map(|(id, _)| id).collect()
}

/// The state of each test's first report.
#[derive(Default)]
struct Outcomes(HashMap<String, State>);

impl Outcomes {
    /// Records `report`; returns the test id if this is the test's first report.
    fn record(&mut self, report: TestReport) -> Option<String> {
        let id = report.test?.id;
        if self.0.contains_key(&id) {
            return None;
        }
        self.0.insert(id.clone(), report.state);
        Some(id)
    }

    fn passed(&self, issued: &HashSet<String>) -> usize {
        issued.iter().filter(|id| self.0.get(*id) == Some(&State::Pass)).count()
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("livecheck-tutorial-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let on_kafka = std::env::var("LIVECHECK_BENCH_BROKER").is_ok_and(|b| b == "kafka");
    let tansu = on_kafka.then(tansu::Tansu::start);
    let broker = match &tansu {
        Some(tansu) => tansu.url.clone(),
        None => format!("sqlite://{}/livecheck.sqlite3", dir.display()),
    };
    let load = if on_kafka { 2 * LOAD } else { LOAD };
    let free_port = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let port = free_port();
    let base_url = format!("http://127.0.0.1:{port}");
    let spawn = |name: &'static str, args: &[&str]| {
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(BIN)
            .arg(name)
            .args(args)
            .args(["--broker", &broker, "-l", "info"])
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Process { child, name, log }
    };
    let mut worker = spawn("worker", &["--port", &port.to_string(), "--probability", "1"]);
    let status_port = free_port();
    let mut livecheck = spawn("livecheck", &["--base-url", &base_url, "--port", &status_port.to_string()]);

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let http = reqwest::Client::new();
        worker.wait_until_answering(&http, &format!("{base_url}/")).await;
        livecheck.wait_until_answering(&http, &format!("http://127.0.0.1:{status_port}/")).await;
        let mut reports = Reports::open(&broker).await;

        let url = format!("{base_url}/order/init/sell/");
        let load_start = Instant::now();
        let load_end = load_start + load;
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (http, url) = (http.clone(), url.clone());
                tokio::spawn(async move {
                    let (mut placed, mut failed) = (Vec::new(), 0u64);
                    while Instant::now() < load_end {
                        match place_order(&http, &url).await {
                            // An order answered after the window is not one of the window's.
                            Some(id) if Instant::now() < load_end => placed.push(id),
                            Some(_) => {}
                            None => failed += 1,
                        }
                    }
                    (placed, failed)
                })
            })
            .collect();

        let mut outcomes = Outcomes::default();
        while let Some(report) = reports.next(load_end).await {
            outcomes.record(report);
        }
        let log = from_url(&broker).unwrap();
        let bus_at_window_end = log.end_offsets("livecheck-bus").await.unwrap();
        let (mut issued, mut failed_requests) = (HashSet::new(), 0);
        for client in clients {
            let (placed, failed) = client.await.unwrap();
            issued.extend(placed);
            failed_requests += failed;
        }
        // Every outcome recorded so far was received within the window.
        let passed_in_window = outcomes.passed(&issued);
        let mut unreported: HashSet<String> = issued.iter().filter(|id| !outcomes.0.contains_key(*id)).cloned().collect();
        let backlog = unreported.len();
        let reported_in_window: HashSet<String> = outcomes.0.keys().cloned().collect();

        let mut last_report = load_end;
        while !unreported.is_empty() {
            let Some(report) = reports.next(load_end + DRAIN).await else { break };
            if let Some(id) = outcomes.record(report) {
                if unreported.remove(&id) {
                    last_report = Instant::now();
                }
            }
        }
        let passed = outcomes.passed(&issued);
        let signalled = all_signals_sent(log.as_ref(), &bus_at_window_end, &issued).await;
        let waiting_on_instance = signalled.iter().filter(|id| !reported_in_window.contains(*id)).count();
        let mut not_passed = BTreeMap::new();
        for id in &issued {
            if let Some(state) = outcomes.0.get(id).filter(|state| **state != State::Pass) {
                *not_passed.entry(state.as_str()).or_insert(0) += 1;
            }
        }

        let placed = issued.len();
        let per_second = |n: usize| n as f64 / load.as_secs_f64();
        println!(
            "tutorial end to end on {}, probability 1.0, {CLIENTS} closed-loop clients for {load:?}, both processes at -l info",
            if on_kafka { "Kafka (tansu)" } else { "the embedded log" }
        );
        println!(
            "  orders placed in the window: {placed} ({:.0}/s), {failed_requests} requests not answered with an order",
            per_second(placed)
        );
        println!(
            "  of their tests, passed within the window: {passed_in_window} ({:.0}/s); by the end of the drain: {passed}",
            per_second(passed_in_window)
        );
        println!("  backlog at the end of the window (issued, not yet reported): {backlog}");
        println!(
            "  of which waiting on the instance (all four signals on the bus, no report yet): {waiting_on_instance} \
             of {} tests whose signals were all sent within the window; the rest waited on the worker's agents",
            signalled.len()
        );
        if unreported.is_empty() {
            println!("  drain: every issued test reported {:.1} s after the window", (last_report - load_end).as_secs_f64());
        } else {
            println!("  drain: {} issued tests still unreported after {DRAIN:?}", unreported.len());
        }
        if !not_passed.is_empty() {
            println!("  reported but not passed: {not_passed:?}");
        }
        println!(
            "  logs: worker {:.1} MB, livecheck {:.1} MB",
            worker.log_bytes() as f64 / 1e6,
            livecheck.log_bytes() as f64 / 1e6
        );
    });
    drop((worker, livecheck));
    let _ = std::fs::remove_dir_all(&dir);
}
