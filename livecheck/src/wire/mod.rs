//! The JSON values on the three LiveCheck streams, compatible with the Python implementation.

mod execution;
mod raw_execution;
pub(crate) mod report;
mod service_version;
mod signal_event;
mod state;
pub(crate) mod timestamp;

pub use execution::TestExecution;
pub(crate) use raw_execution::{ExecutionRef, RawArgs, RawExecution};
pub(crate) use report::ReportWithExecution;
pub use report::{OverBudget, SignalLatency, TestReport};
pub(crate) use service_version::valid_service_version;
pub use service_version::SERVICE_VERSION_ENV;
pub use signal_event::SignalEvent;
pub use state::State;

/// Writes the `"__faust": {"ns": …}` marker the Python side uses to pick the model class.
pub(crate) fn faust_ns<S: serde::Serializer>(ns: &'static str, serializer: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(Some(1))?;
    map.serialize_entry("ns", ns)?;
    map.end()
}
