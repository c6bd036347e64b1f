//! The load: orders placed at a steady rate through the worker's `GET /order/init/sell/`, each one a test execution
//! (the worker samples with probability 1).

use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinSet;

/// How long one order may take before it counts as an HTTP failure.
const ORDER_TIMEOUT: Duration = Duration::from_secs(10);

/// What the load did.
#[derive(Debug, Default)]
pub(super) struct LoadOutcome {
    /// The ids of the orders placed, in the order their responses came.
    pub(super) placed: Vec<String>,
    /// Why each failed order failed (connection error, timeout, HTTP status, a body without an id).
    pub(super) http_failures: Vec<String>,
}

/// Places `orders` orders on the worker at `base_url`, `rate` per second, without waiting for one response
/// before the next order (a slow response does not slow the rate down).
pub(super) async fn place_orders(http: &reqwest::Client, base_url: &str, orders: usize, rate: f64) -> LoadOutcome {
    let url = format!("{base_url}/order/init/sell/");
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let mut in_flight = JoinSet::new();
    for _ in 0..orders {
        ticks.tick().await;
        let (http, url) = (http.clone(), url.clone());
        in_flight.spawn(async move { place_order(&http, &url).await });
    }
    let mut outcome = LoadOutcome::default();
    while let Some(placed) = in_flight.join_next().await {
        match placed {
            Ok(Ok(id)) => outcome.placed.push(id),
            Ok(Err(error)) => outcome.http_failures.push(format!("{error:#}")),
            Err(error) => outcome.http_failures.push(format!("the request's task failed: {error}")),
        }
    }
    outcome
}

/// Places one order; its id.
async fn place_order(http: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    let response = http.get(url).timeout(ORDER_TIMEOUT).send().await.context("GET /order/init/sell/")?;
    let status = response.status();
    let body = response.text().await.context("reading the response")?;
    anyhow::ensure!(status.is_success(), "HTTP {status}: {body}");
    let order: serde_json::Value = serde_json::from_str(&body).with_context(|| format!("not JSON: {body}"))?;
    let id = order["id"].as_str().with_context(|| format!("no order id in {body}"))?;
    Ok(id.to_owned())
}
