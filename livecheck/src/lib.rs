//! # LiveCheck
//!
//! End-to-end tests of asynchronous systems, run continuously on live traffic in production or staging.
//!
//! Services sample real requests into **test executions** ([`CaseSender::maybe_trigger`]); the test travels with
//! the request (headers, and the task-local [`current_test`]); each stage sends a [`Signal`]; a LiveCheck instance
//! runs the matching [`Case`] — code that reads like a unit test, waiting for signals with timeouts and asserting
//! contracts — and reports PASS / FAIL / ERROR / TIMEOUT / SKIP, watching each case's health.
//!
//! ## What is where
//!
//! The root holds what a case author uses day to day: [`Case`], [`CaseResult`], [`CaseSettings`], [`Signal`],
//! [`Signals`], [`SignalSet`] (trait and derive), [`TestRun`], [`CaseHandle`], [`CaseSender`], [`LiveCheck`],
//! [`LiveCheckBuilder`], [`Running`], [`TestContext`], [`scope`], [`current_test`], [`State`], [`Clock`],
//! [`Error`], [`Result`], [`ensure!`] and [`anyhow`]. The rest is in modules named by concept:
//!
//! | module | what |
//! |---|---|
//! | [`health`] | a case's health, its status, the suite failures it reports and the alert policies |
//! | [`alert`] | alerts to webhooks and the record of their delivery |
//! | [`observe`] | observers told of every verdict and health change |
//! | [`gate`] | results per service version, and the verdict on a canary against its baseline |
//! | [`context`] | the current test and how it travels: headers, their names, signing secrets |
//! | [`wire`] | the JSON values on the streams: executions, signal events, reports |
//! | [`history`] | the records an instance keeps of recent executions (the JSON API's) |
//! | [`instance`] | an instance's stream names and metrics |
//! | [`transport`] | where the streams live: the transport traits and backends (memory, SQLite, Kafka) |
//! | [`stream`] | topics, agents and tables on the app's transport |
//! | `http` | propagation over HTTP and the fake-request client (feature `http`) |
//! | `web` | the instance's web server: JSON API, dashboard, `/healthz`, `/metrics` (feature `web`) |
//! | `declare` | cases declared in YAML or TOML files, run without writing Rust (feature `declare`) |
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

#![cfg_attr(docsrs, feature(doc_cfg))]

// The derives name this crate `::livecheck`, which then also resolves inside it.
extern crate self as livecheck;

pub mod alert;
mod app;
mod backoff;
mod case;
mod clock;
pub mod context;
#[cfg(feature = "declare")]
#[cfg_attr(docsrs, doc(cfg(feature = "declare")))]
pub mod declare;
mod error;
#[cfg(all(feature = "http", feature = "web"))]
mod export;
pub mod gate;
mod hex;
pub mod history;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
mod metrics;
pub mod observe;
mod publish;
mod runner;
mod shown;
pub mod spans;
pub mod stream;
mod sync;
pub mod transport;
#[cfg(feature = "web")]
#[cfg_attr(docsrs, doc(cfg(feature = "web")))]
pub mod web;
pub mod wire;

pub use app::{LiveCheck, LiveCheckBuilder, Running};
pub use case::{Case, CaseHandle, CaseSender, CaseSettings, Signal, SignalSet, Signals};
pub use clock::Clock;
#[doc(inline)]
pub use context::{current_test, scope, TestContext};
pub use error::{CaseResult, Error, Result};
/// `#[derive(SignalSet)]`: a struct of `Signal<T>` fields whose signals are named after the fields.
pub use livecheck_macros::SignalSet;
pub use runner::TestRun;
#[doc(inline)]
pub use wire::State;

/// How a case is doing: what its health is made of, the suite failures it reports, and the policies that decide
/// them.
///
/// [`CaseHandle::health`] and [`LiveCheck::case_statuses`] return these, observers are told of [`SuiteFailure`]s
/// through [`observe::HealthEvent`], and [`FailureRate`] and [`MinPassRate`] are the optional alert policies set
/// on [`CaseSettings`].
///
/// [`SuiteFailure`]: health::SuiteFailure
/// [`FailureRate`]: health::FailureRate
/// [`MinPassRate`]: health::MinPassRate
pub mod health {
    pub use crate::case::{
        CaseStatus, ClockSkewState, FailureRate, HealthSnapshot, MaxDegradedRate, MinPassRate, PassRate, Percentiles,
        ServiceDownState, StageHealth, StallCause, StallState, StateCounts, SuiteFailure, SuiteFailureKind,
        STAGE_WINDOW,
    };
}

/// What configures and measures a running instance beyond its builder: the names of its streams and its
/// counters.
///
/// [`StreamNames`](instance::StreamNames) goes to [`LiveCheckBuilder::streams`] when several apps share a broker;
/// [`MetricsSnapshot`](instance::MetricsSnapshot) is what [`LiveCheck::metrics`] returns (the web server's
/// `/metrics` shows the same). Neither is needed to write a case, so they live here rather than at the root.
pub mod instance {
    pub use crate::app::{CaseView, InstanceView, LagState, MetricsSnapshot, StreamNames};
}

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
