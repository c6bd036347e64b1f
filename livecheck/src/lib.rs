//! # LiveCheck
//!
//! End-to-end tests of asynchronous systems, run continuously on live traffic in production or staging.
//!
//! Services sample real requests into **test executions** ([`CaseHandle::maybe_trigger`]); the test travels with
//! the request (headers, and the task-local [`current_test`]); each stage sends a [`Signal`]; a LiveCheck instance
//! runs the matching [`Case`] — code that reads like a unit test, waiting for signals with timeouts and asserting
//! contracts — and reports PASS / FAIL / ERROR / TIMEOUT / SKIP, watching each case's health.
//!
//! ## Quick start
//!
//! ```
//! use std::time::Duration;
//! use livecheck::{Case, CaseResult, CaseSettings, LiveCheck, Signal, TestRun};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
//! struct Order { id: String, side: String }
//!
//! #[derive(Serialize, Deserialize)]
//! struct OrderArgs { side: String }
//!
//! struct TestOrder {
//!     order_sent_to_db: Signal<Order>,
//!     order_executed: Signal<String>,
//! }
//!
//! impl Case for TestOrder {
//!     type Args = OrderArgs;
//!     async fn run(&self, test: &TestRun, args: OrderArgs) -> CaseResult {
//!         let order = self.order_sent_to_db.wait(Duration::from_secs(30)).await?;
//!         assert_eq!(order.id, test.id());
//!         assert_eq!(order.side, args.side);
//!         self.order_executed.wait(Duration::from_secs(30)).await?;
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> anyhow::Result<()> {
//! let livecheck = LiveCheck::builder().build();
//! let test_order = livecheck.register(CaseSettings::new("test_order").probability(1.0), |signals| TestOrder {
//!     order_sent_to_db: signals.declare("order_sent_to_db"),
//!     order_executed: signals.declare("order_executed"),
//! })?;
//! let running = livecheck.start().await?;
//!
//! // In the service: sample the request, then signal each stage while the test is current.
//! let test = test_order.maybe_trigger_with_id("order-1", &OrderArgs { side: "sell".into() }).await?;
//! livecheck::scope(test, async {
//!     let order = Order { id: "order-1".into(), side: "sell".into() };
//!     test_order.order_sent_to_db.send(&order).await?;
//!     test_order.order_executed.send(&"execution-1".to_string()).await
//! })
//! .await?;
//! # tokio::time::sleep(Duration::from_millis(50)).await;
//! # assert_eq!(test_order.health().count(livecheck::State::Pass), 1);
//! running.shutdown().await?;
//! # Ok(()) }
//! ```

// The derives name this crate `::livecheck`, which then also resolves inside it.
extern crate self as livecheck;

mod app;
mod backoff;
mod case;
mod clock;
mod context;
mod error;
#[cfg(feature = "http")]
pub mod http;
mod runner;
pub mod stream;
mod sync;
pub mod transport;
mod wire;

pub use app::{LiveCheck, LiveCheckBuilder, MetricsSnapshot, Running, StreamNames};
pub use case::{Case, CaseHandle, CaseSender, CaseSettings, HealthSnapshot, Signal, SignalSet, Signals, SuiteFailure};
pub use clock::Clock;
pub use context::{
    append_current_test, carry_current_test, current_test, scope, HeaderError, Headers, TestContext, HEADER_EXPIRES,
    HEADER_SIGNATURE, HEADER_TEST_ID, HEADER_TEST_NAME, HEADER_TIMESTAMP, SIGNING_SECRET_ENV,
    SIGNING_SECRET_PREVIOUS_ENV,
};
pub use error::{CaseResult, Error, Result};
/// `#[derive(SignalSet)]`: a struct of `Signal<T>` fields whose signals are named after the fields.
pub use livecheck_macros::SignalSet;
pub use runner::TestRun;
pub use wire::{SignalEvent, SignalLatency, State, TestExecution, TestReport};

/// Re-exported so that case code and `?` on any error work without adding `anyhow` yourself.
pub use anyhow;
