//! The real `livecheck` binary against a real LiveCheck instance (started here, with the library) on the embedded
//! SQLite log in a temporary directory: `trigger` waits for the verdict, `tail` follows the reports.

use std::{
    path::PathBuf,
    process::{Output, Stdio},
    sync::Arc,
    time::Duration,
};

use livecheck::{
    transport::{self, Message, Transport},
    Case, CaseResult, CaseSettings, LiveCheck, Running, TestRun,
};
use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncBufReadExt, BufReader, Lines},
    process::{Child, ChildStderr, ChildStdout, Command},
};

const CASE: &str = "orders.check_side";
const SECRET: &str = "cli-test-secret";
/// Bounds every wait of these tests, so that none hangs: generous, not a speed check.
const PATIENCE: Duration = Duration::from_secs(90);

#[derive(Serialize, Deserialize)]
struct SideArgs {
    side: String,
}

/// PASS when the side is `sell`; FAIL (a failed assertion, with its location) otherwise.
struct CheckSide;

impl Case for CheckSide {
    type Args = SideArgs;
    async fn run(&self, test: &TestRun, args: SideArgs) -> CaseResult {
        test.log(format!("checking side {}", args.side));
        assert_eq!(args.side, "sell", "the side of the order changed");
        Ok(())
    }
}

/// A LiveCheck instance running `CheckSide` on a log of its own, removed when dropped.
struct Instance {
    dir: PathBuf,
    broker: String,
    transport: Arc<dyn Transport>,
    app: LiveCheck,
    running: Option<Running>,
}

impl Instance {
    async fn start(name: &str) -> Instance {
        let dir = std::env::temp_dir().join(format!("livecheck-cli-{name}-{}-{}", std::process::id(), nanos()));
        std::fs::create_dir_all(&dir).unwrap();
        let broker = format!("sqlite://{}/livecheck.sqlite3", dir.display());
        let transport = transport::from_url(&broker).unwrap();
        let app = LiveCheck::builder().shared_transport(transport.clone()).signing_secret(SECRET).build();
        app.register(CaseSettings::new(CASE), |_| CheckSide).unwrap();
        let running = Some(app.start().await.unwrap());
        Instance { dir, broker, transport, app, running }
    }

