//! Spans as signals, proven with real services in other languages instrumented with stock OpenTelemetry and no
//! LiveCheck code (feature `web`): the tutorial's execution stage in Python (`tests/otel/python`, OTLP protobuf)
//! and a quote stage in Node (`tests/otel/node`, OTLP JSON) that carries the test's context onward to it. A test's
//! context travels only in the W3C `baggage` header LiveCheck writes (`TestContext::header_pairs()`), so their
//! stock decoders read what LiveCheck encodes; the services' `BaggageSpanProcessor`s copy it onto their
//! spans, their exporters send them to the instance's `/v1/traces`, and the case asserts on them.
//!
//! `scripts/test` installs what they need: the OpenTelemetry packages into `.venv` (found through
//! `LIVECHECK_PYTHON`) and the Node packages into `tests/otel/node/node_modules` (`node` on PATH). Without them the
//! tests fail, saying how to install them. Each service is a child process that listens on a free port, stops when
//! its standard input closes (when the test process ends, however it ends) and is killed when dropped.

mod support;

use std::{
    ffi::OsString,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{mpsc, Arc},
    time::{Duration, Instant},
};

use livecheck::{
    context::HEADER_BAGGAGE,
    spans::{Span, SpanSelector},
    transport::{SqliteTransport, Transport},
    wire::TestReport,
    Case, CaseHandle, CaseResult, CaseSettings, LiveCheck, Running, Signal, State, TestContext, TestRun,
};
use support::{read_all, TempDb};

// ----- The cases -----

/// The execution stage's span, `execute order` of the `execution` service, says the side ordered.
struct Execution {
    executed: Signal<Span>,
    timeout: Duration,
}

impl Case for Execution {
    type Args = String;
    async fn run(&self, test: &TestRun, side: String) -> CaseResult {
        let span = self.executed.wait(self.timeout).await?;
        test.log(format!("executed in {:.3}s", span.duration_seconds));
        assert_eq!(span.attribute_str("order.side"), Some(side.as_str()), "the side the execution stage saw");
        assert!(!span.status.is_error(), "the execution span's status: {:?}", span.status);
        Ok(())
    }
}

/// The execution stage's signal: its span `execute order`.
fn executed_selector() -> SpanSelector {
    SpanSelector::named("execute order").service("execution")
}

fn register_execution(app: &LiveCheck, timeout: Duration) -> CaseHandle<Execution> {
    let settings = CaseSettings::new("orders.execution")
        .test_expires(Duration::from_secs(600))
        .span_signal("order_executed", executed_selector());
    app.register(settings, |s| Execution { executed: s.declare("order_executed"), timeout }).unwrap()
}

/// A quote (the Node service's span `quote`) that was executed (the Python service's span), in one trace.
struct Quote {
    quoted: Signal<Span>,
    executed: Signal<Span>,
}

impl Case for Quote {
    type Args = String;
    async fn run(&self, _test: &TestRun, side: String) -> CaseResult {
        let quoted = self.quoted.wait(Duration::from_secs(20)).await?;
        assert_eq!(quoted.attribute_str("quote.side"), Some(side.as_str()), "the side quoted");
        let executed = self.executed.wait(Duration::from_secs(20)).await?;
        assert_eq!(executed.attribute_str("order.side"), Some(side.as_str()), "the side executed");
        assert_eq!(executed.trace_id, quoted.trace_id, "the quote service carried the trace onward");
        Ok(())
    }
}

fn register_quote(app: &LiveCheck) -> CaseHandle<Quote> {
    let settings = CaseSettings::new("orders.quote")
        .test_expires(Duration::from_secs(600))
        .span_signal("quoted", SpanSelector::named("quote").service("quote"))
        .span_signal("order_executed", executed_selector());
    app.register(settings, |s| Quote { quoted: s.declare("quoted"), executed: s.declare("order_executed") }).unwrap()
}

// ----- The test's context in W3C baggage -----

