//! What `#[derive(SignalSet)]` refuses, as doctests that must fail to compile (cheaper than trybuild). Each one is
//! the accepted struct below with one thing wrong; the messages are checked by the unit tests of `signal_set`.
//!
//! Accepted:
//!
//! ```
//! use livecheck::{Signal, SignalSet};
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Order { id: String }
//!
//! #[derive(SignalSet)]
//! struct OrderSignals {
//!     order_sent_to_db: Signal<Order>,
//!     #[signal(name = "order_executed")]
//!     executed: Signal<String>,
//! }
//! ```
//!
//! A field that is not a `Signal<T>` (error E0308 at the field's type):
//!
//! ```compile_fail,E0308
//! use livecheck::{Signal, SignalSet};
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Order { id: String }
//!
//! #[derive(SignalSet)]
//! struct OrderSignals {
//!     order_sent_to_db: Signal<Order>,
//!     executed: String,
//! }
//! ```
//!
//! A signal whose value is not serde (E0277 at the field's type):
//!
//! ```compile_fail,E0277
//! use livecheck::{Signal, SignalSet};
//! struct Order { id: String }
//!
//! #[derive(SignalSet)]
//! struct OrderSignals {
//!     order_sent_to_db: Signal<Order>,
//!     #[signal(name = "order_executed")]
//!     executed: Signal<String>,
//! }
//! ```
//!
//! Two fields with one name:
//!
//! ```compile_fail
//! use livecheck::{Signal, SignalSet};
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Order { id: String }
//!
//! #[derive(SignalSet)]
//! struct OrderSignals {
//!     order_sent_to_db: Signal<Order>,
//!     #[signal(name = "order_sent_to_db")]
//!     executed: Signal<String>,
//! }
//! ```
//!
//! An unknown option, an empty name:
//!
//! ```compile_fail
//! use livecheck::{Signal, SignalSet};
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Order { id: String }
//!
//! #[derive(SignalSet)]
//! struct OrderSignals {
//!     order_sent_to_db: Signal<Order>,
//!     #[signal(rename = "order_executed")]
//!     executed: Signal<String>,
//! }
//! ```
//!
//! ```compile_fail
//! use livecheck::{Signal, SignalSet};
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Order { id: String }
//!
//! #[derive(SignalSet)]
//! struct OrderSignals {
//!     order_sent_to_db: Signal<Order>,
//!     #[signal(name = "")]
//!     executed: Signal<String>,
//! }
//! ```
//!
//! A tuple struct, an enum, a generic struct:
//!
//! ```compile_fail
//! use livecheck::{Signal, SignalSet};
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Order { id: String }
//!
//! #[derive(SignalSet)]
//! struct OrderSignals(Signal<Order>, Signal<String>);
//! ```
//!
//! ```compile_fail
//! use livecheck::{Signal, SignalSet};
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Order { id: String }
//!
//! #[derive(SignalSet)]
//! enum OrderSignals {
//!     SentToDb(Signal<Order>),
//!     Executed(Signal<String>),
//! }
//! ```
//!
//! ```compile_fail
//! use livecheck::{Signal, SignalSet};
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Order { id: String }
//!
//! #[derive(SignalSet)]
//! struct OrderSignals<T> {
//!     order_sent_to_db: Signal<T>,
//!     #[signal(name = "order_executed")]
//!     executed: Signal<String>,
//! }
//! ```
//!
//! The attribute on the struct instead of a field:
//!
//! ```compile_fail
//! use livecheck::{Signal, SignalSet};
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Order { id: String }
//!
//! #[derive(SignalSet)]
//! #[signal(name = "order_executed")]
//! struct OrderSignals {
//!     order_sent_to_db: Signal<Order>,
//!     executed: Signal<String>,
//! }
//! ```
