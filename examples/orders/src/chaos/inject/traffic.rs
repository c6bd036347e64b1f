//! The orders a scenario places, and what the worker answered to each: genuine orders through
//! `GET /order/init/sell/` (each one a test: the worker samples with probability 1), and orders posted straight
//! to `POST /order/create/`, with whatever headers a scenario forges.

use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::task::JoinSet;

/// How long one order may take before it counts as refused.
const ORDER_TIMEOUT: Duration = Duration::from_secs(10);

/// One order placed, and the worker's answer.
#[derive(Clone, Debug)]
pub(super) struct OrderRecord {
    /// The order's id: from the answer for a genuine order (unknown when refused), chosen by the scenario for a
    /// posted one.
    pub(super) id: Option<String>,
    /// Its user's id, known likewise.
    pub(super) user_id: Option<String>,
    /// Placed through `/order/init/`: a test execution of it is expected, with its four signals.
    pub(super) tested: bool,
    /// When the request was sent.
    pub(super) sent_at: Instant,
    /// `None` when answered 200 (the order was taken); otherwise why it was refused (status and body, or the
    /// connection error).
    pub(super) refused: Option<String>,
}

impl OrderRecord {
    /// Whether the worker answered 200.
    pub(super) fn answered_ok(&self) -> bool {
        self.refused.is_none()
    }
}

/// A client of the worker at one base URL.
#[derive(Clone)]
pub(super) struct Traffic {
    http: reqwest::Client,
    base_url: String,
}

impl Traffic {
    /// The worker at `base_url` (`http://127.0.0.1:PORT`).
    pub(super) fn new(base_url: String) -> Self {
        Traffic { http: reqwest::Client::new(), base_url }
    }

    /// Places `count` genuine orders, `rate` per second, without waiting for one answer before the next order.
    pub(super) async fn place(&self, count: usize, rate: f64) -> Vec<OrderRecord> {
        let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.001)));
        let mut in_flight = JoinSet::new();
        for _ in 0..count {
            ticks.tick().await;
            let traffic = self.clone();
            in_flight.spawn(async move { traffic.place_one().await });
        }
        let mut placed = Vec::new();
        while let Some(record) = in_flight.join_next().await {
            if let Ok(record) = record {
                placed.push(record);
            }
        }
        placed.sort_by_key(|record| record.sent_at);
        placed
    }

    /// Places one genuine order.
    async fn place_one(&self) -> OrderRecord {
        let sent_at = Instant::now();
        let url = format!("{}/order/init/sell/", self.base_url);
        match self.ask(self.http.get(&url)).await {
            Ok(order) => OrderRecord {
                id: order["id"].as_str().map(str::to_owned),
                user_id: order["user_id"].as_str().map(str::to_owned),
                tested: true,
                sent_at,
                refused: None,
            },
            Err(error) => {
                OrderRecord { id: None, user_id: None, tested: true, sent_at, refused: Some(format!("{error:#}")) }
            }
        }
    }

    /// Posts `order` (JSON with at least `id` and `user_id`) to `/order/create/` with `headers` added.
    pub(super) async fn post(&self, order: &serde_json::Value, headers: &[(String, String)]) -> OrderRecord {
        let sent_at = Instant::now();
        let mut request = self.http.post(format!("{}/order/create/", self.base_url)).json(order);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let refused = self.ask(request).await.err().map(|error| format!("{error:#}"));
        OrderRecord {
            id: order["id"].as_str().map(str::to_owned),
            user_id: order["user_id"].as_str().map(str::to_owned),
            tested: false,
            sent_at,
            refused,
        }
    }

    /// Sends the request; the answer's JSON when it is a 200.
    async fn ask(&self, request: reqwest::RequestBuilder) -> anyhow::Result<serde_json::Value> {
        let response = request.timeout(ORDER_TIMEOUT).send().await.context("no answer")?;
        let status = response.status();
        let body = response.text().await.context("reading the answer")?;
        anyhow::ensure!(status.is_success(), "HTTP {status}: {}", body.chars().take(300).collect::<String>());
        serde_json::from_str(&body).with_context(|| format!("not JSON: {}", body.chars().take(300).collect::<String>()))
    }
}
