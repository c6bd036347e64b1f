//! Interop with the Python original on a real Kafka-protocol broker (tansu), using faust-streaming from PyPI (a
//! client no one here wrote), both ways:
//! - a Python Faust service triggers executions and sends signals; our LiveCheck instance runs the matching Rust
//!   case: PASS when the service keeps the contract, FAIL when it breaks it;
//! - Rust services trigger and signal; a Python Faust LiveCheck instance runs the case and reports PASS, and the
//!   Rust side reads its reports.
#![cfg(feature = "kafka")]

mod support;

use std::{
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use livecheck::{
    transport::{KafkaTransport, Transport},
    Case, CaseResult, CaseSettings, LiveCheck, Signal, State, TestRun,
};
use serde::{Deserialize, Serialize};
use support::{read_all, tansu::Tansu};

#[derive(Serialize, Deserialize)]
struct Args {
    side: String,
}

/// The Python service's case, as the Rust instance checks it: the order placed keeps the side it was issued with.
struct TestOrder {
    placed: Signal<serde_json::Value>,
}

impl Case for TestOrder {
    type Args = Args;
    async fn run(&self, _test: &TestRun, args: Args) -> CaseResult {
        let order = self.placed.wait(Duration::from_secs(10)).await?;
        assert_eq!(order["side"], args.side.as_str(), "the order kept its side");
        Ok(())
    }
}

struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The interpreter with faust-streaming (as tests/python_interop.rs finds it).
fn python() -> std::path::PathBuf {
    if let Some(path) = std::env::var_os("LIVECHECK_PYTHON") {
        return path.into();
    }
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    if venv.exists() {
        venv
    } else {
        "python3".into()
    }
}

/// `python -m faust -A MODULE COMMAND…` from tests/python, on `broker`, with `side` for the service.
fn faust(module: &str, command: &[&str], broker: &str, side: &str) -> Service {
    let python = python();
    let faust = Command::new(&python).args(["-c", "import faust.livecheck"]).stderr(Stdio::null()).status();
    assert!(
        faust.is_ok_and(|s| s.success()),
        "python with faust-streaming 0.15.3 is needed ({} cannot import faust.livecheck): run scripts/test, or \
         `python3 -m venv .venv && .venv/bin/pip install faust-streaming==0.15.3` at the workspace root",
        python.display()
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python");
    // Each worker on a web port of its own (tests run at the same time), on loopback.
    let web_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let child = Command::new(&python)
        .args(["-m", "faust", "-A", module])
        .args(command)
        .args(["-l", "warn"])
        .args(["--web-host", "127.0.0.1", "--web-port", &web_port])
        .current_dir(dir)
        .env("LIVECHECK_TEST_BROKER", broker.trim_start_matches("kafka://"))
        .env("LIVECHECK_TEST_SIDE", side)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python with faust-streaming (run scripts/test)");
    Service(child)
}

async fn verdicts_of_a_faust_service(side: &str) -> Vec<State> {
    let tansu = Tansu::start();
    let kafka = KafkaTransport::connect(&tansu.url).unwrap();
    let transport: Arc<dyn Transport> = Arc::new(kafka.clone());
    let app = LiveCheck::builder().shared_transport(transport).build();
    app.register(CaseSettings::new("faust_service.test_order"), |s| TestOrder { placed: s.declare("placed") }).unwrap();
    // The instance creates the streams (8 partitions, as Faust's) before the service needs them.
    let running = app.start().await.unwrap();
    let _service = faust("faust_service", &["worker"], &tansu.url, side);
    tokio::time::timeout(Duration::from_secs(90), async {
        while app.metrics().tests_finished < 3 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no 3 verdicts from the Faust service's tests: {:?}", app.metrics()));
    running.shutdown().await.unwrap();
    let mut states = Vec::new();
    for received in read_all(&kafka, "livecheck-report").await {
        let report: livecheck::wire::TestReport = serde_json::from_slice(&received.message.value).unwrap();
        if report.test.is_some() {
            states.push(report.state);
        }
    }
    states
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tests_triggered_and_signalled_by_a_python_faust_service_pass_in_the_rust_instance() {
    let states = verdicts_of_a_faust_service("sell").await;
    assert!(states.len() >= 3 && states.iter().all(|s| *s == State::Pass), "{states:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_service_that_breaks_the_contract_fails_in_the_rust_instance() {
    // Issued as a buy, placed as a sell.
    let states = verdicts_of_a_faust_service("buy").await;
    assert!(states.len() >= 3 && states.iter().all(|s| *s == State::Fail), "{states:?}");
}

/// The Rust side of a case the Python LiveCheck instance runs: the services only trigger and signal with it.
struct CheckedInPython {
    placed: Signal<serde_json::Value>,
}

impl Case for CheckedInPython {
    type Args = Args;
    async fn run(&self, _test: &TestRun, _args: Args) -> CaseResult {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tests_triggered_and_signalled_by_rust_services_pass_in_a_python_faust_livecheck() {
    let tansu = Tansu::start();
    let kafka = KafkaTransport::connect(&tansu.url.clone()).unwrap();
    for stream in ["livecheck", "livecheck-bus", "livecheck-report"] {
        kafka.create_stream(stream, 8).await.unwrap();
    }
    let transport: Arc<dyn Transport> = Arc::new(kafka.clone());
    let services = LiveCheck::builder().shared_transport(transport).build();
    let case = services
        .register(CaseSettings::new("faust_checker.test_order"), |s| CheckedInPython { placed: s.declare("placed") })
        .unwrap();
    // Triggered at once: the Python instance, still starting, reads them from the start of the streams.
    let _checker = faust("faust_checker", &["livecheck"], &tansu.url, "");
    let mut ids = Vec::new();
    for i in 0..3 {
        let test = case.trigger_with_id(&format!("rust-order-{i}"), &Args { side: "sell".into() }).await.unwrap();
        livecheck::scope(Some(test.clone()), case.placed.send(&serde_json::json!({"side": "sell"}))).await.unwrap();
        ids.push(test.id().to_owned());
    }
    let passed = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let mut passed = Vec::new();
            for received in read_all(&kafka, "livecheck-report").await {
                let Ok(report) = serde_json::from_slice::<livecheck::wire::TestReport>(&received.message.value) else {
                    continue;
                };
                if let (Some(test), State::Pass) = (report.test, report.state) {
                    passed.push(test.id);
                }
            }
            if ids.iter().all(|id| passed.contains(id)) {
                return passed;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await
    .expect("the Python LiveCheck reports PASS for every Rust-triggered test");
    assert_eq!(passed.len(), 3, "one report each: {passed:?}");
}
