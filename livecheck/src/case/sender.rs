//! The senders' side of a case: triggers and signals, without the case.

use std::{marker::PhantomData, ops::Deref, sync::Arc};

use serde::Serialize;

use super::{CaseCore, CaseSettings};
use crate::{context::TestContext, Result};

/// What a service needs of a case: start its tests (with arguments `A`) and send its signals (the [`SignalSet`]
/// `S`, through `Deref`). Made by [`crate::LiveCheck::sender`] from the case's settings alone — the case itself,
/// with the clients and state its checks need, lives in the LiveCheck instance. Cheap to clone.
///
/// ```no_run
/// # use livecheck::{CaseSender, CaseSettings, LiveCheck, Signal, SignalSet};
/// # #[derive(serde::Serialize)] struct OrderArgs { side: String }
/// #[derive(SignalSet)]
/// struct OrderSignals {
///     order_sent_to_db: Signal<String>,
/// }
///
/// async fn create_order(test_order: &CaseSender<OrderArgs, OrderSignals>, id: &str) -> livecheck::Result<()> {
///     let test = test_order.maybe_trigger_with_id(id, &OrderArgs { side: "sell".into() }).await?;
///     livecheck::scope(test, test_order.order_sent_to_db.send(&id.to_owned())).await
/// }
///
/// # #[tokio::main] async fn main() -> livecheck::Result<()> {
/// let livecheck = LiveCheck::builder().build();
/// let test_order = livecheck.sender::<OrderArgs, OrderSignals>(CaseSettings::new("test_order"))?;
/// create_order(&test_order, "order-1").await
/// # }
/// ```
///
/// [`SignalSet`]: crate::SignalSet
pub struct CaseSender<A, S> {
    signals: Arc<S>,
    core: Arc<CaseCore>,
    _args: PhantomData<fn(&A)>,
}

impl<A, S> CaseSender<A, S> {
    pub(crate) fn new(signals: S, core: Arc<CaseCore>) -> Self {
        CaseSender { signals: Arc::new(signals), core, _args: PhantomData }
    }
}

impl<A, S> Clone for CaseSender<A, S> {
    fn clone(&self) -> Self {
        CaseSender { signals: self.signals.clone(), core: self.core.clone(), _args: PhantomData }
    }
}

impl<A, S> Deref for CaseSender<A, S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.signals
    }
}

impl<A: Serialize, S> CaseSender<A, S> {
    /// The case's name.
    pub fn name(&self) -> &str {
        &self.core.name
    }

    /// The case's settings, as given to [`crate::LiveCheck::sender`].
    pub fn settings(&self) -> &CaseSettings {
        &self.core.settings
    }

    /// With the case's probability, starts a test with a new id (a UUID): publishes the execution and returns its
    /// context, to be made current with [`crate::scope`] for the work the request does. On a miss returns `None`
    /// and publishes nothing.
    pub async fn maybe_trigger(&self, args: &A) -> Result<Option<TestContext>> {
        self.core.maybe_trigger(None, args).await
    }

    /// [`CaseSender::maybe_trigger`] with the test id given, e.g. the id of the order the request creates.
    pub async fn maybe_trigger_with_id(&self, id: &str, args: &A) -> Result<Option<TestContext>> {
        self.core.maybe_trigger(Some(id), args).await
    }

    /// Starts a test with a new id (a UUID) whatever the probability: publishes the execution (issued now,
    /// expiring after `test_expires`) keyed by its id and returns its context.
    pub async fn trigger(&self, args: &A) -> Result<TestContext> {
        self.core.trigger(None, args).await
    }

    /// [`CaseSender::trigger`] with the test id given.
    pub async fn trigger_with_id(&self, id: &str, args: &A) -> Result<TestContext> {
        self.core.trigger(Some(id), args).await
    }
}
