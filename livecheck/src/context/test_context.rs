use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::wire::TestExecution;

/// The identity of a test execution as it travels with a request: id, case name, issue time and expiry.
///
/// Cheap to clone.
#[derive(Clone, Debug, PartialEq)]
pub struct TestContext(Arc<ContextInner>);

#[derive(Debug, PartialEq)]
struct ContextInner {
    id: String,
    case_name: String,
    timestamp: DateTime<Utc>,
    expires: DateTime<Utc>,
}

impl TestContext {
    /// A context from its parts.
    pub fn new(
        id: impl Into<String>,
        case_name: impl Into<String>,
        timestamp: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Self {
        TestContext(Arc::new(ContextInner { id: id.into(), case_name: case_name.into(), timestamp, expires }))
    }

    /// The context of an execution.
    pub fn of(execution: &TestExecution) -> Self {
        Self::new(execution.id.clone(), execution.case_name.clone(), execution.timestamp, execution.expires)
    }

    /// The test id.
    pub fn id(&self) -> &str {
        &self.0.id
    }

    /// The case's name.
    pub fn case_name(&self) -> &str {
        &self.0.case_name
    }

    /// When the test was issued.
    pub fn timestamp(&self) -> DateTime<Utc> {
        self.0.timestamp
    }

    /// When the test expires.
    pub fn expires(&self) -> DateTime<Utc> {
        self.0.expires
    }

    /// Whether the test is expired at `now`; computed on each call.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.0.expires <= now
    }
}
