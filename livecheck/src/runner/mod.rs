//! Running one execution: the signal router, the test's own state, panics, verdicts.

mod budget;
mod execute;
mod panic_capture;
mod signal_router;
mod test_run;
mod verdict;

pub(crate) use execute::{start, Finished, Identity, Start, Started};
pub(crate) use signal_router::{Arrival, BusPosition, Routed, SignalRouter};
pub use test_run::TestRun;
pub(crate) use test_run::{describe, executing_test, Step, StepKind};
pub(crate) use verdict::Verdict;
