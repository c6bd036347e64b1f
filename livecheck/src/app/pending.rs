//! Handling one message of the pending-tests stream.

use tokio_util::sync::CancellationToken;

use super::{consumer::Handled, outcome, LiveCheck};
use crate::{runner, transport::Received, wire::TestExecution};

pub(crate) async fn handle(app: LiveCheck, received: Received, shutdown: CancellationToken) -> Handled {
    let metrics = &app.shared.metrics;
    metrics.tests_received.inc();
    let execution: TestExecution = match serde_json::from_slice(&received.message.value) {
        Ok(execution) => execution,
        Err(error) => {
            metrics.tests_malformed.inc();
            tracing::warn!(%error, partition = received.partition, offset = received.offset, "dropping a pending test that does not decode");
            return Handled::Done;
        }
    };
    // The message is not needed any more: do not keep it alive while the test runs.
    drop(received);
    let Some(case) = app.registry.get(&execution.case_name) else {
        metrics.tests_unknown_case.inc();
        if metrics.first_time(&format!("unknown case {}", execution.case_name)) {
            tracing::warn!(case = %execution.case_name, "dropping tests of an unknown case (logged once per case)");
        }
        return Handled::Done;
    };
    match runner::execute(case.as_ref(), execution, &shutdown).await {
        Some(finished) => {
            // Boxed: its state is only needed once the test is over, not in every waiting test's task.
            Box::pin(outcome::test_finished(&app, case.as_ref(), finished)).await;
            Handled::Done
        }
        None => Handled::Abandoned,
    }
}


