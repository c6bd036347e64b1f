//! What the Rust side writes is read by the Python implementation's own models (faust-streaming from PyPI;
//! `.ci/run` installs it). Outside CI the test is skipped when faust is not installed.

use std::{
    io::Write,
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

fn faust_available() -> bool {
    Command::new("python3")
        .args(["-c", "import faust.livecheck.models"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test(start_paused = true)]
async fn python_faust_decodes_our_executions_signals_and_reports() {
    if !faust_available() {
        assert!(std::env::var_os("CI").is_none(), "CI must install faust-streaming (see .ci/run)");
        eprintln!("skipped: python3 with faust-streaming is not installed");
        return;
    }
    let transport = MemoryTransport::new();
    let app = LiveCheck::builder().transport(transport.clone()).clock(Clock::follow_tokio()).build();
    let case = app
        .register(CaseSettings::new("examples.livecheck.test_order"), |s| Order {
            placed: s.declare("order_sent_to_db"),
            executed: s.declare("order_executed"),
        })
        .unwrap();
    let running = app.start().await.unwrap();
    let pass = case.trigger(Some("order-1"), &Args { side: "sell".into() }).await.unwrap();
    livecheck::scope(Some(pass), async {
        case.placed.send(&serde_json::json!({"id": "order-1", "side": "sell"})).await.unwrap();
        case.executed.send(&()).await.unwrap();
    })
    .await;
    case.trigger(Some("order-2"), &Args { side: "buy".into() }).await.unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    running.shutdown().await;

    let mut lines = String::new();
    let mut states = Vec::new();
    for stream in ["livecheck", "livecheck-bus", "livecheck-report"] {
        for received in transport.messages(stream) {
            let text = String::from_utf8(received.message.value.clone()).unwrap();
            if stream == "livecheck-report" {
                states.push(serde_json::from_str::<livecheck::TestReport>(&text).unwrap().state);
            }
            lines.push_str(&text);
            lines.push('\n');
        }
    }
    states.sort_by_key(|s| s.as_str());
    assert_eq!(states, vec![livecheck::State::Pass, livecheck::State::Timeout]);

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/decode_with_faust.py");
    let mut child = Command::new("python3")
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
