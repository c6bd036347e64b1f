//! What the Rust side writes is read by the Python implementation's own models (faust-streaming from PyPI).
//! `scripts/test` installs it into `.venv`; without it the test fails, saying how to install it.
//!
//! The interpreter: `LIVECHECK_PYTHON`, else `.venv/bin/python` at the workspace root, else `python3`.

use std::{
    ffi::OsString,
    io::Write,
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use livecheck::{transport::MemoryTransport, Case, CaseResult, CaseSettings, Clock, LiveCheck, Signal, TestRun};

struct Order {
    placed: Signal<serde_json::Value>,
    executed: Signal<()>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Args {
    side: String,
}

impl Case for Order {
    type Args = Args;
    async fn run(&self, _test: &TestRun, args: Args) -> CaseResult {
        let order = self.placed.wait(Duration::from_secs(5)).await?;
        assert_eq!(order["side"], args.side.as_str());
        self.executed.wait(Duration::from_secs(5)).await?;
        Ok(())
    }
}

/// The Python interpreter to run faust with: `LIVECHECK_PYTHON`, else the workspace's `.venv`, else `python3`.
fn python() -> OsString {
    if let Some(python) = std::env::var_os("LIVECHECK_PYTHON") {
        return python;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the crate is in the workspace");
    let venv = root.join(".venv/bin/python");
    if venv.exists() {
        venv.into_os_string()
    } else {
        "python3".into()
    }
}

/// Fails the test, saying how to install faust, unless `python` can import its LiveCheck models.
fn require_faust(python: &OsString) {
    let why = match Command::new(python).args(["-c", "import faust.livecheck.models"]).output() {
        Ok(out) if out.status.success() => return,
        Ok(out) => String::from_utf8_lossy(&out.stderr).trim().lines().last().unwrap_or_default().to_owned(),
        Err(error) => error.to_string(),
    };
    panic!(
        "python3 with faust-streaming 0.15.3 is needed ({} cannot import faust.livecheck.models: {why}): run \
         scripts/test, or `python3 -m venv .venv && .venv/bin/pip install faust-streaming==0.15.3` at the workspace \
         root (or set LIVECHECK_PYTHON to an interpreter that has it)",
        Path::new(python).display()
    );
}

#[tokio::test(start_paused = true)]
async fn python_faust_decodes_our_executions_signals_and_reports() {
    let python = python();
    require_faust(&python);
    let transport = MemoryTransport::new();
    let app = LiveCheck::builder().transport(transport.clone()).clock(Clock::follow_tokio()).build();
    let case = app
        .register(CaseSettings::new("examples.livecheck.test_order"), |s| Order {
            placed: s.declare("order_sent_to_db"),
            executed: s.declare("order_executed"),
        })
        .unwrap();
    let running = app.start().await.unwrap();
    let pass = case.trigger_with_id("order-1", &Args { side: "sell".into() }).await.unwrap();
    livecheck::scope(Some(pass), async {
        case.placed.send(&serde_json::json!({"id": "order-1", "side": "sell"})).await.unwrap();
        case.executed.notify().await.unwrap();
    })
    .await;
    case.trigger_with_id("order-2", &Args { side: "buy".into() }).await.unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    running.shutdown().await.unwrap();

    let mut lines = String::new();
    let mut states = Vec::new();
    for stream in ["livecheck", "livecheck-bus", "livecheck-report"] {
        for received in transport.messages(stream) {
            let text = String::from_utf8(received.message.value.clone()).unwrap();
            if stream == "livecheck-report" {
                states.push(serde_json::from_str::<livecheck::wire::TestReport>(&text).unwrap().state);
            }
            lines.push_str(&text);
            lines.push('\n');
        }
    }
    states.sort_by_key(|s| s.as_str());
    assert_eq!(states, vec![livecheck::State::Pass, livecheck::State::Timeout]);

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/decode_with_faust.py");
    let mut child = Command::new(&python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(lines.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "faust could not decode: {}\n{}", stdout, String::from_utf8_lossy(&out.stderr));
    // 2 executions, 2 signals, 2 reports
    assert_eq!(stdout.trim(), "decoded 6");
}
