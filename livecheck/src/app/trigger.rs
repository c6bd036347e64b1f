//! Publishing a test execution on the pending-tests stream: what `CaseHandle::trigger` does, and what a tool that
//! knows a case only by its name (the `livecheck trigger` command) does.

use std::time::Duration;

use serde::Serialize;

use super::{LiveCheck, Shared};
use crate::{
    context::{Headers, TestContext, HEADER_EXECUTION_SIGNATURE},
    transport::Message,
    wire::TestExecution,
    Error, Result,
};

impl LiveCheck {
    /// Starts a test of the case named `case_name`, which this app need not have registered: publishes the
    /// execution (issued now, expiring after `expires_after`) on the pending-tests stream, keyed by its id, with
    /// the test context headers (signed when the app signs test context), exactly as
    /// [`CaseHandle::trigger`](crate::CaseHandle::trigger) does, and returns its context.
    ///
    /// `id` is the test id (a new UUID when `None`). `args` are encoded as the Python side expects: a JSON object
    /// (or struct) becomes the named arguments, an array the positional ones, `null` none. A LiveCheck instance
    /// running a case of that name executes it; an instance that has no such case drops it (and counts it).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> livecheck::Result<()> {
    /// let livecheck = livecheck::LiveCheck::builder().build();
    /// let args = serde_json::json!({"side": "sell"});
    /// let test = livecheck.trigger_by_name("orders.test_order", None, &args, std::time::Duration::from_secs(60)).await?;
    /// assert_eq!(test.case_name(), "orders.test_order");
    /// # Ok(()) }
    /// ```
    pub async fn trigger_by_name<A: Serialize + ?Sized>(
        &self,
        case_name: &str,
        id: Option<&str>,
        args: &A,
        expires_after: Duration,
    ) -> Result<TestContext> {
        if case_name.is_empty() {
            return Err(Error::Config("a test needs a case name".into()));
        }
        let (context, message) = execution_message(&self.shared, case_name, id, args, expires_after)?;
        self.shared.stream_creation.ensure().await?;
        self.shared.transport.publish(&self.shared.streams.pending, message).await?;
        Ok(context)
    }
}

/// An execution of `case_name` issued now: its context (signed when the app signs) and the message that publishes
/// it on the pending-tests stream (with the execution's own signature when the app signs, see
/// [`HEADER_EXECUTION_SIGNATURE`]).
pub(crate) fn execution_message<A: Serialize + ?Sized>(
    shared: &Shared,
    case_name: &str,
    id: Option<&str>,
    args: &A,
    expires_after: Duration,
) -> Result<(TestContext, Message)> {
    let now = shared.clock.now();
    let expires = chrono::Duration::from_std(expires_after)
        .ok()
        .and_then(|ttl| now.checked_add_signed(ttl))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
    let id = id.map_or_else(crate::sync::random_uuid, str::to_owned);
    let execution = TestExecution::new(id, case_name, now, expires, args)?;
    let context = TestContext::of(&execution).signed_by(shared.signer.as_ref());
    let mut headers = Headers::new();
    context.append_to(&mut headers);
    let value = serde_json::to_vec(&execution)?;
    if let Some(signer) = &shared.signer {
        headers.push(HEADER_EXECUTION_SIGNATURE, signer.sign_execution(&value));
    }
    let message = Message { key: Some(execution.id.clone()), value, headers };
    Ok((context, message))
}
