//! What an instance remembers of recent executions: per case, a bounded ring of finished executions, and the
//! records the JSON API shows for them and for the executions running now.

mod record;
mod ring;
mod trace;

pub use record::{ExecutionRecord, SignalRecord, SignalStatus};
pub(crate) use ring::{ExecutionHistory, FinishedExecution};