/// The `baggage` header LiveCheck writes for `test` (its `livecheck.test.*` members, percent-encoded), alone: the
/// services get the test's context only from it.
fn baggage_of(test: &TestContext) -> String {
    let pairs = test.header_pairs();
    let baggage = pairs.into_iter().find(|(name, _)| *name == HEADER_BAGGAGE).map(|(_, value)| value);
    let baggage = baggage.expect("a test context fits in baggage");
    assert!(baggage.contains("%2B00:00"), "`+` is encoded, or OpenTelemetry Python reads a space: {baggage}");
    baggage
}

// ----- The services -----

/// The workspace's root, above this crate.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the crate is in the workspace").to_owned()
}

/// The Python interpreter: `LIVECHECK_PYTHON`, else the workspace's `.venv`, else `python3`.
fn python() -> OsString {
    if let Some(python) = std::env::var_os("LIVECHECK_PYTHON") {
        return python;
    }
    let venv = workspace().join(".venv/bin/python");
    if venv.exists() {
        venv.into_os_string()
    } else {
        "python3".into()
    }
}

/// What the Python service needs, as `scripts/test` installs it.
const PYTHON_PACKAGES: &str = "opentelemetry-sdk==1.45.2 opentelemetry-exporter-otlp-proto-http==1.45.2 \
                               opentelemetry-processor-baggage==0.66b1 opentelemetry-instrumentation-wsgi==0.66b2";

/// Fails the test, saying how to install them, unless `python` has the OpenTelemetry packages.
fn require_python_packages(python: &OsString) {
    let imports = "import opentelemetry.sdk.trace, opentelemetry.exporter.otlp.proto.http.trace_exporter, \
                   opentelemetry.processor.baggage, opentelemetry.instrumentation.wsgi";
    let why = match Command::new(python).args(["-c", imports]).output() {
        Ok(out) if out.status.success() => return,
        Ok(out) => String::from_utf8_lossy(&out.stderr).trim().lines().last().unwrap_or_default().to_owned(),
        Err(error) => error.to_string(),
    };
    panic!(
        "the Python service needs OpenTelemetry ({} cannot import it: {why}): run scripts/test, or \
         `.venv/bin/pip install {PYTHON_PACKAGES}` at the workspace root (or set LIVECHECK_PYTHON to an interpreter \
         that has them)",
        Path::new(python).display()
    );
}

/// The Node service's directory.
fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/otel/node")
}

/// Fails the test, saying how to install them, unless `node` runs and the service's packages are installed.
fn require_node() {
    let why = match Command::new("node")
        .args(["-e", "require('@opentelemetry/sdk-trace-node'); require('@opentelemetry/instrumentation-http')"])
        .current_dir(node_dir())
        .output()
    {
        Ok(out) if out.status.success() => return,
        Ok(out) => String::from_utf8_lossy(&out.stderr).trim().lines().take(3).collect::<Vec<_>>().join(" "),
        Err(error) => format!("node on PATH could not be started: {error}"),
    };
    panic!(
        "the Node service needs Node.js 20 or later and its packages ({why}): run scripts/test, or install node and \
         npm (Debian: apt-get install nodejs npm) and run `npm ci` in livecheck/tests/otel/node"
    );
}

/// A service in a child process, on the port it printed; killed when dropped.
struct Service {
    name: &'static str,
    child: Child,
    /// Held open: the service stops when it closes.
    _stdin: ChildStdin,
    log: PathBuf,
    port: u16,
}

