//! The `test_order` case: the contract every stage of an order must keep.

use std::time::Duration;

use livecheck::{http::FakeRequestClient, Case, CaseHandle, CaseResult, CaseSettings, LiveCheck, Signal, TestRun};

use crate::{
    cache::Cache,
    order::{Order, OrderArgs},
};

pub(crate) const CASE: &str = "orders.test_order";

/// Settings of the tutorial's case that tests (and impatient users) change.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct Tuning {
    /// Seconds to wait for each stage's signal.
    #[arg(long, default_value_t = 30.0)]
    stage_timeout: f64,
    /// Retries of a failing fake request before the service is declared down.
    #[arg(long, default_value_t = 10)]
    url_error_retries: u32,
    /// Chance that an order is tested (the worker draws), from 0 to 1.
    #[arg(long, default_value_t = 0.5, value_parser = probability)]
    probability: f64,
}

/// The signals of the case, as the worker sends them.
pub(crate) const SIGNALS: [&str; 4] =
    ["order_sent_to_db", "order_sent_to_kafka", "order_cache_in_redis", "order_executed"];

fn probability(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("`{text}` is not a probability from 0 to 1")),
    }
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning { stage_timeout: 30.0, url_error_retries: 10, probability: 0.5 }
    }
}

pub(crate) struct TestOrder {
    pub(crate) order_sent_to_db: Signal<Order>,
    pub(crate) order_sent_to_kafka: Signal<()>,
    pub(crate) order_cache_in_redis: Signal<()>,
    pub(crate) order_executed: Signal<String>,
    /// The users' order sets, as the worker keeps them (present in the LiveCheck process only).
    pub(crate) cache: Option<Cache>,
    /// For fake requests (LiveCheck process only).
    pub(crate) fake_requests: Option<(FakeRequestClient, String)>,
    stage_timeout: Duration,
}

impl Case for TestOrder {
    type Args = OrderArgs;

    async fn run(&self, test: &TestRun, args: OrderArgs) -> CaseResult {
        let order = self.order_sent_to_db.wait(self.stage_timeout).await?;
        assert_eq!(order.id, test.id(), "the order is the one under test");
        assert_eq!(order.side, args.side, "the order kept its side");
        self.order_sent_to_kafka.wait(self.stage_timeout).await?;
        self.order_cache_in_redis.wait(self.stage_timeout).await?;
        if let Some(cache) = &self.cache {
            // The embedded cache is followed through its changelog: give it a moment to catch up with the signal.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
            let cached = loop {
                let cached = cache.contains(&order.user_id, &order.id).await?;
                if cached || tokio::time::Instant::now() >= deadline {
                    break cached;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            assert!(cached, "order {} is in the cache of user {}", order.id, order.user_id);
        }
        let execution = self.order_executed.wait(self.stage_timeout).await?;
        test.log(format!("executed as {execution}"));
        Ok(())
    }

    async fn make_fake_request(&self) -> CaseResult {
        if let Some((client, base_url)) = &self.fake_requests {
            client.get(&format!("{base_url}/order/init/sell/?fake=1")).await?;
        }
        Ok(())
    }
}

fn settings(tuning: &Tuning) -> CaseSettings {
    CaseSettings::new(CASE)
        .probability(tuning.probability.clamp(0.0, 1.0))
        .warn_stalled_after(Duration::from_secs(5))
        .frequency(Duration::from_millis(500))
        .url_error_retries(tuning.url_error_retries)
}

/// Registers the case on `app`; the LiveCheck process passes the cache and the worker's URL.
pub(crate) fn register(
    app: &LiveCheck,
    cache: Option<Cache>,
    worker_url: Option<String>,
    tuning: &Tuning,
) -> anyhow::Result<CaseHandle<TestOrder>> {
    let settings = settings(tuning);
    let fake_requests = match worker_url {
        Some(url) => Some((FakeRequestClient::new(&settings)?, url)),
        None => None,
    };
    Ok(app.register(settings, |s| TestOrder {
        order_sent_to_db: s.declare("order_sent_to_db"),
        order_sent_to_kafka: s.declare("order_sent_to_kafka"),
        order_cache_in_redis: s.declare("order_cache_in_redis"),
        order_executed: s.declare("order_executed"),
        cache,
        fake_requests,
        stage_timeout: Duration::from_secs_f64(tuning.stage_timeout.max(0.001)),
    })?)
}
