//! # LiveCheck
//!
//! End-to-end tests of asynchronous systems, run continuously on live traffic in production or staging.
//!
//! Services sample real requests into **test executions** ([`CaseSender::maybe_trigger`]); the test travels with
//! the request (headers, and the task-local [`current_test`]); each stage sends a [`Signal`]; a LiveCheck instance
//! runs the matching [`Case`] — code that reads like a unit test, waiting for signals with timeouts and asserting
//! contracts — and reports PASS / FAIL / ERROR / TIMEOUT / SKIP, watching each case's health.
//!
//! ## Quick start
//!
//! ```
//! use std::time::Duration;
//! use livecheck::{Case, CaseResult, CaseSettings, LiveCheck, Signal, SignalSet, TestRun};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
//! struct Order { id: String, side: String }
//!
//! #[derive(Serialize, Deserialize)]
//! struct OrderArgs { side: String }
//!
//! /// What the services announce: each signal is named after its field.
//! #[derive(SignalSet)]
//! struct OrderSignals {
//!     order_sent_to_db: Signal<Order>,
//!     order_executed: Signal<String>,
//! }
//!
//! /// The case: its signals, plus whatever state its checks need.
//! struct TestOrder {
//!     signals: OrderSignals,
//! }
//!
//! impl Case for TestOrder {
//!     type Args = OrderArgs;
//!     async fn run(&self, test: &TestRun, args: OrderArgs) -> CaseResult {
//!         let order = self.signals.order_sent_to_db.wait(Duration::from_secs(30)).await?;
//!         assert_eq!(order.id, test.id());
//!         assert_eq!(order.side, args.side);
//!         self.signals.order_executed.wait(Duration::from_secs(30)).await?;
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> anyhow::Result<()> {
//! // The LiveCheck instance registers the case and runs it.
//! let livecheck = LiveCheck::builder().build();
//! let settings = CaseSettings::new("test_order").probability(1.0);
//! let case = livecheck.register(settings.clone(), |signals| TestOrder { signals: OrderSignals::declare(signals) })?;
//! let running = livecheck.start().await?;
//!
//! // A service (usually another process, with its own app on the same broker) holds only a sender: it samples
//! // the request, then signals each stage while the test is current.
//! let test_order = livecheck.sender::<OrderArgs, OrderSignals>(settings)?;
//! let test = test_order.maybe_trigger_with_id("order-1", &OrderArgs { side: "sell".into() }).await?;
//! livecheck::scope(test, async {
//!     let order = Order { id: "order-1".into(), side: "sell".into() };
//!     test_order.order_sent_to_db.send(&order).await?;
//!     test_order.order_executed.send(&"execution-1".to_string()).await
//! })
//! .await?;
//! # tokio::time::sleep(Duration::from_millis(50)).await;
//! # assert_eq!(case.health().count(livecheck::State::Pass), 1);
//! running.shutdown().await?;
//! # Ok(()) }
//! ```

mod alert;
// The derives name this crate `::livecheck`, which then also resolves inside it.
extern crate self as livecheck;

mod app;
mod backoff;
mod case;
mod clock;
mod context;
mod error;
mod history;
#[cfg(feature = "http")]
pub mod http;
mod metrics;
pub mod observe;
mod publish;
mod runner;
mod shown;
pub mod stream;
mod sync;
pub mod transport;
#[cfg(feature = "web")]
mod web;
mod wire;

pub use alert::{Alert, AlertAttempt, AlertDelivery, AlertEvent};
#[cfg(feature = "http")]
pub use alert::{ALERT_WEBHOOKS_ENV, ALERT_WEBHOOK_SECRET_ENV, HEADER_WEBHOOK_SIGNATURE};
pub use app::{LiveCheck, LiveCheckBuilder, MetricsSnapshot, Running, StreamNames};
pub use case::{
    Case, CaseHandle, CaseSender, CaseSettings, CaseStatus, ClockSkewState, FailureRate, HealthSnapshot, MinPassRate,
    PassRate, ServiceDownState, Signal, SignalSet, Signals, StallState, StateCounts, SuiteFailure, SuiteFailureKind,
};
pub use clock::Clock;
pub use context::{
    append_current_test, carry_current_test, current_test, scope, HeaderError, Headers, TestContext,
    HEADER_EXECUTION_SIGNATURE, HEADER_EXPIRES, HEADER_SIGNATURE, HEADER_TEST_ID, HEADER_TEST_NAME, HEADER_TIMESTAMP,
    SIGNING_SECRET_ENV, SIGNING_SECRET_PREVIOUS_ENV,
};
pub use error::{CaseResult, Error, Result};
pub use history::{ExecutionRecord, SignalRecord, SignalStatus};
/// `#[derive(SignalSet)]`: a struct of `Signal<T>` fields whose signals are named after the fields.
pub use livecheck_macros::SignalSet;
pub use runner::TestRun;
#[cfg(feature = "web")]
pub use web::DEFAULT_WEB_ADDRESS;
pub use wire::{SignalEvent, SignalLatency, State, TestExecution, TestReport};

/// Re-exported so that case code and `?` on any error work without adding `anyhow` yourself.
pub use anyhow;

// The README's Rust blocks, compiled (and run, unless `no_run`) as doctests: its snippets are programs that build
// as they stand. Every `rust` block and every indented block is one: fence shell
// commands as `sh`, other text as `text`.
// The web server's snippet needs `web`: the README is compiled with `http` and `web` on, as `cargo test --workspace`
// does (the tutorial turns `web` on).
#[cfg(all(doctest, feature = "http", feature = "web"))]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
