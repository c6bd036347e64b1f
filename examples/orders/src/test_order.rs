//! The `test_order` case: the contract every stage of an order must keep.

use std::time::Duration;

use livecheck::{
    http::FakeRequestClient, Case, CaseHandle, CaseResult, CaseSender, CaseSettings, LiveCheck, Signal, SignalSet,
    TestRun,
};

use crate::{
    cache::Cache,
    order::{Order, OrderArgs},
};

pub(crate) const CASE: &str = "orders.test_order";

/// The worker's setting of the tutorial's case: it draws which orders are tested.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct WorkerTuning {
    /// Chance that an order is tested, from 0 to 1.
    #[arg(long, default_value_t = 0.5, value_parser = probability)]
    probability: f64,
}

/// The LiveCheck instance's settings of the tutorial's case: it waits for the stages and makes the fake requests.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct InstanceTuning {
    /// Seconds to wait for each stage's signal (more than 0, at most a day).
    #[arg(long, default_value_t = 30.0, value_parser = stage_timeout)]
    stage_timeout: f64,
    /// Retries of a failing fake request before the service is declared down.
    #[arg(long, default_value_t = 10)]
    url_error_retries: u32,
}

/// Seconds from 0 (excluded) to a day: a stage timeout (an infinite or huge one is an error, not a panic).
fn stage_timeout(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds <= 86_400.0 => Ok(seconds),
        _ => Err(format!("`{text}` is not a number of seconds above 0, at most 86400")),
    }
}

pub(crate) fn probability(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("`{text}` is not a probability from 0 to 1")),
    }
}

impl Default for WorkerTuning {
    fn default() -> Self {
        WorkerTuning { probability: 0.5 }
    }
}

impl Default for InstanceTuning {
    fn default() -> Self {
        InstanceTuning { stage_timeout: 30.0, url_error_retries: 10 }
    }
}

/// The stages of an order: what the worker announces and the case waits for, each named after its field.
#[derive(SignalSet)]
pub(crate) struct OrderSignals {
    pub(crate) order_sent_to_db: Signal<Order>,
    pub(crate) order_sent_to_kafka: Signal<()>,
    pub(crate) order_cache_in_redis: Signal<()>,
    pub(crate) order_executed: Signal<String>,
}

/// What the worker holds of the case: it triggers tests and sends the signals.
pub(crate) type OrderSender = CaseSender<OrderArgs, OrderSignals>;

/// The case, in the LiveCheck process: the signals it waits for and the clients its checks use.
pub(crate) struct TestOrder {
    signals: OrderSignals,
    /// The users' order sets, as the worker keeps them.
    cache: Cache,
    /// Fake requests, retried as the case's settings say.
    http: FakeRequestClient,
    /// Where the worker is.
    base_url: String,
    stage_timeout: Duration,
}

impl Case for TestOrder {
    type Args = OrderArgs;

    async fn run(&self, test: &TestRun, args: OrderArgs) -> CaseResult {
        let signals = &self.signals;
        let order = signals.order_sent_to_db.wait(self.stage_timeout).await?;
        assert_eq!(order.id, test.id(), "the order is the one under test");
        assert_eq!(order.side, args.side, "the order kept its side");
        signals.order_sent_to_kafka.wait(self.stage_timeout).await?;
        signals.order_cache_in_redis.wait(self.stage_timeout).await?;
        // The embedded cache is followed through its changelog: give it a moment to catch up with the signal.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        let cached = loop {
            let cached = self.cache.contains(&order.user_id, &order.id).await?;
            if cached || tokio::time::Instant::now() >= deadline {
                break cached;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        assert!(cached, "order {} is in the cache of user {}", order.id, order.user_id);
        let execution = signals.order_executed.wait(self.stage_timeout).await?;
        test.log(format!("executed as {execution}"));
        Ok(())
    }

    async fn make_fake_request(&self) -> CaseResult {
        self.http.get(&format!("{}/order/init/sell/?fake=1", self.base_url)).await?;
        Ok(())
    }
}

/// The case's settings; the worker's part of them is used by the worker only, the instance's by the instance.
fn settings() -> CaseSettings {
    CaseSettings::new(CASE).warn_stalled_after(Duration::from_secs(5)).frequency(Duration::from_millis(500))
}

/// The worker's side of the case: triggers and signals, drawn with the worker's probability.
pub(crate) fn sender(app: &LiveCheck, tuning: &WorkerTuning) -> anyhow::Result<OrderSender> {
    Ok(app.sender(settings().probability(tuning.probability.clamp(0.0, 1.0)))?)
}

/// Registers the case on the LiveCheck process's `app`: it checks the orders in `cache` and makes fake requests to
/// the worker at `base_url`.
pub(crate) fn register(
    app: &LiveCheck,
    cache: Cache,
    base_url: String,
    tuning: &InstanceTuning,
) -> anyhow::Result<CaseHandle<TestOrder>> {
    let settings = settings().url_error_retries(tuning.url_error_retries);
    let http = FakeRequestClient::new(&settings)?;
    let stage_timeout = Duration::from_secs_f64(tuning.stage_timeout.max(0.001));
    Ok(app.register(settings, |signals| TestOrder {
        signals: OrderSignals::declare(signals),
        cache,
        http,
        base_url,
        stage_timeout,
    })?)
}
