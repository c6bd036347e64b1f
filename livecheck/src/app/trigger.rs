//! Publishing a test execution on the pending-tests stream: what `CaseHandle::trigger` does, and what a tool that
//! knows a case only by its name (the `livecheck trigger` command) does.

use std::time::Duration;

use serde::Serialize;

use super::LiveCheck;
use crate::{context::TestContext, Error, Result};

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
    /// The execution is marked as started by hand ([`TestExecution::by_hand`](crate::wire::TestExecution)): its
    /// verdict is reported and kept in the history, but stays out of the case's health and alerts unless the
    /// instance was built with
    /// [`count_tests_by_hand(true)`](crate::LiveCheckBuilder::count_tests_by_hand).
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
        let publisher = &self.shared.publisher;
        let (context, message) = publisher.execution_message(case_name, id, args, expires_after, true)?;
        publisher.stream_creation.ensure().await?;
        self.shared.transport.publish(&self.shared.streams.pending, message).await?;
        Ok(context)
    }
}

impl LiveCheck {
    /// Publishes signal `signal` of case `case_name` for test `test_id` on the bus, as a service's
    /// [`Signal::send_with_key`](crate::Signal::send_with_key) does, with `test`'s context on its headers when
    /// given (a context read from a request, signed already when the app signs). Returns once the broker took it
    /// (durable), or a retriable transport error when it did not answer within `signal_send_timeout`. A message
    /// over the instance's size limit is [`Error::Config`].
    #[cfg_attr(not(feature = "web"), allow(dead_code))]
    pub(crate) async fn publish_signal(
        &self,
        case_name: &str,
        signal: &str,
        test_id: &str,
        value: Box<serde_json::value::RawValue>,
        test: Option<&TestContext>,
    ) -> Result<()> {
        let event = crate::wire::SignalEvent::new(signal, case_name, test_id, value);
        let mut headers = crate::context::Headers::new();
        if let Some(test) = test {
            self.shared.publisher.append_context(test, &mut headers);
        }
        let message =
            crate::transport::Message { key: Some(test_id.to_owned()), value: serde_json::to_vec(&event)?, headers };
        let limit = self.shared.config.max_message_bytes;
        if message.byte_len() > limit {
            return Err(Error::Config(format!(
                "the signal is {} bytes, over the limit of {limit}",
                message.byte_len()
            )));
        }
        let publisher = &self.shared.publisher;
        let timeout = publisher.send_timeout();
        let publish = async {
            publisher.stream_creation.ensure().await?;
            self.shared.transport.publish(&self.shared.streams.bus, message).await
        };
        match tokio::time::timeout(timeout, publish).await {
            Ok(published) => published.map(|_| ()),
            Err(_) => Err(Error::Transport {
                context: format!("publishing a signal: no answer within {timeout:?}"),
                retriable: true,
                source: None,
            }),
        }
    }
}
