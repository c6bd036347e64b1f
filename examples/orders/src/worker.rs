//! The stock ordering system: a web server that takes orders, and agents that store, execute and cache them,
//! signalling each stage to LiveCheck.

use std::sync::Arc;

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    routing::{get, post},
    Json, Router,
};
use livecheck::{
    current_test,
    http::{LiveCheckLayer, RequestBuilderExt},
    stream::{Agent, Topic},
    LiveCheck, Signal,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::{
    cache::Cache,
    order::{Order, OrderArgs},
    test_order::OrderSender,
};

/// Ways to break a stage on purpose, to see LiveCheck notice.
#[derive(Clone, Debug, Default)]
pub(crate) struct Breakage {
    /// A signal the worker does not send.
    pub(crate) skip_signal: Option<String>,
    /// Store orders with the opposite side.
    pub(crate) flip_side: bool,
    /// Take this fraction (0 to 1) of the orders this worker starts with the opposite side: exactly
    /// ⌊n·F⌋ of its first n orders, the same ones on every run.
    pub(crate) flip_side_fraction: f64,
    /// Wait this long before sending this signal, wherever this worker handles its stage.
    pub(crate) delay_stage: Option<(String, std::time::Duration)>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Execution {
    id: String,
    order_id: String,
}

struct Worker {
    test_order: OrderSender,
    orders: Topic<Order>,
    executions: Topic<Execution>,
    cache: Cache,
    http: reqwest::Client,
    base_url: String,
    breakage: Breakage,
    /// Orders started here, for `flip_side_fraction`.
    started: std::sync::atomic::AtomicU64,
}

type HttpError = (StatusCode, String);

/// A random (version 4) UUID for orders, users and executions.
fn random_id() -> String {
    uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid().to_string()
}

fn internal(error: impl std::fmt::Display) -> HttpError {
    (StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
}

#[derive(Deserialize)]
struct InitQuery {
    #[serde(default)]
    fake: Option<String>,
}

/// The answer's header naming the test an order was sampled into (absent when it was not).
pub(crate) const HEADER_SAMPLED_TEST: &str = "LiveCheck-Test-Id";

/// `GET /order/init/{side}/`: starts an order (sampled into a test), and creates it through `/order/create/`. The
/// answer is the order; when it was sampled into a test, the `LiveCheck-Test-Id` header names the test.
async fn init_order(
    State(worker): State<Arc<Worker>>,
    Path(side): Path<String>,
    Query(query): Query<InitQuery>,
) -> Result<(axum::http::HeaderMap, Json<Order>), HttpError> {
    if side != "buy" && side != "sell" {
        return Err((StatusCode::BAD_REQUEST, format!("side must be buy or sell, not `{side}`")));
    }
    let order = Order {
        id: random_id(),
        user_id: random_id(),
        side: side.clone(),
        quantity: 1.0,
        price: 3.33,
        fake: query.fake.is_some_and(|f| f == "1" || f == "true"),
    };
    let test = worker.test_order.maybe_trigger_with_id(&order.id, &OrderArgs { side }).await.map_err(internal)?;
    let mut headers = axum::http::HeaderMap::new();
    if let Some(id) = test.as_ref().and_then(|test| axum::http::HeaderValue::from_str(test.id()).ok()) {
        headers.insert(HEADER_SAMPLED_TEST, id);
    }
    let mut order = order;
    if worker.flips_this_one() {
        order.side = if order.side == "buy" { "sell".into() } else { "buy".into() };
    }
    let order = livecheck::scope(test, async {
        let response = worker
            .http
            .post(format!("{}/order/create/", worker.base_url))
            .json(&order)
            .with_current_test()
            .send()
            .await
            .map_err(internal)?;
        if !response.status().is_success() {
            return Err((StatusCode::BAD_GATEWAY, format!("creating the order: HTTP {}", response.status())));
        }
        response.json::<Order>().await.map(Json).map_err(internal)
    })
    .await?;
    Ok((headers, order))
}

/// `POST /order/create/`: stores the order on the `orders` stream.
async fn create_order(State(worker): State<Arc<Worker>>, Json(order): Json<Order>) -> Result<Json<Order>, HttpError> {
    if let Some(problem) = order.problem() {
        return Err((StatusCode::BAD_REQUEST, problem));
    }
    if let Some(test) = current_test() {
        if test.id() != order.id {
            return Err((StatusCode::BAD_REQUEST, format!("test {} is not order {}", test.id(), order.id)));
        }
    }
    worker.orders.send(&order.id, &order).await.map_err(internal)?;
    Ok(Json(order))
}

impl Worker {
    /// Whether the worker sends `signal`: all but the one `--skip-signal` names. A `--delay-stage` of it is waited
    /// for first.
    async fn sends<T: Serialize + DeserializeOwned>(&self, signal: &Signal<T>) -> bool {
        if let Some((_, delay)) = self.breakage.delay_stage.as_ref().filter(|(name, _)| name == signal.name()) {
            tokio::time::sleep(*delay).await;
        }
        self.breakage.skip_signal.as_deref() != Some(signal.name())
    }

    /// Whether the order started now is one of the `flip_side_fraction` taken with the opposite side.
    fn flips_this_one(&self) -> bool {
        let fraction = self.breakage.flip_side_fraction;
        if fraction <= 0.0 {
            return false;
        }
        let n = self.started.fetch_add(1, std::sync::atomic::Ordering::Relaxed) as f64;
        ((n + 1.0) * fraction).floor() > (n * fraction).floor()
    }

    /// The `orders` agent: store, hand over for execution, cache — signalling each stage.
    async fn handle_order(&self, mut order: Order) -> anyhow::Result<()> {
        if self.breakage.flip_side {
            order.side = if order.side == "buy" { "sell".into() } else { "buy".into() };
        }
        if self.sends(&self.test_order.order_sent_to_db).await {
            self.test_order.order_sent_to_db.send(&order).await?;
        }
        let execution = Execution { id: random_id(), order_id: order.id.clone() };
        // Resolves once the log acknowledged the message.
        self.executions.send(&order.id, &execution).await?;
        if self.sends(&self.test_order.order_sent_to_kafka).await {
            self.test_order.order_sent_to_kafka.notify().await?;
        }
        self.cache.add(&order.user_id, &order.id).await?;
        if self.sends(&self.test_order.order_cache_in_redis).await {
            self.test_order.order_cache_in_redis.notify().await?;
        }
        Ok(())
    }

    /// The `order-execution` agent.
    async fn handle_execution(&self, execution: Execution) -> anyhow::Result<()> {
        if self.sends(&self.test_order.order_executed).await {
            self.test_order.order_executed.send(&execution.id).await?;
        }
        Ok(())
    }
}

/// The running worker: its agents and web server.
pub(crate) struct RunningWorker {
    _agents: Vec<Agent>,
    server: tokio::task::JoinHandle<()>,
}

impl RunningWorker {
    pub(crate) async fn stop(self) {
        self.server.abort();
    }
}

/// Starts the worker on `port` with the app's transport.
pub(crate) async fn start(
    app: &LiveCheck,
    test_order: OrderSender,
    port: u16,
    breakage: Breakage,
    cache: Cache,
) -> anyhow::Result<RunningWorker> {
    // The port first: a second worker on it fails before joining the agents' group.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|error| in_use("the worker's web server", port, error))?;
    let worker = Arc::new(Worker {
        test_order,
        orders: Topic::new(app, "orders"),
        executions: Topic::new(app, "order-execution"),
        cache,
        http: reqwest::Client::new(),
        base_url: format!("http://127.0.0.1:{port}"),
        breakage,
        started: Default::default(),
    });
    let orders_agent = {
        let w = worker.clone();
        worker.orders.agent("orders-worker", 8, move |event| {
            let w = w.clone();
            async move { w.handle_order(event.value).await }
        })
    }
    .await?;
    let executions_agent = {
        let w = worker.clone();
        worker.executions.agent("orders-worker", 8, move |event| {
            let w = w.clone();
            async move { w.handle_execution(event.value).await }
        })
    }
    .await?;
    let router = Router::new()
        .route("/order/init/{side}/", get(init_order))
        .route("/order/create/", post(create_order))
        .layer(LiveCheckLayer::new(app))
        .with_state(worker);
    tracing::info!("worker listening on http://127.0.0.1:{port}");
    let server = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(%error, "web server failed");
        }
    });
    Ok(RunningWorker { _agents: vec![orders_agent, executions_agent], server })
}

/// A bind error naming the server and its address ("… 127.0.0.1:6066 is in use").
pub(crate) fn in_use(server: &str, port: u16, error: std::io::Error) -> anyhow::Error {
    match error.kind() {
        std::io::ErrorKind::AddrInUse => anyhow::anyhow!("{server}: 127.0.0.1:{port} is in use"),
        _ => anyhow::anyhow!("{server}: cannot listen on 127.0.0.1:{port}: {error}"),
    }
}
