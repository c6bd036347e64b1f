//! A small stream-processing API on the app's transport: topics of serde values keyed by strings, agents that
//! consume them with the message's test current, and durable tables backed by a changelog stream.

mod agent;
mod table;
mod table_entries;
mod topic;

pub use agent::{Agent, Event};
pub use table::{Table, DEFAULT_TABLE_MAX_BYTES};
pub use topic::Topic;
