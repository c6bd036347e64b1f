//! Declarative cases (feature `declare`): case files' errors name the file and line; the tutorial's case file
//! reads; declared cases reach PASS, FAIL and TIMEOUT like Rust ones (steps in order, parallel groups, comparisons
//! with another stage and the arguments, span attributes); hostile case files (seeded mutations) are errors, never
//! panics; and `serve` reloads its cases without losing or repeating a test in flight.

mod support;

use std::{path::Path, time::Duration};

use livecheck::{
    declare::{self, CaseFile, Format, ServeConfig, ServeControl},
    transport::{MemoryTransport, Message, Transport},
    LiveCheck, Running, State,
};
use serde_json::{json, Value};

fn parse(text: &str, format: Format) -> Result<declare::CaseDefinition, declare::CaseFileError> {
    declare::parse(text, format, Path::new("cases/example.yaml"))
}

#[test]
fn errors_name_the_file_the_line_and_what_is_wrong() {
    let cases: [(&str, Format, usize, &str); 7] = [
        ("name: x\nsteps:\n  - signal: a\n    assert:\n      - { select: $.a, regex: \"(\" }\n", Format::Yaml, 5, "does not compile"),
        ("name: x\nsettings:\n  probability: 2\nsteps:\n  - signal: a\n", Format::Yaml, 3, "probability"),
        ("name: x\nsteps:\n  - signal: a\n    timeout: 5q\n", Format::Yaml, 4, "not a duration"),
        ("name: x\nsteps:\n  - signal: a\n    tiemout: 5s\n", Format::Yaml, 4, "unknown field `tiemout`"),
        ("name: x\nsteps:\n  - signal: a\n  - signal: b\n    assert:\n      - { select: $.a, equals_stage: { signal: c } }\n", Format::Yaml, 6, "not a stage before"),
        ("name = \"x\"\n[[steps]]\nsignal = \"a\"\ntimeout = \"5q\"\n", Format::Toml, 4, "not a duration"),
        ("name = \"x\"\n[[steps]]\nsignal = \"a\"\n[[steps]]\nsignal = \"a\"\n", Format::Toml, 5, "awaited twice"),
    ];
    for (text, format, line, what) in cases {
        let error = parse(text, format).unwrap_err();
        let shown = error.to_string();
        assert!(shown.starts_with("cases/example.yaml:"), "{shown}");
        assert_eq!(error.line, Some(line), "{shown}\n{text}");
        assert!(shown.contains(what), "{shown}");
    }
    for (text, what) in [
        ("name: x\nsteps: []\n", "at least one step"),
        ("name: x\nsteps:\n  - signal: a\n    assert: [{ select: $.a }]\n", "needs one comparison"),
        ("name: x\nsteps:\n  - signal: a\n    budget: 0s\n", "above 0"),
        ("name: x\nsteps:\n  - signal: a\nfake_request: { url: 'http://h/' }\n", "needs settings.frequency"),
        ("name: x\nsettings: { frequency: 1s }\nsteps:\n  - signal: a\nfake_request: { url: 'ftp://h/' }\n", "http://"),
        ("name: x\nsettings: { frequency: 1s }\nsteps:\n  - signal: a\nfake_request: { url: 'http://h/{{test.id}}' }\n", "trigger: true"),
        ("name: x\nsteps:\n  - parallel: []\n", "at least one stage"),
        ("name: x\nsteps:\n  - { signal: a, parallel: [{ signal: b }] }\n", "not both"),
    ] {
        let error = parse(text, Format::Yaml).unwrap_err().to_string();
        assert!(error.contains(what), "{error}");
    }
}

#[test]
fn the_tutorial_case_file_reads_as_the_rust_case() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/orders/cases/test_order.yaml");
    let cases = declare::load(&path).unwrap();
    let case = &cases[0].definition;
    assert_eq!(case.name(), "orders.test_order");
    assert_eq!(
        case.signal_names(),
        ["order_sent_to_db", "order_sent_to_kafka", "order_cache_in_redis", "order_executed"]
    );
    let settings = case.settings();
    assert_eq!((settings.probability, settings.frequency), (0.5, Some(Duration::from_millis(500))));
    assert_eq!(settings.warn_stalled_after, Duration::from_secs(5));
}

/// A case file's case running on a memory transport.
struct Declared {
    transport: MemoryTransport,
    app: LiveCheck,
    running: Running,
}

async fn declared(text: &str) -> Declared {
    let transport = MemoryTransport::new();
    let app = LiveCheck::builder().transport(transport.clone()).build();
    let definition = parse(text, Format::Yaml).unwrap();
    CaseFile { path: "cases/example.yaml".into(), definition }.register(&app).unwrap();
    let running = app.start().await.unwrap();
    Declared { transport, app, running }
}

impl Declared {
    async fn trigger(&self, id: &str, args: Value) {
        self.app.trigger_by_name("shop", Some(id), &args, Duration::from_secs(60)).await.unwrap();
    }