    /// The `livecheck` command on this instance's broker, with the instance's signing secret and a clean
    /// environment otherwise.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_livecheck"));
        command
            .args(args)
            .env("LIVECHECK_BROKER", &self.broker)
            .env("LIVECHECK_SIGNING_SECRET", SECRET)
            .env_remove("LIVECHECK_SIGNING_SECRET_PREVIOUS")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await.unwrap();
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

/// Runs a command to its end (killed if it outlasts `PATIENCE`).
async fn output(mut command: Command) -> Output {
    let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    tokio::time::timeout(PATIENCE, child.wait_with_output()).await.expect("the command ended").unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The next line, waiting at most `PATIENCE`.
async fn next_line<R: tokio::io::AsyncBufRead + Unpin>(lines: &mut Lines<R>) -> String {
    tokio::time::timeout(PATIENCE, lines.next_line()).await.expect("a line in time").unwrap().expect("not closed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_prints_the_verdict_exit_0_on_pass_and_1_on_fail_with_message_location_and_steps() {
    let instance = Instance::start("trigger").await;

    let pass = output(instance.command(&["trigger", CASE, "--arg", "side=sell", "--id", "order-1"])).await;
    let (stdout, stderr) = (text(&pass.stdout), text(&pass.stderr));
    assert_eq!(pass.status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.starts_with(&format!("PASS  {CASE}  test order-1  in ")), "{stdout}");
    assert!(stderr.contains("triggered test order-1"), "{stderr}");

    // The execution went out as a service's trigger writes it: keyed by its id, test context signed.
    let pending = read_all(&*instance.transport, "livecheck").await;
    let message = pending.iter().find(|m| m.key.as_deref() == Some("order-1")).expect("the execution");
    let checker = LiveCheck::builder().signing_secret(SECRET).build();
    let context = checker.test_from_headers(&message.headers).expect("signed test context");
    assert_eq!((context.id(), context.case_name()), ("order-1", CASE));
    let execution: livecheck::wire::TestExecution = serde_json::from_slice(&message.value).unwrap();
    assert_eq!(execution.test_kwargs["side"], "sell");

    let fail = output(instance.command(&["trigger", CASE, "--args-json", r#"{"side": "buy"}"#])).await;
    let stdout = text(&fail.stdout);
    assert_eq!(fail.status.code(), Some(1), "stdout: {stdout}\nstderr: {}", text(&fail.stderr));
    assert!(stdout.starts_with(&format!("FAIL  {CASE}  test ")), "{stdout}");
    assert!(stdout.contains("the side of the order changed"), "the message: {stdout}");
    assert!(stdout.contains("cli/tests/trigger_and_tail.rs:"), "the location: {stdout}");
    assert!(stdout.contains("checking side buy"), "the steps: {stdout}");

    // --json prints the report itself.
    let json = output(instance.command(&["trigger", CASE, "--arg", "side=sell", "--json"])).await;
    assert_eq!(json.status.code(), Some(0), "{}", text(&json.stderr));
    let report: livecheck::wire::TestReport = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!((report.case_name.as_str(), report.state), (CASE, livecheck::State::Pass));
    instance.stop().await;
}

/// With signing on, `livecheck trigger` without the secret, or with another one, makes no test (issue 15, item 1):
/// the instance refuses the execution (counted), so no report comes: exit 2 after the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_without_the_signing_secret_or_with_another_is_not_run() {
    let instance = Instance::start("unsigned").await;
    for secret in [None, Some("not-the-secret")] {
        let mut command = instance.command(&["trigger", CASE, "--arg", "side=buy", "--timeout", "3s"]);
        match secret {
            None => command.env_remove("LIVECHECK_SIGNING_SECRET"),
            Some(secret) => command.env("LIVECHECK_SIGNING_SECRET", secret),
        };
        let out = output(command).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "secret {secret:?}: {stderr}");
        assert!(stderr.contains("no report for test"), "{stderr}");
    }
    let reports = read_all(&*instance.transport, "livecheck-report").await;
    assert!(reports.is_empty(), "a refused execution was run: {} reports", reports.len());
    let metrics = instance.app.metrics();
    assert_eq!((metrics.tests_unsigned, metrics.tests_bad_signature, metrics.tests_finished), (1, 1, 0));
    instance.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_case_gets_no_report_exit_2_after_the_timeout_saying_what_to_check() {
    let instance = Instance::start("unknown").await;
    let out = output(instance.command(&["trigger", "no_such_case", "--arg", "side=sell", "--timeout", "2s"])).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is a LiveCheck instance with case `no_such_case` running on sqlite://"), "{stderr}");
    assert!(out.stdout.is_empty());
    instance.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_follows_reports_as_json_lines_warns_on_a_malformed_one_and_stops_on_ctrl_c() {
    let instance = Instance::start("tail").await;
    let (mut tail, mut stdout, mut stderr) = spawn(instance.command(&["tail", "--json", "--case", CASE]));
    let ready = next_line(&mut stderr).await;
    assert!(ready.contains("following `livecheck-report`"), "{ready}");

    // Not a report: a warning naming where it is, and the tail goes on.
    let junk = Message { key: Some("junk".into()), value: b"{not json".to_vec(), headers: Default::default() };
    let junk = instance.transport.publish("livecheck-report", junk).await.unwrap();
    // A report of another case: left out by --case.
    let other = livecheck::wire::TestReport::new("another_case", livecheck::State::Pass, None);
    let other = Message { key: None, value: serde_json::to_vec(&other).unwrap(), headers: Default::default() };
    instance.transport.publish("livecheck-report", other).await.unwrap();

    let pass = output(instance.command(&["trigger", CASE, "--arg", "side=sell", "--id", "t-pass"])).await;
    assert_eq!(pass.status.code(), Some(0), "{}", text(&pass.stderr));
    let fail = output(instance.command(&["trigger", CASE, "--arg", "side=buy", "--id", "t-fail"])).await;
    assert_eq!(fail.status.code(), Some(1), "{}", text(&fail.stderr));

    let mut seen = Vec::new();
    for _ in 0..2 {
        let line = next_line(&mut stdout).await;
        let report: livecheck::wire::TestReport = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(report.case_name, CASE);
        seen.push((report.test.unwrap().id, report.state));
    }
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(seen, [("t-fail".into(), livecheck::State::Fail), ("t-pass".into(), livecheck::State::Pass)]);
    let expected = format!("partition {} offset {} is not a report", junk.partition, junk.offset);
    let mut warnings = Vec::new();
    while !warnings.last().is_some_and(|line: &String| line.contains(&expected)) {
        warnings.push(next_line(&mut stderr).await);
    }
    assert!(warnings.last().unwrap().starts_with("livecheck: warning: `livecheck-report` partition"), "{warnings:?}");

    // Ctrl-C: a clean stop, exit 0.
    interrupt(&tail);
    let status = tokio::time::timeout(PATIENCE, tail.wait()).await.expect("stopped").unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(stdout.next_line().await.unwrap().is_none(), "nothing more after the two reports");

    // From the beginning, in human lines: the reports already there, the other case's too.
    let (mut again, mut stdout, _stderr) = spawn(instance.command(&["tail", "--from-beginning"]));
    let mut lines = Vec::new();
    for _ in 0..3 {
        lines.push(next_line(&mut stdout).await);
    }
    again.kill().await.unwrap();
    let joined = lines.join("\n");
    assert!(joined.contains(&format!("  {CASE}  t-pass  PASS")), "{joined}");
    assert!(joined.contains(&format!("  {CASE}  t-fail  FAIL")) && joined.contains("the side of the order changed"));
    assert!(joined.contains("another_case  (suite)  PASS"), "{joined}");
    instance.stop().await;
}

#[tokio::test]
async fn bad_arguments_are_clear_errors_with_exit_2() {
    let run = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_livecheck"));
        command.args(args).env_remove("LIVECHECK_BROKER").kill_on_drop(true);
        output(command)
    };
    let bad_arg = run(&["trigger", CASE, "--arg", "side"]).await;
    assert_eq!(bad_arg.status.code(), Some(2));
    assert!(text(&bad_arg.stderr).contains("`side` is not KEY=VALUE"), "{}", text(&bad_arg.stderr));
    let twice = run(&["trigger", CASE, "--arg", "a=1", "--arg", "a=2"]).await;
    assert_eq!(twice.status.code(), Some(2));
    assert!(text(&twice.stderr).contains("--arg `a` is given twice"), "{}", text(&twice.stderr));
    let both = run(&["trigger", CASE, "--arg", "a=1", "--args-json", "{}"]).await;
    assert_eq!(both.status.code(), Some(2));
    let nowhere = run(&["tail", "--broker", "sqlite:///nonexistent/livecheck.sqlite3"]).await;
    assert_eq!(nowhere.status.code(), Some(2));
    assert!(text(&nowhere.stderr).contains("no LiveCheck log at `/nonexistent/livecheck.sqlite3`"));
    assert!(!std::path::Path::new("/nonexistent").exists(), "not created");
    let broker = run(&["tail", "--broker", "redis://localhost"]).await;
    assert_eq!(broker.status.code(), Some(2));
    assert!(text(&broker.stderr).contains("broker `redis://localhost`"), "{}", text(&broker.stderr));
}

/// Starts a long-running command with its stdout and stderr read line by line.
fn spawn(mut command: Command) -> (Child, Lines<BufReader<ChildStdout>>, Lines<BufReader<ChildStderr>>) {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    (child, stdout, stderr)
}

/// Sends SIGINT, as Ctrl-C in a terminal does.
fn interrupt(child: &Child) {
    let pid = child.id().expect("still running").to_string();
    let status = std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(status.success());
}

/// Every message of `stream`.
async fn read_all(transport: &dyn Transport, stream: &str) -> Vec<Message> {
    let mut all = Vec::new();
    for (partition, end) in transport.end_offsets(stream).await.unwrap().into_iter().enumerate() {
        for received in transport.read(stream, partition as u32, 0, end as usize).await.unwrap() {
            all.push((*received.message).clone());
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_of_a_case_that_never_reported_says_so_and_names_those_that_did() {
    let instance = Instance::start("tail-nope").await;
    let pass = output(instance.command(&["trigger", CASE, "--arg", "side=sell"])).await;
    assert_eq!(pass.status.code(), Some(0), "{}", text(&pass.stderr));
    // NO_COLOR unset: stderr is a pipe, so no colour either way.
    let mut command = instance.command(&["tail", "--case", "nope", "-l", "debug"]);
    command.env_remove("NO_COLOR");
    let (mut tail, _stdout, mut stderr) = spawn(command);
    let mut lines = vec![next_line(&mut stderr).await];
    while !lines.last().unwrap().contains("warning") {
        lines.push(next_line(&mut stderr).await);
    }
    let warning = lines.last().unwrap();
    assert!(warning.contains("no case `nope` has reported on `livecheck-report`"), "{warning}");
    assert!(warning.contains(&format!("cases that did: {CASE}")), "{warning}");
    assert!(lines.iter().all(|line| !line.contains('\x1b')), "no colour codes in a pipe: {lines:?}");
    interrupt(&tail);
    let status = tokio::time::timeout(PATIENCE, tail.wait()).await.expect("stopped").unwrap();
    assert_eq!(status.code(), Some(0));

    // A case that did report: no warning before the reports.
    let (mut tail, _stdout, mut stderr) = spawn(instance.command(&["tail", "--case", CASE]));
    let ready = next_line(&mut stderr).await;
    assert!(ready.contains("following `livecheck-report`"), "{ready}");
    let quiet = tokio::time::timeout(Duration::from_secs(2), stderr.next_line()).await;
    assert!(quiet.is_err(), "nothing more on stderr: {quiet:?}");
    tail.kill().await.unwrap();
    instance.stop().await;
}
