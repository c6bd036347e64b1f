//! Declarative cases (feature `declare`): a case written as a YAML or TOML file instead of Rust — its settings,
//! its steps (signals in order, or parallel groups, each with a timeout, a latency budget and assertions on its
//! value with JSONPath-style selectors) and its fake request. What `livecheck serve` runs.
//!
//! ```yaml
//! name: orders.test_order
//! settings: { probability: 0.5, warn_stalled_after: 5s, frequency: 500ms }
//! timeout: 30s
//! steps:
//!   - signal: order_sent_to_db
//!     budget: 200ms
//!     assert:
//!       - { select: $.id, equals_test_id: true }
//!       - { select: $.side, equals_arg: side }
//!   - signal: order_sent_to_kafka
//!   - parallel:
//!       - { signal: order_cache_in_redis }
//!       - { signal: order_executed, assert: [{ select: $, regex: "^exec-" }] }
//! fake_request: { method: GET, url: "http://localhost:6066/order/init/sell/?fake=1" }
//! ```
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use livecheck::declare::{parse, Format};
//! let text = "name: ping\nsteps:\n  - signal: pong\n    timeout: 5s\n";
//! let case = parse(text, Format::Yaml, "ping.yaml".as_ref())?;
//! assert_eq!(case.signal_names(), ["pong"]);
//! # Ok(()) }
//! ```
//!
//! [`load`] reads a file or a directory of them; [`CaseFile::register`] registers one on an app. The README's
//! "Case files" section describes every field.

mod assertion;
mod budget;
mod case;
mod definition;
mod duration;
mod error;
mod file;
mod selector;
#[cfg(feature = "web")]
mod serve;
mod template;

pub use assertion::Assertion;
pub use case::DeclaredCase;
pub use definition::CaseDefinition;
pub use error::CaseFileError;
pub use file::{load, parse, read, CaseFile, Format};
pub use selector::Selector;
#[cfg(feature = "web")]
pub use serve::{serve, BuilderFactory, OnStart, ServeConfig, ServeControl, DEFAULT_WATCH_EVERY};
