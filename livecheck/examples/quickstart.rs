//! The library quick start, in one process: a simulated order service samples its requests into tests and
//! signals each stage; the LiveCheck instance runs the `test_order` case and logs every test and the case's stats.
//!
//! `cargo run -p livecheck --example quickstart -- [SECONDS]` (default 15). One order in five is deliberately
//! broken (its side flips, or its execution never happens) to show FAIL and TIMEOUT reports.

use std::time::Duration;

use livecheck::{Case, CaseResult, CaseSender, CaseSettings, LiveCheck, Signal, SignalSet, TestRun};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Order {
    id: String,
    side: String,
}

#[derive(Serialize, Deserialize)]
struct OrderArgs {
    side: String,
}

/// The stages the service announces, each signal named after its field.
#[derive(SignalSet)]
struct OrderSignals {
    order_sent_to_db: Signal<Order>,
    order_executed: Signal<String>,
}

/// The case: the signals it waits for (and, in a real case, the clients its checks use).
struct TestOrder {
    signals: OrderSignals,
}

impl Case for TestOrder {
    type Args = OrderArgs;

    async fn run(&self, test: &TestRun, args: OrderArgs) -> CaseResult {
        let order = self.signals.order_sent_to_db.wait(Duration::from_secs(2)).await?;
        assert_eq!(order.id, test.id(), "the order is the one under test");
        assert_eq!(order.side, args.side, "the order kept its side");
        let execution = self.signals.order_executed.wait(Duration::from_secs(2)).await?;
        test.log(format!("executed as {execution}"));
        Ok(())
    }
}

/// The service: handles one order request, sampled into a test with the case's probability.
async fn handle_order(test_order: &CaseSender<OrderArgs, OrderSignals>, n: u64) -> livecheck::Result<()> {
    let id = format!("order-{n}");
    let side = if n % 2 == 0 { "buy" } else { "sell" };
    let test = test_order.maybe_trigger_with_id(&id, &OrderArgs { side: side.into() }).await?;
    livecheck::scope(test, async {
        tokio::time::sleep(Duration::from_millis(fastrand::u64(5..50))).await;
        let stored_side = if n % 10 == 3 { "flipped" } else { side };
        test_order.order_sent_to_db.send(&Order { id: id.clone(), side: stored_side.into() }).await?;
        tokio::time::sleep(Duration::from_millis(fastrand::u64(5..50))).await;
        if n % 10 != 7 {
            test_order.order_executed.send(&format!("execution-{n}")).await?;
        }
        Ok(())
    })
    .await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").with_target(false).init();
    let seconds: u64 = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(15);

    let livecheck = LiveCheck::builder().stats_interval(Duration::from_secs(5)).build();
    let settings = CaseSettings::new("test_order").probability(0.5).warn_stalled_after(Duration::from_secs(5));
    // The LiveCheck instance's side: the case, registered and run.
    let case = livecheck.register(settings.clone(), |signals| TestOrder { signals: OrderSignals::declare(signals) })?;
    let running = livecheck.start().await?;
    // The service's side: triggers and signals, without the case.
    let test_order = livecheck.sender::<OrderArgs, OrderSignals>(settings)?;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    let mut n = 0;
    while tokio::time::Instant::now() < deadline {
        n += 1;
        let test_order = test_order.clone();
        tokio::spawn(async move { handle_order(&test_order, n).await });
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    running.shutdown().await?;

    let health = case.health();
    println!(
        "{n} orders, {} tests: {} passed, {} failed, {} timed out; status {}",
        health.counts.total(),
        health.count(livecheck::State::Pass),
        health.count(livecheck::State::Fail),
        health.count(livecheck::State::Timeout),
        health.status
    );
    Ok(())
}
