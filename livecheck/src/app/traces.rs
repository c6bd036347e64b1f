//! The tests executing here that were triggered inside a trace, by trace id: a span of such a trace that carries
//! no test context (its service has no baggage span processor) still belongs to the test — when exactly one test
//! runs in that trace, and never when the app signs test context (a trace id is whatever the request said: it
//! vouches for nothing).

use std::{collections::HashMap, sync::Mutex};

use crate::context::TestContext;

/// Executing tests by the trace they were sampled from.
#[derive(Default)]
pub(crate) struct TestsByTrace {
    tests: Mutex<HashMap<Box<str>, Vec<TestContext>>>,
    /// Whether any is there, read without the lock by the span intake's hot path.
    any: std::sync::atomic::AtomicBool,
}

impl TestsByTrace {
    /// `context` executes now (nothing when it has no trace id).
    pub(crate) fn started(&self, context: &TestContext) {
        let Some(trace_id) = context.trace_id() else { return };
        let mut tests = crate::sync::lock(&self.tests);
        tests.entry(trace_id.into()).or_default().push(context.clone());
        self.any.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// `context` no longer executes.
    pub(crate) fn ended(&self, context: &TestContext) {
        let Some(trace_id) = context.trace_id() else { return };
        let mut tests = crate::sync::lock(&self.tests);
        if let Some(running) = tests.get_mut(trace_id) {
            running.retain(|test| test != context);
            if running.is_empty() {
                tests.remove(trace_id);
            }
        }
        self.any.store(!tests.is_empty(), std::sync::atomic::Ordering::Relaxed);
    }

    /// The test executing here that was triggered in the trace whose id is `trace_id`, if it is the only one.
    #[cfg_attr(not(feature = "web"), allow(dead_code))]
    pub(crate) fn test_of(&self, trace_id: &[u8]) -> Option<TestContext> {
        if !self.any.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        let trace_id = crate::hex::encode(trace_id);
        match crate::sync::lock(&self.tests).get(trace_id.as_str()).map(Vec::as_slice) {
            Some([test]) => Some(test.clone()),
            _ => None,
        }
    }
}
