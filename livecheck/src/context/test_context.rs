use std::sync::{Arc, OnceLock};

use chrono::{DateTime, SubsecRound, Utc};

use crate::wire::TestExecution;

/// The identity of a test execution as it travels with a request: id, case name, issue time and expiry.
///
/// When the app that made or read it signs test context (see [`crate::LiveCheckBuilder::signing_secret`]), it
/// also carries its signature, written with the four headers wherever they are written. Two contexts are equal
/// when their identity is, whatever their signatures.
///
/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct TestContext(Arc<ContextInner>);

#[derive(Debug)]
struct ContextInner {
    id: String,
    case_name: String,
    timestamp: DateTime<Utc>,
    expires: DateTime<Utc>,
    /// The header values, rendered once: a test's context is attached to many messages.
    header_values: OnceLock<Box<[String; 4]>>,
    /// The same as the four `livecheck.test.*` baggage members, rendered once.
    baggage_members: OnceLock<Box<str>>,
    /// The signature of the header values, when the app that made or read the context signs test context.
    signature: OnceLock<Box<str>>,
    /// The trace of the request the test was sampled from, when it was triggered inside one.
    trace_id: OnceLock<Box<str>>,
    /// Started by hand rather than sampled from traffic; known where the execution is, not carried by headers.
    by_hand: std::sync::atomic::AtomicBool,
    /// The version of the service that sampled the test, when it said.
    service_version: OnceLock<Box<str>>,
}

impl PartialEq for TestContext {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&self.0, &other.0);
        a.id == b.id && a.case_name == b.case_name && a.timestamp == b.timestamp && a.expires == b.expires
    }
}

impl TestContext {
    /// A context from its parts. Times are truncated to microseconds, the precision of the headers, so that a
    /// context read back from headers equals the one written.
    pub fn new(
        id: impl Into<String>,
        case_name: impl Into<String>,
        timestamp: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Self {
        TestContext(Arc::new(ContextInner {
            id: id.into(),
            case_name: case_name.into(),
            timestamp: timestamp.trunc_subsecs(6),
            expires: expires.trunc_subsecs(6),
            header_values: OnceLock::new(),
            baggage_members: OnceLock::new(),
            signature: OnceLock::new(),
            trace_id: OnceLock::new(),
            by_hand: std::sync::atomic::AtomicBool::new(false),
            service_version: OnceLock::new(),
        }))
    }

    /// The context of an execution.
    pub fn of(execution: &TestExecution) -> Self {
        let context =
            Self::new(execution.id.clone(), execution.case_name.clone(), execution.timestamp, execution.expires);
        context
            .with_trace_id(execution.trace_id.as_deref())
            .by_hand(execution.by_hand)
            .with_service_version(execution.service_version.as_deref())
    }

    /// Whether the test was started by hand (`livecheck trigger`, [`crate::LiveCheck::trigger_by_name`]) rather
    /// than sampled from traffic. Known where the execution is: not carried by the headers.
    pub fn is_by_hand(&self) -> bool {
        self.0.by_hand.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The context marked as started by hand (when `by_hand`).
    pub(crate) fn by_hand(self, by_hand: bool) -> Self {
        if by_hand {
            self.0.by_hand.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        self
    }

    /// The version of the service that sampled the test, when it said (see
    /// [`LiveCheckBuilder::service_version`](crate::LiveCheckBuilder::service_version)). Known where the execution
    /// is: not carried by the headers.
    pub fn service_version(&self) -> Option<&str> {
        self.0.service_version.get().map(|v| &**v)
    }

    /// The context carrying `version` (when it is a version, and it carries none yet).
    pub(crate) fn with_service_version(self, version: Option<&str>) -> Self {
        if let Some(version) = version.and_then(crate::wire::valid_service_version) {
            let _ = self.0.service_version.set(version);
        }
        self
    }

    /// The trace id (32 hex digits) of the request the test was sampled from, when it was triggered inside a
    /// trace (see [`crate::context::in_trace`]). Known where the execution is: not carried by the headers.
    pub fn trace_id(&self) -> Option<&str> {
        self.0.trace_id.get().map(|t| &**t)
    }

    /// The context carrying `trace_id` (when it is a trace id, and it carries none yet).
    pub(crate) fn with_trace_id(self, trace_id: Option<&str>) -> Self {
        if let Some(trace_id) = trace_id.and_then(super::valid_trace_id) {
            let _ = self.0.trace_id.set(trace_id);
        }
        self
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

    /// Values of the id, name, timestamp and expiry headers.
    pub(crate) fn header_values(&self) -> [String; 4] {
        (**self.0.header_values.get_or_init(|| Box::new(self.render_header_values()))).clone()
    }

    /// The id, name, timestamp and expiry as the four `livecheck.test.*` members of a `baggage` header.
    pub(crate) fn baggage_four(&self) -> &str {
        self.0.baggage_members.get_or_init(|| super::baggage::members_of(&self.header_values()).into())
    }

    /// The signature carried, if any.
    pub(crate) fn signature(&self) -> Option<&str> {
        self.0.signature.get().map(|s| &**s)
    }

    /// The context carrying `signature` (when it carries none yet).
    pub(crate) fn with_signature(self, signature: impl Into<Box<str>>) -> Self {
        let _ = self.0.signature.set(signature.into());
        self
    }

    /// Whether the test is expired at `now`; computed on each call.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.0.expires <= now
    }
}
