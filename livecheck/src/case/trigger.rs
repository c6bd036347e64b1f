//! Starting a test of a case: what [`super::CaseHandle`] and [`super::CaseSender`] share.

use serde::Serialize;

use super::CaseCore;
use crate::{
    context::{Headers, TestContext},
    transport::Message,
    wire::TestExecution,
    Result,
};

impl CaseCore {
    /// With the case's probability, [`CaseCore::trigger`]; `None` on a miss, publishing nothing.
    pub(crate) async fn maybe_trigger(&self, id: Option<&str>, args: &impl Serialize) -> Result<Option<TestContext>> {
        let hit = (self.shared.draw)() < self.settings.probability;
        if !hit {
            return Ok(None);
        }
        self.trigger(id, args).await.map(Some)
    }

    /// Publishes an execution of the case (issued now, expiring after `test_expires`) keyed by its id — `id`, or a
    /// new UUID — and returns its context.
    pub(crate) async fn trigger(&self, id: Option<&str>, args: &impl Serialize) -> Result<TestContext> {
        let shared = &self.shared;
        let now = shared.clock.now();
        let expires = chrono::Duration::from_std(self.settings.test_expires)
            .ok()
            .and_then(|ttl| now.checked_add_signed(ttl))
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
        let id = id.map_or_else(crate::sync::random_uuid, str::to_owned);
        let execution = TestExecution::new(id, &*self.name, now, expires, args)?;
        let context = TestContext::of(&execution).signed_by(shared.signer.as_ref());
        let mut headers = Headers::new();
        context.append_to(&mut headers);
        let message = Message { key: Some(execution.id.clone()), value: serde_json::to_vec(&execution)?, headers };
        shared.transport.publish(&shared.streams.pending, message).await?;
        Ok(context)
    }
}