    async fn signal(&self, id: &str, signal: &str, value: Value) {
        let event = json!({"signal_name": signal, "case_name": "shop", "key": id, "value": value});
        let message =
            Message { key: Some(id.into()), value: serde_json::to_vec(&event).unwrap(), headers: Default::default() };
        self.transport.publish("livecheck-bus", message).await.unwrap();
    }

    async fn report(&self, id: &str) -> livecheck::wire::TestReport {
        for _ in 0..500 {
            if let Some(report) =
                support::reports(&self.transport).into_iter().find(|r| r.test.as_ref().is_some_and(|t| t.id == id))
            {
                return report;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no report for {id}");
    }
}

const SHOP: &str = r#"
name: shop
timeout: 2s
steps:
  - signal: ordered
    assert:
      - { select: $.id, equals_test_id: true }
      - { select: $.side, equals_arg: side }
      - { select: '$.items[0].qty', range: { min: 1, max: 10 } }
  - parallel:
      - { signal: paid, timeout: 400ms, assert: [{ select: $.order, equals_stage: { signal: ordered, select: $.id } }] }
      - { signal: packed, timeout: 400ms }
  - signal: shipped
    timeout: 400ms
    span: { name: ship }
    assert:
      - { attribute: carrier, regex: '^(ups|dhl)$' }
      - { select: $.status.code, differs: ERROR }
"#;

fn span(carrier: &str, code: &str) -> Value {
    json!({"name": "ship", "service": null, "trace_id": "0".repeat(32), "span_id": "1".repeat(16), "parent_span_id": null,
           "attributes": {"carrier": carrier}, "status": {"code": code, "message": null},
           "start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:01Z", "duration_seconds": 1.0})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_case_passes_fails_and_times_out_as_a_rust_one() {
    let shop = declared(SHOP).await;
    let order = |id: &str, side: &str, qty: u32| json!({"id": id, "side": side, "items": [{"qty": qty}]});

    // PASS, the parallel group's signals arriving in reverse order, some before the test starts.
    shop.signal("t1", "packed", Value::Null).await;
    shop.trigger("t1", json!({"side": "sell"})).await;
    shop.signal("t1", "ordered", order("t1", "sell", 3)).await;
    shop.signal("t1", "paid", json!({"order": "t1"})).await;
    shop.signal("t1", "shipped", span("ups", "OK")).await;
    let pass = shop.report("t1").await;
    assert_eq!(pass.state, State::Pass, "{pass:?}");
    assert_eq!(pass.signal_latency.0.len(), 4);

    // FAIL on each kind of contract, naming the stage, the selector and the file.
    let failures: [(&str, Value, Value, Value, &str); 4] = [
        ("f1", order("f1", "buy", 3), json!({"order": "f1"}), span("ups", "OK"), "$.side is \"buy\""),
        ("f2", order("f2", "sell", 11), json!({"order": "f2"}), span("ups", "OK"), "within 1..=10"),
        ("f3", order("f3", "sell", 1), json!({"order": "other"}), span("ups", "OK"), "equal to $.id of stage ordered"),
        ("f4", order("f4", "sell", 1), json!({"order": "f4"}), span("fedex", "OK"), "matching /^(ups|dhl)$/"),
    ];
    for (id, ordered, paid, shipped, says) in failures {
        shop.trigger(id, json!({"side": "sell"})).await;
        shop.signal(id, "ordered", ordered).await;
        shop.signal(id, "paid", paid).await;
        shop.signal(id, "packed", Value::Null).await;
        shop.signal(id, "shipped", shipped).await;
        let report = shop.report(id).await;
        assert_eq!(report.state, State::Fail, "{id}: {report:?}");
        let error = format!("{} {}", report.error.unwrap_or_default(), report.traceback.unwrap_or_default());
        assert!(error.contains(says) && error.contains("cases/example.yaml, step "), "{id}: {error}");
    }

    // TIMEOUT: a member of the group never comes.
    shop.trigger("t2", json!({"side": "sell"})).await;
    shop.signal("t2", "ordered", order("t2", "sell", 3)).await;
    shop.signal("t2", "paid", json!({"order": "t2"})).await;
    let timeout = shop.report("t2").await;
    assert_eq!(timeout.state, State::Timeout, "{timeout:?}");
    assert!(timeout.error.unwrap_or_default().contains("packed"));
    shop.running.shutdown().await.unwrap();
}

#[test]
fn hostile_case_files_are_errors_never_panics() {
    let mut rng = support::hostile::seeded();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/orders/cases/test_order.yaml");
    let tutorial = std::fs::read(path).unwrap();
    let toml = b"name = \"x\"\ntimeout = \"1s\"\n[settings]\nprobability = 0.5\n[[steps]]\nsignal = \"a\"\nbudget = \"10ms\"\n[[steps.assert]]\nselect = \"$.a[0]\"\nregex = \"^a+$\"\n".to_vec();
    let shop = SHOP.as_bytes().to_vec();
    let (mut valid, mut refused) = (0, 0);
    for round in 0..3000 {
        let (original, format) = match round % 3 {
            0 => (&tutorial, Format::Yaml),
            1 => (&shop, Format::Yaml),
            _ => (&toml, Format::Toml),
        };
        let mutated = support::hostile::mutate(&mut rng, original);
        let text = String::from_utf8_lossy(&mutated);
        match parse(&text, format) {
            Ok(_) => valid += 1,
            Err(error) => {
                refused += 1;
                assert!(error.to_string().starts_with("cases/example.yaml"), "{error}");
                let lines = text.lines().count().max(1);
                assert!(error.line.is_none_or(|line| line >= 1 && line <= lines + 1), "{error} in {lines} lines");
            }
        }
    }
    assert!(refused > 1000 && valid > 0, "{valid} valid, {refused} refused");
}

const TWO_STAGES: &str =
    "name: shop\nsteps:\n  - { signal: ordered, timeout: 20s }\n  - { signal: shipped, timeout: 20s }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reloads_its_cases_without_losing_or_repeating_a_test_in_flight() {
    let dir = std::env::temp_dir().join(format!("livecheck-serve-{}", fastrand::u64(..)));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = dir.join("shop.yaml");
    std::fs::write(&cases, TWO_STAGES).unwrap();
    let broker = format!("sqlite://{}", dir.join("log.sqlite3").display());
    let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel();
    let factory_broker = broker.clone();
    let config = ServeConfig {
        cases: cases.clone(),
        web_address: "127.0.0.1:0".into(),
        builder: Box::new(move || {
            Ok(LiveCheck::builder()
                .shared_transport(livecheck::transport::from_url(&factory_broker)?)
                .web_write_token("w"))
        }),
        watch_every: Some(Duration::from_millis(100)),
        on_start: Some(Box::new(move |address, cases: &[CaseFile]| {
            let _ = started_tx.send((address, cases[0].definition.signal_names().len()));
        })),
    };
    let control = ServeControl::new();
    let serving = tokio::spawn(declare::serve(config, control.clone()));
    let (address, stages) = started.recv().await.unwrap();
    assert_eq!(stages, 2);
    let client = reqwest::Client::new();
    let post =
        |path: &str, body: Value| client.post(format!("http://{address}{path}")).bearer_auth("w").json(&body).send();
    // Tests in flight: their first stage arrived, their second has not.
    for id in ["r1", "r2", "r3"] {
        assert_eq!(post("/api/tests", json!({"case": "shop", "id": id})).await.unwrap().status(), 201);
        assert_eq!(post("/api/signals", json!({"test_id": id, "signal": "ordered"})).await.unwrap().status(), 202);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A broken file is not loaded: the running cases stay.
    std::fs::write(&cases, "name: shop\nsteps: [{ signal: ordered, timeout: 5q }]\n").unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(started.try_recv().is_err(), "no restart for a broken file");

    // A third stage: the file watch restarts the instance on the same address, with the tests in flight.
    let three = format!("{TWO_STAGES}  - {{ signal: packed, timeout: 20s }}\n");
    std::fs::write(&cases, three).unwrap();
    let (again, stages) = tokio::time::timeout(Duration::from_secs(20), started.recv()).await.unwrap().unwrap();
    assert_eq!((again, stages), (address, 3), "same address, the new case");
    for id in ["r1", "r2", "r3"] {
        for signal in ["shipped", "packed"] {
            let answer = post("/api/signals", json!({"test_id": id, "signal": signal})).await.unwrap();
            assert_eq!(answer.status(), 202, "{id} {signal}");
        }
    }
    // SIGHUP's way: an explicit reload restarts too.
    control.reload();
    let (_, stages) = tokio::time::timeout(Duration::from_secs(20), started.recv()).await.unwrap().unwrap();
    assert_eq!(stages, 3);

    let transport = livecheck::transport::SqliteTransport::open(dir.join("log.sqlite3")).unwrap();
    let read_reports = || async {
        support::read_all(&transport, "livecheck-report")
            .await
            .iter()
            .map(|r| serde_json::from_slice::<livecheck::wire::TestReport>(&r.message.value).unwrap())
            .filter(|r| r.test.is_some())
            .collect::<Vec<_>>()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while read_reports().await.len() < 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Time for a second report of any of them, which must not come.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let reports = read_reports().await;
    let mut ids: Vec<_> = reports.iter().map(|r| (r.test.as_ref().unwrap().id.clone(), r.state)).collect();
    ids.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        ids,
        [("r1".into(), State::Pass), ("r2".into(), State::Pass), ("r3".into(), State::Pass)],
        "one PASS each"
    );
    control.stop();
    serving.await.unwrap().unwrap();
    drop(transport);
    let _ = std::fs::remove_dir_all(&dir);
}
