use std::{ops::Deref, sync::Arc};

use super::{Case, CaseCore, CaseSettings, HealthSnapshot};
use crate::{context::TestContext, Result};

/// A registered case: the case itself (its signals and state, through `Deref`), its triggers and its health.
///
/// What [`crate::LiveCheck::register`] returns. A service that only triggers tests and sends signals can use a
/// [`crate::CaseSender`] instead, without building the case.
pub struct CaseHandle<C> {
    pub(crate) case: Arc<C>,
    pub(crate) core: Arc<CaseCore>,
}

impl<C> Clone for CaseHandle<C> {
    fn clone(&self) -> Self {
        CaseHandle { case: self.case.clone(), core: self.core.clone() }
    }
}

impl<C> Deref for CaseHandle<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.case
    }
}

impl<C: Case> CaseHandle<C> {
    /// The case's name.
    pub fn name(&self) -> &str {
        &self.core.name
    }

    /// The case's settings.
    pub fn settings(&self) -> &CaseSettings {
        &self.core.settings
    }

    /// Counters, status and medians of the case, as seen by this instance.
    pub fn health(&self) -> HealthSnapshot {
        self.core.health().snapshot()
    }

    /// With the case's probability, starts a test with a new id (a UUID): publishes the execution and returns its
    /// context, to be made current with [`crate::scope`] for the work the request does. On a miss returns `None`
    /// and publishes nothing.
    pub async fn maybe_trigger(&self, args: &C::Args) -> Result<Option<TestContext>> {
        self.core.maybe_trigger(None, args).await
    }

    /// [`CaseHandle::maybe_trigger`] with the test id given, e.g. the id of the order the request creates.
    pub async fn maybe_trigger_with_id(&self, id: &str, args: &C::Args) -> Result<Option<TestContext>> {
        self.core.maybe_trigger(Some(id), args).await
    }

    /// Starts a test with a new id (a UUID) whatever the probability: publishes the execution (issued now,
    /// expiring after `test_expires`) keyed by its id and returns its context. A broker that does not take it
    /// within `signal_send_timeout` does not hold the request up: the execution stays queued, the context is
    /// returned (counted in `tests_unconfirmed`).
    pub async fn trigger(&self, args: &C::Args) -> Result<TestContext> {
        self.core.trigger(None, args).await
    }

    /// [`CaseHandle::trigger`] with the test id given.
    pub async fn trigger_with_id(&self, id: &str, args: &C::Args) -> Result<TestContext> {
        self.core.trigger(Some(id), args).await
    }
}
