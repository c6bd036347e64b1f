//! The web server's publishing routes over real HTTP (feature `web`): `POST /api/tests` and `POST /api/signals`
//! run a case to its verdict with no Rust on the services' side; the write and read tokens; signing (only the token
//! or a signed test context); 4xx JSON errors naming the field; the rate limit; the OpenAPI document; and seeded
//! hostile bodies that never make a test nor a 5xx.

mod support;

use std::time::Duration;

use livecheck::{
    transport::MemoryTransport, Case, CaseResult, CaseSettings, LiveCheck, LiveCheckBuilder, Running, Signal, State,
    TestRun,
};
use serde_json::{json, Value};

/// Waits for `paid` (the amount the test was issued with), then `shipped`.
struct Checkout {
    paid: Signal<u32>,
    shipped: Signal<()>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Args {
    amount: u32,
}

impl Case for Checkout {
    type Args = Args;
    async fn run(&self, _test: &TestRun, args: Args) -> CaseResult {
        let paid = self.paid.wait(Duration::from_secs(10)).await?;
        livecheck::ensure!(paid == args.amount, "paid {paid}, expected {}", args.amount);
        self.shipped.wait(Duration::from_secs(10)).await?;
        Ok(())
    }
}

struct Shop {
    transport: MemoryTransport,
    running: Running,
    base: String,
    client: reqwest::Client,
}

async fn shop(configure: impl FnOnce(LiveCheckBuilder) -> LiveCheckBuilder) -> Shop {
    let transport = MemoryTransport::new();
    let builder = LiveCheck::builder().transport(transport.clone()).web_address("127.0.0.1:0");
    let app = configure(builder).build();
    app.register(CaseSettings::new("checkout"), |s| Checkout {
        paid: s.declare("paid"),
        shipped: s.declare("shipped"),
    })
    .unwrap();
    let running = app.start().await.unwrap();
    let base = format!("http://{}", running.web_address().unwrap());
    Shop { transport, running, base, client: reqwest::Client::new() }
}

impl Shop {
    async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        self.post_raw(path, token, &[], serde_json::to_vec(body).unwrap()).await
    }

