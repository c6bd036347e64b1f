//! Starting a test of a case: what [`super::CaseHandle`] and [`super::CaseSender`] share.

use serde::Serialize;

use super::CaseCore;
use crate::{context::TestContext, Result};

impl CaseCore {
    /// With the case's probability, [`CaseCore::trigger`]; `None` on a miss, publishing nothing.
    pub(crate) async fn maybe_trigger(&self, id: Option<&str>, args: &impl Serialize) -> Result<Option<TestContext>> {
        let hit = (self.publisher.draw)() < self.settings.probability;
        self.traffic.seen(hit, &self.name, &self.publisher);
        if !hit {
            return Ok(None);
        }
        self.trigger(id, args).await.map(Some)
    }

    /// Publishes an execution of the case (issued now, expiring after `test_expires`) keyed by its id — `id`, or a
    /// new UUID — and returns its context. A broker that does not take it within `signal_send_timeout` does not
    /// hold the caller up: the execution stays queued and the context is returned (`tests_unconfirmed`).
    pub(crate) async fn trigger(&self, id: Option<&str>, args: &impl Serialize) -> Result<TestContext> {
        let publisher = &self.publisher;
        let (context, message) =
            publisher.execution_message(&self.name, id, args, self.settings.test_expires, false)?;
        let unconfirmed = &publisher.metrics.tests_unconfirmed;
        publisher.publish_bounded(&publisher.streams.pending, message, unconfirmed, "a test execution").await?;
        Ok(context)
    }
}
