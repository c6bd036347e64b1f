//! `livecheck status` (the real binary) against a real LiveCheck instance serving its web server (the library's
//! feature `web`, on a free port, memory transport), its cases driven by triggering tests and sending signals; and
//! against addresses that are no LiveCheck instance: nothing listening, a 404, an answer that is not JSON.

use std::{process::Output, time::Duration};

use axum::{routing::get, Router};
use chrono::{DateTime, Utc};
use livecheck::{Case, CaseHandle, CaseResult, CaseSettings, LiveCheck, Running, Signal, TestRun};
use serde_json::Value;
use tokio::process::Command;

/// Bounds every command and every wait, so that none hangs: generous, not a speed check.
const PATIENCE: Duration = Duration::from_secs(60);
const ORDERS: &str = "orders.test_order";
const REFUNDS: &str = "payments.test_refund";

/// Checks that an order is stored with the side it was placed with, then executed. Its fake requests go to
/// `order_service`, where nothing listens: the service is down.
struct TestOrder {
    order_sent_to_db: Signal<String>,
    order_executed: Signal<()>,
    order_service: String,
}

impl Case for TestOrder {
    type Args = String;

    async fn run(&self, _test: &TestRun, side: String) -> CaseResult {
        let stored = self.order_sent_to_db.wait(PATIENCE).await?;
        assert_eq!(stored, side, "the order's side changed");
        self.order_executed.wait(PATIENCE).await?;
        Ok(())
    }

    async fn make_fake_request(&self) -> CaseResult {
        let url = &self.order_service;
        match reqwest::Client::new().post(url).timeout(Duration::from_secs(5)).send().await {
            Ok(_) => Ok(()),
            Err(error) => {
                let mut cause: &dyn std::error::Error = &error;
                while let Some(source) = cause.source() {
                    cause = source;
                }
                Err(livecheck::Error::service_down(Some(url), cause.to_string()).into())
            }
        }
    }
}

/// Waits for the refund to be issued.
struct TestRefund {
    refund_issued: Signal<()>,
}

impl Case for TestRefund {
    type Args = ();

    async fn run(&self, _test: &TestRun, _: ()) -> CaseResult {
        self.refund_issued.wait(PATIENCE).await?;
        Ok(())
    }
}

/// A LiveCheck instance on the memory transport with its web server on a free port.
struct Instance {
    app: LiveCheck,
    running: Running,
    url: String,
}

impl Instance {
    async fn start(app: LiveCheck) -> Instance {
        let running = app.start().await.unwrap();
        let url = format!("http://{}", running.web_address().expect("the web server is on"));
        Instance { app, running, url }
    }

    /// `GET /api/status`, as the instance answers it now.
    async fn status(&self) -> Value {
        reqwest::get(format!("{}/api/status", self.url)).await.unwrap().json().await.unwrap()
    }

    /// Waits until the execution `id` has its verdict.
    async fn finished(&self, id: &str) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while self.app.execution(id).is_none_or(|record| record.state.is_none()) {
            assert!(tokio::time::Instant::now() < deadline, "the execution {id} did not finish");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) {
        self.running.shutdown().await.unwrap();
    }
}

/// Registers `payments.test_refund`.
fn refunds(app: &LiveCheck) -> CaseHandle<TestRefund> {
    app.register(CaseSettings::new(REFUNDS), |s| TestRefund { refund_issued: s.declare("refund_issued") }).unwrap()
}

/// A refund, issued: a PASS.
async fn refund(instance: &Instance, refunds: &CaseHandle<TestRefund>) {
    let test = refunds.trigger(&()).await.unwrap();
    let id = test.id().to_owned();
    livecheck::scope(Some(test), refunds.refund_issued.notify()).await.unwrap();
    instance.finished(&id).await;
}