    async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> (u16, Value) {
        let mut request = self.client.post(format!("{}{path}", self.base)).body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn get(&self, path: &str, token: Option<&str>) -> u16 {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap().status().as_u16()
    }

    fn executions(&self) -> usize {
        self.transport.messages("livecheck").len()
    }

    fn signals(&self) -> usize {
        self.transport.messages("livecheck-bus").len()
    }

    async fn verdict(&self, id: &str) -> State {
        for _ in 0..500 {
            let reports = support::reports(&self.transport);
            if let Some(report) = reports.iter().find(|r| r.test.as_ref().is_some_and(|t| t.id == id)) {
                return report.state;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no report for {id}");
    }
}

fn forwarded(answer: &Value) -> Vec<(String, String)> {
    answer["headers"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_started_and_signalled_through_the_api_reaches_its_verdict() {
    let shop = shop(|b| b.web_write_token("w-token")).await;
    let (status, answer) =
        shop.post("/api/tests", Some("w-token"), &json!({"case": "checkout", "args": {"amount": 42}})).await;
    assert_eq!(status, 201, "{answer}");
    let id = answer["id"].as_str().unwrap().to_owned();
    assert_eq!(answer["headers"]["LiveCheck-Test-Id"], id.as_str(), "{answer}");
    assert_eq!(shop.executions(), 1, "durable before the answer");
    for (signal, value) in [("paid", json!(42)), ("shipped", Value::Null)] {
        let (status, answer) =
            shop.post("/api/signals", Some("w-token"), &json!({"test_id": id, "signal": signal, "value": value})).await;
        assert_eq!(status, 202, "{answer}");
    }
    assert_eq!(shop.signals(), 2, "durable before the answer");
    assert_eq!(shop.verdict(&id).await, State::Pass);

    // A wrong value: FAIL, as from a Rust service. An id given by the caller is the test's.
    let (status, answer) = shop
        .post("/api/tests", Some("w-token"), &json!({"case": "checkout", "args": {"amount": 7}, "id": "order-7"}))
        .await;
    assert_eq!((status, answer["id"].as_str()), (201, Some("order-7")));
    let (status, _) =
        shop.post("/api/signals", Some("w-token"), &json!({"test_id": "order-7", "signal": "paid", "value": 8})).await;
    assert_eq!(status, 202);
    assert_eq!(shop.verdict("order-7").await, State::Fail);
    shop.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_token_guards_the_routes_that_publish_and_the_read_token_the_reads() {
    let shop = shop(|b| b.web_write_token("w-token").web_read_token("r-token")).await;
    let start = json!({"case": "checkout", "args": {"amount": 1}});
    for token in [None, Some("r-token"), Some("w-tokenX"), Some("")] {
        let (status, answer) = shop.post("/api/tests", token, &start).await;
        assert_eq!(status, 401, "{token:?}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains("Bearer"), "{answer}");
        let (status, _) =
            shop.post("/api/signals", token, &json!({"test_id": "x", "signal": "paid", "value": 1})).await;
        assert_eq!(status, 401, "{token:?}");
    }
    // Without signing, a test's headers are no key: anyone could write them.
    let (status, answer) = shop.post("/api/tests", Some("w-token"), &start).await;
    assert_eq!(status, 201);
    let id = answer["id"].as_str().unwrap();
    let body = serde_json::to_vec(&json!({"test_id": id, "signal": "paid", "value": 1})).unwrap();
    assert_eq!(shop.post_raw("/api/signals", None, &forwarded(&answer), body).await.0, 401);
    let otlp =
        shop.client.post(format!("{}/v1/traces", shop.base)).header("content-type", "application/json").body("{}");
    assert_eq!(otlp.send().await.unwrap().status().as_u16(), 401, "OTLP publishes signals too");
    assert_eq!((shop.executions(), shop.signals()), (1, 0), "nothing published without the token");
    assert_eq!(shop.get("/api/status", None).await, 401);
    assert_eq!(shop.get("/metrics", Some("bad")).await, 401);
    assert_eq!(shop.get("/api/status", Some("r-token")).await, 200);
    assert_eq!(shop.get("/api/cases/checkout", Some("w-token")).await, 200, "the write token reads too");
    assert_eq!(shop.get("/healthz", None).await, 200, "health stays open");
    assert_eq!(shop.get("/", None).await, 200);
    let document: Value =
        shop.client.get(format!("{}/api/openapi.json", shop.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    assert!(
        document["paths"]["/api/tests"]["post"].is_object() && document["paths"]["/api/signals"]["post"].is_object()
    );
    shop.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_signing_a_signal_needs_the_token_or_its_test_s_signed_headers() {
    let shop = shop(|b| b.signing_secret("s3cret").web_write_token("w-token")).await;
    let (status, answer) =
        shop.post("/api/tests", Some("w-token"), &json!({"case": "checkout", "args": {"amount": 5}})).await;
    assert_eq!(status, 201, "{answer}");
    let id = answer["id"].as_str().unwrap().to_owned();
    let headers = forwarded(&answer);
    assert!(headers.iter().any(|(name, _)| name == "LiveCheck-Test-Signature"), "signed: {answer}");
    let paid = serde_json::to_vec(&json!({"test_id": id, "signal": "paid", "value": 5})).unwrap();
    // Forged: the signature of another test, or none.
    let forged: Vec<_> = headers
        .iter()
        .map(
            |(n, v)| if n == "LiveCheck-Test-Signature" { (n.clone(), "0".repeat(64)) } else { (n.clone(), v.clone()) },
        )
        .filter(|(n, _)| n != "baggage")
        .collect();
    assert_eq!(shop.post_raw("/api/signals", None, &forged, paid.clone()).await.0, 401);
    let unsigned: Vec<_> = forged.iter().filter(|(n, _)| n != "LiveCheck-Test-Signature").cloned().collect();
    assert_eq!(shop.post_raw("/api/signals", None, &unsigned, paid.clone()).await.0, 401);
    assert_eq!(shop.signals(), 0);
    // The headers as answered: accepted, as the test's.
    let (status, answer) = shop.post_raw("/api/signals", None, &headers, paid).await;
    assert_eq!(status, 202, "{answer}");
    // They name one test: not a key to signal any other.
    let other = serde_json::to_vec(&json!({"test_id": "another", "signal": "paid", "value": 5})).unwrap();
    let (status, answer) = shop.post_raw("/api/signals", None, &headers, other).await;
    assert_eq!((status, answer["field"].as_str()), (400, Some("test_id")), "{answer}");
    let shipped = serde_json::to_vec(&json!({"test_id": id, "signal": "shipped"})).unwrap();
    assert_eq!(shop.post_raw("/api/signals", Some("w-token"), &[], shipped).await.0, 202);
    assert_eq!(shop.verdict(&id).await, State::Pass);
    shop.running.shutdown().await.unwrap();

    // Signing on and no write token: nobody starts tests through the API.
    let shop = shop_signing_only().await;
    let (status, answer) = shop.post("/api/tests", None, &json!({"case": "checkout", "args": {"amount": 1}})).await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(shop.post("/api/signals", None, &json!({"test_id": "x", "signal": "paid"})).await.0, 401);
    assert_eq!(shop.executions(), 0);
    shop.running.shutdown().await.unwrap();
}

async fn shop_signing_only() -> Shop {
    shop(|b| b.signing_secret("s3cret")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_are_4xx_json_errors_naming_the_field_and_publish_nothing() {
    let shop = shop(|b| b.max_message_bytes(4096)).await;
    let cases: Vec<(&str, Value, u16, Option<&str>)> = vec![
        ("/api/tests", json!({}), 400, Some("case")),
        ("/api/tests", json!({"case": 3}), 400, Some("case")),
        ("/api/tests", json!({"case": ""}), 400, Some("case")),
        ("/api/tests", json!({"case": "nope"}), 404, Some("case")),
        ("/api/tests", json!({"case": "checkout", "args": "x"}), 400, Some("args")),
        ("/api/tests", json!({"case": "checkout", "id": "a\nb"}), 400, Some("id")),
        ("/api/tests", json!({"case": "checkout", "id": "x".repeat(300)}), 400, Some("id")),
        ("/api/tests", json!({"case": "checkout", "expires_after": -1}), 400, Some("expires_after")),
        ("/api/tests", json!({"case": "checkout", "cas": 1}), 400, None),
        ("/api/tests", json!([1]), 400, None),
        ("/api/signals", json!({"signal": "paid"}), 400, Some("test_id")),
        ("/api/signals", json!({"test_id": "t"}), 400, Some("signal")),
        ("/api/signals", json!({"test_id": "t", "signal": "refunded"}), 400, Some("signal")),
        ("/api/signals", json!({"test_id": "t", "signal": "paid", "case": "nope"}), 400, Some("case")),
        ("/api/signals", json!({"test_id": "t", "signal": "paid", "value": "x".repeat(5000)}), 413, None),
    ];
    for (path, body, status, field) in cases {
        let (got, answer) = shop.post(path, None, &body).await;
        assert_eq!(got, status, "{path} {body}: {answer}");
        assert!(answer["error"].is_string(), "{answer}");
        assert_eq!(answer["field"].as_str(), field, "{path} {body}: {answer}");
    }
    let (status, answer) = shop.post_raw("/api/tests", None, &[], b"{not json".to_vec()).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!((shop.executions(), shop.signals()), (0, 0), "no test, no signal");
    shop.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_rate_limit_requests_are_429_until_the_bucket_refills() {
    let shop = shop(|b| b.web_api_rate_limit(5)).await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(shop.post("/api/signals", None, &json!({"test_id": "t", "signal": "shipped"})).await.0);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 202).count(), 5, "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    assert_eq!(shop.signals(), 5);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(shop.post("/api/signals", None, &json!({"test_id": "t", "signal": "shipped"})).await.0, 202);
    shop.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_never_make_a_5xx_nor_an_unanswered_test() {
    let shop = shop(|b| b).await;
    let mut rng = support::hostile::seeded();
    let valid: [(&str, Vec<u8>); 2] = [
        ("/api/tests", serde_json::to_vec(&json!({"case": "checkout", "args": {"amount": 3}, "id": "t-1"})).unwrap()),
        ("/api/signals", serde_json::to_vec(&json!({"test_id": "t-1", "signal": "paid", "value": 3})).unwrap()),
    ];
    let (mut started, mut signalled) = (0, 0);
    for round in 0..400 {
        let (path, body) = &valid[round % 2];
        let mutated = support::hostile::mutate(&mut rng, body);
        let (status, answer) = shop.post_raw(path, None, &[], mutated.clone()).await;
        match status {
            201 => started += 1,
            202 => signalled += 1,
            400..=499 => assert!(answer["error"].is_string(), "{answer}"),
            _ => panic!("{path} {:?}: {status} {answer}", String::from_utf8_lossy(&mutated)),
        }
    }
    assert_eq!(shop.executions(), started, "a test only for a 201");
    assert_eq!(shop.signals(), signalled, "a signal only for a 202");
    assert_eq!(shop.get("/healthz", None).await, 200, "still serving");
    shop.running.shutdown().await.unwrap();
}

/// A web server reachable beyond this machine starts only with both tokens: nobody else reads the cases or starts
/// tests. (It binds every interface on a free port; the test talks to it on loopback only.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_loopback_the_web_server_needs_a_write_and_a_read_token() {
    for builder in
        [LiveCheck::builder(), LiveCheck::builder().web_write_token("w"), LiveCheck::builder().web_read_token("r")]
    {
        let app = builder.transport(livecheck::transport::MemoryTransport::new()).web_address("0.0.0.0:0").build();
        let error = app.start().await.err().expect("refused without both tokens").to_string();
        assert!(error.contains("needs a write token and a read token"), "{error}");
    }
    let app = LiveCheck::builder()
        .transport(livecheck::transport::MemoryTransport::new())
        .web_address("0.0.0.0:0")
        .web_write_token("w")
        .web_read_token("r")
        .build();
    let running = app.start().await.expect("both tokens: it starts");
    let port = running.web_address().unwrap().port();
    let answer = reqwest::get(format!("http://127.0.0.1:{port}/api/status")).await.unwrap();
    assert_eq!(answer.status(), 401, "reads need the token");
    running.shutdown().await.unwrap();
}
