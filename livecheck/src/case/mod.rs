//! Test cases: what a user writes, its settings, its signals and its health.

mod clock_skew;
mod handle;
mod health;
mod sender;
mod settings;
mod signal;
mod signal_set;
mod status;
mod traffic;
mod trigger;

use std::{
    future::Future,
    sync::{Arc, Mutex, MutexGuard, OnceLock},
};

use serde::{de::DeserializeOwned, Serialize};

pub use clock_skew::ClockSkewState;
pub use handle::CaseHandle;
pub(crate) use health::{CaseHealth, HealthChange};
pub use health::{
    HealthSnapshot, PassRate, Percentiles, ServiceDownState, StageHealth, StallCause, StallState, StateCounts,
    SuiteFailure, SuiteFailureKind, STAGE_WINDOW,
};
pub use sender::CaseSender;
pub use settings::{CaseSettings, FailureRate, MaxDegradedRate, MinPassRate};
pub use signal::{Signal, Signals};
pub use signal_set::SignalSet;
pub use status::CaseStatus;
use traffic::TrafficCounter;
pub(crate) use traffic::TrafficReport;

use crate::{history::ExecutionHistory, publish::Publisher, runner::TestRun, transport::BoxFuture, CaseResult, Result};

/// A test case: code that reads like a unit test, run for every sampled execution.
///
/// ```
/// use std::time::Duration;
/// use livecheck::{Case, CaseResult, Signal, TestRun};
///
/// struct TestOrder {
///     order_sent_to_db: Signal<String>,
///     order_executed: Signal<()>,
/// }
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct OrderArgs { side: String }
///
/// impl Case for TestOrder {
///     type Args = OrderArgs;
///     async fn run(&self, test: &TestRun, args: OrderArgs) -> CaseResult {
///         let side = self.order_sent_to_db.wait(Duration::from_secs(30)).await?;
///         assert_eq!(side, args.side, "the order kept its side");
///         self.order_executed.wait(Duration::from_secs(30)).await?;
///         test.log("order executed");
///         Ok(())
///     }
/// }
/// ```
pub trait Case: Send + Sync + Sized + 'static {
    /// The arguments a test is issued with: a struct travels as named arguments (`test_kwargs`), a tuple or `Vec`
    /// as positional ones (`test_args`).
    type Args: Serialize + DeserializeOwned + Send + 'static;

    /// The test body. Returning `Ok` is a PASS; a panic (a failed `assert!`) or [`crate::ensure!`] is a FAIL; a signal
    /// wait that timed out is a TIMEOUT; any other error is an ERROR.
    fn run(&self, test: &TestRun, args: Self::Args) -> impl Future<Output = CaseResult> + Send;

    /// Generates traffic every `frequency`, on the leader instance only. Return [`crate::Error::ServiceDown`] when the
    /// service cannot be reached: that is a suite failure.
    fn make_fake_request(&self) -> impl Future<Output = CaseResult> + Send {
        async { Ok(()) }
    }

    /// Called when the case fails as a whole: once when a cause ([`crate::health::SuiteFailureKind`]) starts, and
    /// again for the same cause only after `state_transition_delay` (like suite reports and alerts).
    fn on_suite_fail(&self, failure: &SuiteFailure) -> impl Future<Output = ()> + Send {
        let _ = failure;
        async {}
    }

    /// Called when the case recovers from a suite failure.
    fn on_suite_pass(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// What every registered case shares with its signals, its handle and the runner.
pub(crate) struct CaseCore {
    pub(crate) name: Arc<str>,
    pub(crate) settings: CaseSettings,
    /// What it sends signals and executions through.
    pub(crate) publisher: Arc<Publisher>,
    /// Names of the declared signals by index; set once the case is built.
    pub(crate) signal_names: OnceLock<Vec<Arc<str>>>,
    pub(crate) health: Mutex<CaseHealth>,
    /// Its recent finished executions.
    pub(crate) history: Mutex<ExecutionHistory>,
    /// The requests `maybe_trigger` saw in this process since its last traffic report.
    pub(crate) traffic: TrafficCounter,
}

impl CaseCore {
    pub(crate) fn signal_index(&self, name: &str) -> Option<usize> {
        self.signal_names.get()?.iter().position(|n| &**n == name)
    }

    pub(crate) fn signal_count(&self) -> usize {
        self.signal_names.get().map_or(0, Vec::len)
    }

    pub(crate) fn signal_name(&self, index: usize) -> &str {
        self.signal_names.get().and_then(|names| names.get(index)).map_or("?", |n| n)
    }

    pub(crate) fn health(&self) -> MutexGuard<'_, CaseHealth> {
        crate::sync::lock(&self.health)
    }

    pub(crate) fn history(&self) -> MutexGuard<'_, ExecutionHistory> {
        crate::sync::lock(&self.history)
    }
}

/// A case as the app holds it, whatever its type.
pub(crate) trait RegisteredCase: Send + Sync + 'static {
    fn core(&self) -> &Arc<CaseCore>;
    /// The body for `test`, run as that test (executing and current), or an error when the arguments do not
    /// decode.
    fn start(&self, test: Arc<TestRun>) -> Result<BoxFuture<'static, CaseResult>>;
    fn make_fake_request(&self) -> BoxFuture<'static, CaseResult>;
    fn on_suite_fail(&self, failure: SuiteFailure) -> BoxFuture<'static, ()>;
    fn on_suite_pass(&self) -> BoxFuture<'static, ()>;
}

pub(crate) struct Registered<C> {
    pub(crate) case: Arc<C>,
    pub(crate) core: Arc<CaseCore>,
}

impl<C: Case> RegisteredCase for Registered<C> {
    fn core(&self) -> &Arc<CaseCore> {
        &self.core
    }

    fn start(&self, test: Arc<TestRun>) -> Result<BoxFuture<'static, CaseResult>> {
        let args: C::Args = test.args()?;
        let case = self.case.clone();
        let scope = test.clone();
        Ok(Box::pin(scope.scope(async move { case.run(&test, args).await })))
    }

    fn make_fake_request(&self) -> BoxFuture<'static, CaseResult> {
        let case = self.case.clone();
        Box::pin(async move { case.make_fake_request().await })
    }

    fn on_suite_fail(&self, failure: SuiteFailure) -> BoxFuture<'static, ()> {
        let case = self.case.clone();
        Box::pin(async move { case.on_suite_fail(&failure).await })
    }

    fn on_suite_pass(&self) -> BoxFuture<'static, ()> {
        let case = self.case.clone();
        Box::pin(async move { case.on_suite_pass().await })
    }
}
