//! What an instance remembers of recent executions: per case, a bounded ring of finished executions, and the
//! records the JSON API shows for them and for the executions running now ([`LiveCheck::recent_executions`],
//! [`LiveCheck::execution`]).
//!
//! [`LiveCheck::recent_executions`]: crate::LiveCheck::recent_executions
//! [`LiveCheck::execution`]: crate::LiveCheck::execution

mod record;
mod ring;
// Filled by the web server's observer: without `web`, only its public bucket type is used.
#[cfg_attr(not(feature = "web"), allow(dead_code))]
mod timeline;
mod trace;

pub use record::{ExecutionRecord, SignalRecord, SignalStatus};
pub(crate) use ring::{ExecutionHistory, FinishedExecution};
#[cfg_attr(not(feature = "web"), allow(unused_imports))]
pub(crate) use timeline::{CaseTimeline, BUCKET_SECONDS};
pub use timeline::{StageLatency, TimelineBucket};
pub(crate) use trace::signal_outcomes;