impl Service {
    /// Starts `command` and waits (at most 30 s) for its `listening on PORT`.
    fn start(name: &'static str, mut command: Command) -> Service {
        let log = std::env::temp_dir().join(format!("livecheck-otel-{name}-{}.log", fastrand::u64(..)));
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap_or_else(|error| panic!("the {name} service could not be started: {error}"));
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Reads the port, then drains stdout until the service ends.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(port) = line.strip_prefix("listening on ") {
                    let _ = tx.send(port.trim().parse::<u16>().ok());
                }
            }
        });
        let mut service = Service { name, child, _stdin: stdin, log, port: 0 };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Some(port)) => {
                    service.port = port;
                    return service;
                }
                Ok(None) => panic!("the {name} service printed no port:\n{}", service.output()),
                Err(_) => {}
            }
            if let Ok(Some(status)) = service.child.try_wait() {
                panic!("the {name} service exited ({status}) before listening:\n{}", service.output());
            }
            assert!(Instant::now() < deadline, "the {name} service did not listen within 30 s:\n{}", service.output());
        }
    }

    /// Starts it off the async threads (it takes a second or two to import its SDK).
    async fn spawn(name: &'static str, command: Command) -> Service {
        tokio::task::spawn_blocking(move || Service::start(name, command)).await.unwrap()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// What it wrote on stderr.
    fn output(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        format!("--- {} service's stderr ---\n{text}", self.name)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The Python execution service, exporting to `traces` (the instance's `/v1/traces`), with `flags`.
async fn python_service(traces: &str, flags: &[&str]) -> Service {
    let python = python();
    require_python_packages(&python);
    let mut command = Command::new(&python);
    command
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/otel/python/execution_service.py"))
        .args(flags)
        .env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_PROPAGATORS")
        .env_remove("OTEL_TRACES_SAMPLER");
    Service::spawn("execution", command).await
}

/// The Node quote service, exporting to `traces`, calling the execution service at `execution`.
async fn node_service(traces: &str, execution: &Service) -> Service {
    require_node();
    let mut command = Command::new("node");
    command
        .arg("quote_service.js")
        .current_dir(node_dir())
        .env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces)
        .env("EXECUTION_URL", execution.url("/execute"))
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_PROPAGATORS")
        .env_remove("OTEL_TRACES_SAMPLER")
        .env_remove("NODE_OPTIONS");
    Service::spawn("quote", command).await
}

// ----- The instance -----

/// An instance on `transport` with its web server on a free port; registers its cases with `register`.
async fn start(transport: Arc<dyn Transport>, register: impl FnOnce(&LiveCheck)) -> (LiveCheck, Running, String) {
    let app = LiveCheck::builder().shared_transport(transport).web_address("127.0.0.1:0").build();
    register(&app);
    let running = app.start().await.unwrap();
    let traces = format!("http://{}/v1/traces", running.web_address().unwrap());
    (app, running, traces)
}

fn sqlite(db: &TempDb) -> Arc<dyn Transport> {
    Arc::new(SqliteTransport::open(&db.0).unwrap())
}

/// The report of `test`, once published (panics after `within`).
async fn report_of(transport: &dyn Transport, test: &TestContext, within: Duration) -> TestReport {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        for received in read_all(transport, "livecheck-report").await {
            let report: TestReport = serde_json::from_slice(&received.message.value).unwrap();
            if report.test.as_ref().is_some_and(|t| t.id == test.id()) {
                return report;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "no report of {} within {within:?}", test.id());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asks the execution service to execute `side`, with `test`'s context in `baggage` only.
async fn execute(service: &Service, test: &TestContext, side: &str) {
    let answer = reqwest::Client::new()
        .post(service.url("/execute"))
        .header("baggage", baggage_of(test))
        .json(&serde_json::json!({ "side": side }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "{}", service.output());
}

/// One scenario of the Python service alone: triggers `orders.execution` for "sell", calls the service, and
/// returns the report and the instance.
async fn python_scenario(
    transport: Arc<dyn Transport>,
    flags: &[&str],
    timeout: Duration,
    report_within: Duration,
) -> (TestReport, LiveCheck, Service) {
    let mut handle = None;
    let (app, running, traces) = start(transport.clone(), |app| handle = Some(register_execution(app, timeout))).await;
    let handle = handle.unwrap();
    let service = python_service(&traces, flags).await;
    let test = handle.trigger(&"sell".to_owned()).await.unwrap();
    execute(&service, &test, "sell").await;
    let report = report_of(transport.as_ref(), &test, report_within).await;
    running.shutdown().await.unwrap();
    (report, app, service)
}

// ----- The scenarios -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_span_with_the_side_ordered_passes() {
    let db = TempDb::new("otel-python-pass");
    let (report, app, service) =
        python_scenario(sqlite(&db), &[], Duration::from_secs(20), Duration::from_secs(30)).await;
    assert_eq!(report.state, State::Pass, "{report:?}\n{}", service.output());
    let metrics = app.metrics();
    assert_eq!(metrics.span_signals, 1, "the `execute order` span only");
    assert_eq!(metrics.spans_refused, 0);
    assert_eq!(metrics.otlp_requests_refused, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_span_with_another_side_fails_naming_it() {
    let db = TempDb::new("otel-python-fail");
    let (report, app, service) =
        python_scenario(sqlite(&db), &["--change-side"], Duration::from_secs(20), Duration::from_secs(30)).await;
    assert_eq!(report.state, State::Fail, "{report:?}\n{}", service.output());
    let traceback = report.traceback.as_deref().unwrap_or_default();
    assert!(traceback.contains("the side the execution stage saw"), "{traceback}");
    assert!(traceback.contains("\"buy\""), "the span's attribute value is in the message: {traceback}");
    assert_eq!(app.metrics().span_signals, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_service_that_drops_the_order_times_out_on_order_executed() {
    let db = TempDb::new("otel-python-timeout");
    let (report, app, service) =
        python_scenario(sqlite(&db), &["--drop"], Duration::from_secs(3), Duration::from_secs(30)).await;
    assert_eq!(report.state, State::Timeout, "{report:?}\n{}", service.output());
    let message = format!("{:?} {:?}", report.error, report.traceback);
    assert!(message.contains("order_executed"), "the signal is named: {message}");
    assert_eq!(app.metrics().span_signals, 0);
    assert!(app.metrics().spans_received >= 1, "the service's own server span still came");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_service_carries_the_context_onward_to_python_and_both_spans_are_signals() {
    let db = TempDb::new("otel-node");
    let transport = sqlite(&db);
    let mut handle = None;
    let (app, running, traces) = start(transport.clone(), |app| handle = Some(register_quote(app))).await;
    let handle = handle.unwrap();
    let execution = python_service(&traces, &[]).await;
    let quote = node_service(&traces, &execution).await;
    let test = handle.trigger(&"sell".to_owned()).await.unwrap();
    let answer =
        reqwest::Client::new().get(quote.url("/quote?side=sell")).header("baggage", baggage_of(&test)).send().await;
    let answer = answer.unwrap();
    assert_eq!(answer.status(), 200, "{}\n{}", quote.output(), execution.output());
    let report = report_of(transport.as_ref(), &test, Duration::from_secs(30)).await;
    running.shutdown().await.unwrap();
    assert_eq!(report.state, State::Pass, "{report:?}\n{}\n{}", quote.output(), execution.output());
    let metrics = app.metrics();
    assert_eq!(metrics.span_signals, 2, "the `quote` span (JSON) and the `execute order` span (protobuf)");
    assert_eq!(metrics.spans_refused, 0);
    assert_eq!(metrics.otlp_requests_refused, 0);
}

#[cfg(feature = "kafka")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_span_with_the_side_ordered_passes_on_kafka() {
    let tansu = support::tansu::Tansu::start();
    let kafka = livecheck::transport::KafkaTransport::connect(&tansu.url).unwrap().with_partitions(4);
    let (report, app, service) =
        python_scenario(Arc::new(kafka), &[], Duration::from_secs(30), Duration::from_secs(90)).await;
    assert_eq!(report.state, State::Pass, "{report:?}\n{}", service.output());
    assert_eq!(app.metrics().span_signals, 1);
    assert_eq!(app.metrics().spans_refused, 0);
}