/// An instance where `orders.test_order` is failing: one PASS, one FAIL, one execution still waiting for
/// `order_executed`, and its order service down; `payments.test_refund` passes. Returns it once the API says so,
/// with the order service's URL.
async fn failing_instance() -> (Instance, String) {
    // Nothing listens there: bound, then let go.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let order_service = format!("http://127.0.0.1:{port}/order/init/sell/?fake=1");
    let app = LiveCheck::builder().web_address("127.0.0.1:0").build();
    let service = order_service.clone();
    let orders = app
        .register(CaseSettings::new(ORDERS).frequency(Duration::from_millis(100)), |s| TestOrder {
            order_sent_to_db: s.declare("order_sent_to_db"),
            order_executed: s.declare("order_executed"),
            order_service: service,
        })
        .unwrap();
    let refunds = refunds(&app);
    let instance = Instance::start(app).await;

    for (placed, stored, executed) in [("sell", "sell", true), ("sell", "buy", false), ("buy", "buy", false)] {
        let test = orders.trigger(&placed.to_owned()).await.unwrap();
        let id = test.id().to_owned();
        livecheck::scope(Some(test), async {
            orders.order_sent_to_db.send(&stored.to_owned()).await?;
            if executed {
                orders.order_executed.notify().await?;
            }
            Ok::<(), livecheck::Error>(())
        })
        .await
        .unwrap();
        if placed == stored && !executed {
            // Left waiting for `order_executed`: in flight.
            continue;
        }
        instance.finished(&id).await;
    }
    for _ in 0..2 {
        refund(&instance, &refunds).await;
    }
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let status = instance.status().await;
        let orders = &status["cases"][0];
        if orders["service_down"].is_object() && orders["in_flight"] == 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not there yet: {status:#}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Shown without its query string (it may hold a token).
    let shown = order_service.split('?').next().unwrap().to_owned();
    (instance, shown)
}

async fn livecheck(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_livecheck"));
    command.args(args).env_remove("LIVECHECK_URL").env("NO_COLOR", "1").kill_on_drop(true);
    tokio::time::timeout(PATIENCE, command.output()).await.expect("the command ended").unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An RFC 3339 time of the API as the table shows it.
fn shown_time(value: &Value) -> String {
    let time: DateTime<Utc> = value.as_str().unwrap().parse().unwrap();
    time.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// A table row's cells (separated by two spaces or more).
fn cells(line: &str) -> Vec<&str> {
    line.split("  ").filter(|cell| !cell.is_empty()).map(str::trim).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_case_is_listed_first_with_its_cause_and_the_exit_code_is_1() {
    let (instance, order_service) = failing_instance().await;
    let status = instance.status().await;
    let out = livecheck(&["status", "--url", &format!("{}/", instance.url)]).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "stdout: {stdout}\nstderr: {}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    let started = shown_time(&status["instance"]["started_at"]);
    assert_eq!(lines[0], format!("2 cases, 1 failing; instance leader, started {started}, on memory://"));
    assert!(lines[1].starts_with("CASE") && lines[1].ends_with("CAUSE"), "{}", lines[1]);

    // The failing case first, although its name sorts after the other's.
    let failing = cells(lines[2]);
    assert_eq!(failing[..4], [ORDERS, "FAIL", "50% (1/2)", "1/0/1/0/0/0"], "{}", lines[2]);
    assert!(failing[4].ends_with('s') && failing[4] != "-", "a median runtime: {}", lines[2]);
    assert!(failing[5].starts_with("1 (oldest ") && failing[5].ends_with("s)"), "{}", lines[2]);
    let down = &status["cases"][0]["service_down"];
    let last_error = down["last_error"].as_str().unwrap();
    assert!(last_error.to_lowercase().contains("connection refused"), "{down}");
    let cause = format!("service down since {} ({order_service}: {last_error})", shown_time(&down["since"]));
    assert!(failing[6].starts_with(&cause), "cause `{}`, expected to start with `{cause}`", failing[6]);
    assert!(failing[6].contains("last suite failure"), "{}", failing[6]);

    let passing = cells(lines[3]);
    assert_eq!(passing[..4], [REFUNDS, "PASS", "100% (2/2)", "2/0/0/0/0/0"], "{}", lines[3]);
    assert_eq!(lines.len(), 4);
    assert!(!stdout.contains('\x1b'), "no colours when stdout is not a terminal");

    // --json: the API's answer, fields the table leaves out too; the exit code tells there as well.
    let json = livecheck(&["status", "--json", "--url", &instance.url]).await;
    assert_eq!(json.status.code(), Some(1), "the exit code tells with --json too");
    let answer: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(answer["cases"][0]["name"], ORDERS);
    assert_eq!(answer["cases"][0]["service_down"]["url"], order_service.as_str());
    assert_eq!(answer["instance"]["metrics"]["tests_finished"], 4, "{answer:#}");
    instance.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_passing_is_exit_0_and_json_prints_the_answer_as_is() {
    let app = LiveCheck::builder().web_address("127.0.0.1:0").build();
    let refunds = refunds(&app);
    // Never tested: INIT, not failing.
    app.register(CaseSettings::new("ping"), |s| TestRefund { refund_issued: s.declare("refund_issued") }).unwrap();
    let instance = Instance::start(app).await;
    refund(&instance, &refunds).await;

    // An address without its scheme is taken as http://.
    let out = livecheck(&["status", "--url", instance.url.trim_start_matches("http://")]).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stdout: {stdout}\nstderr: {}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("2 cases, 0 failing; instance not leader, started "), "{stdout}");
    assert_eq!(cells(lines[2])[..4], [REFUNDS, "PASS", "100% (1/1)", "1/0/0/0/0/0"], "{stdout}");
    assert_eq!(cells(lines[3])[..4], ["ping", "INIT", "-", "0/0/0/0/0/0"], "{stdout}");

    // Nothing changes on an idle instance: --json prints exactly what the API answers.
    let json = livecheck(&["status", "--json", "--url", &instance.url]).await;
    assert_eq!(json.status.code(), Some(0), "{}", text(&json.stderr));
    let answer: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(answer, instance.status().await);
    assert_eq!(answer["instance"]["metrics"]["tests_finished"], 1, "{answer:#}");
    instance.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_instance_or_one_that_is_not_livecheck_is_exit_2_naming_the_url_and_cause() {
    // A port nobody listens on: bound, then let go.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let out = livecheck(&["status", "--url", &url]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("cannot reach the LiveCheck instance at {url}")), "{stderr}");
    assert!(stderr.to_lowercase().contains("connection refused"), "the cause: {stderr}");
    assert!(out.stdout.is_empty());

    // A LiveCheck instance, but the URL is not its API's root: 404.
    let app = LiveCheck::builder().web_address("127.0.0.1:0").build();
    let instance = Instance::start(app).await;
    let missing = livecheck(&["status", "--url", &format!("{}/elsewhere", instance.url)]).await;
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("answered HTTP 404"), "{}", text(&missing.stderr));
    assert!(missing.stdout.is_empty());
    instance.stop().await;

    // Something else answering (a proxy's error page): not JSON.
    let router = Router::new().route("/api/status", get(|| async { "<html>a proxy's error page</html>" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let broken = livecheck(&["status", "--url", &base]).await;
    assert_eq!(broken.status.code(), Some(2));
    assert!(text(&broken.stderr).contains("did not answer a LiveCheck status"), "{}", text(&broken.stderr));
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_serving_https_is_read_trusting_its_certificate_with_ca_cert() {
    let dir = std::env::temp_dir().join(format!("livecheck-cli-tls-{}-{}", std::process::id(), line!()));
    std::fs::create_dir_all(&dir).unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let app = LiveCheck::builder().web_address("127.0.0.1:0").web_tls(&cert, &key).build();
    let refunds = refunds(&app);
    let running = app.start().await.unwrap();
    let url = format!("https://{}", running.web_address().unwrap());

    let out = livecheck(&["status", "--url", &url, "--ca-cert", cert.to_str().unwrap()]).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stdout: {stdout}\nstderr: {}", text(&out.stderr));
    assert!(stdout.starts_with("1 cases, 0 failing") || stdout.starts_with("1 case, 0 failing"), "{stdout}");
    assert!(stdout.contains(REFUNDS), "{stdout}");

    // Without it, the self-signed certificate is not trusted: exit 2, saying it could not reach the instance.
    let out = livecheck(&["status", "--url", &url]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("cannot reach the LiveCheck instance"), "{}", text(&out.stderr));
    let out = livecheck(&["status", "--url", &url, "--ca-cert", dir.join("missing.pem").to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--ca-cert: cannot read"), "{}", text(&out.stderr));

    drop(refunds);
    running.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
