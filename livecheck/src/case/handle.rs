use std::{ops::Deref, sync::Arc};

use super::{Case, CaseCore, CaseSettings, HealthSnapshot};
use crate::{context::TestContext, Result};

/// A registered case: its signals (through `Deref`), its triggers and its health.
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

    /// With the case's probability, starts a test: publishes the execution and returns its context, to be made
    /// current with [`crate::scope`] for the work the request does. On a miss returns `None` and publishes nothing.
    ///
    /// `id` is the test id (a new UUID when `None`).
    pub async fn maybe_trigger(&self, id: Option<&str>, args: &C::Args) -> Result<Option<TestContext>> {
        let probability = self.core.settings.probability;
        let hit = (self.core.shared.draw)() < probability;
        if !hit {
            return Ok(None);
        }
        self.trigger(id, args).await.map(Some)
    }

    /// Starts a test whatever the probability: publishes the execution (issued now, expiring after
    /// `test_expires`) keyed by its id and returns its context.
    pub async fn trigger(&self, id: Option<&str>, args: &C::Args) -> Result<TestContext> {
        let core = &self.core;
        crate::app::publish_execution(&core.shared, &core.name, id, args, core.settings.test_expires).await
    }
}
