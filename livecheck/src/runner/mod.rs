//! Running one execution: the signal router, the test's own state, panics, verdicts.

mod execute;
mod panic_capture;
mod signal_router;
mod test_run;
mod verdict;

pub(crate) use execute::{start, Finished, Started};
pub(crate) use signal_router::{BusPosition, Routed, SignalRouter};
pub(crate) use test_run::executing_test;
pub use test_run::TestRun;
pub(crate) use verdict::Verdict;
