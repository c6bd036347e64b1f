//! The crate's error type.

use std::time::Duration;

/// What can go wrong in LiveCheck, from a signal wait that timed out to a transport that went away.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A signal did not arrive in time; the test ends with TIMEOUT.
    #[error("signal `{signal}` did not arrive within {timeout:?}")]
    SignalTimeout {
        /// The signal waited for.
        signal: String,
        /// How long the test waited.
        timeout: Duration,
    },
    /// A signal arrived but its value does not decode into the signal's type; the test ends with ERROR.
    #[error("signal `{signal}` carried a value that does not decode")]
    SignalDecode {
        /// The signal whose value was bad.
        signal: String,
        /// Why decoding failed.
        #[source]
        source: serde_json::Error,
    },
    /// `Signal::wait` was called outside an executing test.
    #[error("signal `{signal}` can only be waited for inside an executing test")]
    NotInTest {
        /// The signal.
        signal: String,
    },
    /// `Signal::wait` was called in a test of another case.
    #[error("signal `{signal}` belongs to case `{signal_case}`, not to the executing case `{test_case}`")]
    WrongCase {
        /// The signal.
        signal: String,
        /// The case the signal was declared on.
        signal_case: String,
        /// The case of the executing test.
        test_case: String,
    },
    /// An explicit check in a test body failed; the test ends with FAIL.
    #[error("{message} (at {location})")]
    CheckFailed {
        /// What was expected.
        message: String,
        /// `file:line:column` of the check.
        location: String,
    },
    /// The service under test could not be reached; a suite failure of the case (see [`Error::service_down`]).
    #[error("service down: {}{reason}", url.as_deref().map(|url| format!("{url}: ")).unwrap_or_default())]
    ServiceDown {
        /// The URL that could not be reached, when known.
        url: Option<String>,
        /// What failed, with the last error ("connection refused (after 10 retries)").
        reason: String,
    },
    /// An HTTP request was answered with a client error (4xx); not retried.
    #[error("{url} answered HTTP {status}")]
    HttpStatus {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The execution's arguments do not decode into the case's argument type: why is the source, JSON's error.
    #[error("test arguments do not decode")]
    Arguments(#[source] serde_json::Error),
    /// A value could not be encoded or decoded as JSON.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// Invalid configuration, e.g. a signal declared twice or a case registered twice.
    #[error("configuration: {0}")]
    Config(String),
    /// Setting something up failed on the error it keeps: a webhook URL that does not parse, an HTTP client or a
    /// thread that could not be made. Not retriable.
    ///
    /// Displayed as `configuration: {context}`; the error is its [`source`](std::error::Error::source).
    #[error("configuration: {context}")]
    Setup {
        /// What was being set up.
        context: String,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The transport failed: a broker went away, the database is busy, a stream is missing, …
    ///
    /// Displayed as `transport: {context}`; the underlying error is its [`source`](std::error::Error::source), as
    /// every wrapping error's is — so a chain printed whole (`{:#}` of an [`anyhow::Error`], an error reporter)
    /// names it once.
    #[error("transport: {context}")]
    Transport {
        /// What was being done.
        context: String,
        /// Whether trying again later can help (a broker or database that is busy or away), or not (a bad
        /// setting, a file that cannot be created).
        retriable: bool,
        /// The underlying error (SQLite's, librdkafka's, the system's), when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The LiveCheck instance is shutting down.
    #[error("shutting down")]
    Shutdown,
    /// Tasks of the instance panicked (a bug, or a panic in a case's hook such as `make_fake_request`); their
    /// messages. Reported by [`crate::Running::shutdown`].
    #[error("{} task(s) of the LiveCheck instance panicked: {}", .0.len(), .0.join("; "))]
    TasksPanicked(Vec<String>),
    /// The instance's web server cannot listen on its address: the port is in use, the address is not one of
    /// this machine's, … (the system's error, its source, says which: the message does not say it again, so that
    /// the error and its cause read as one sentence, `… cannot listen on 127.0.0.1:9999: Address already in use`).
    #[error("LiveCheck web server: cannot listen on {address}")]
    WebServer {
        /// The address asked for (`host:port`).
        address: String,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// A transport error caused by `source`.
    pub(crate) fn transport(
        context: impl Into<String>,
        retriable: bool,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Transport { context: context.into(), retriable, source: Some(source.into()) }
    }

    /// Setting up `context` failed because of `source`.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn setup(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Setup { context: context.into(), source: source.into() }
    }

    /// A transport error with no underlying error.
    #[cfg_attr(not(any(feature = "sqlite", feature = "kafka")), allow(dead_code))]
    pub(crate) fn transport_stopped(context: impl Into<String>) -> Self {
        Error::Transport { context: context.into(), retriable: false, source: None }
    }

    /// The service at `url` (when known) is down, for `reason`: what [`crate::Case::make_fake_request`] returns
    /// when it cannot reach the service.
    pub fn service_down(url: Option<&str>, reason: impl Into<String>) -> Self {
        Error::ServiceDown { url: url.map(str::to_owned), reason: reason.into() }
    }

    /// Whether trying the same again later can succeed (a transport that is busy or away).
    pub fn is_retriable(&self) -> bool {
        matches!(self, Error::Transport { retriable: true, .. })
    }
}

/// `error` and each of its causes, `: `-separated — what a `Display` of the error alone leaves out — for logs and
/// for texts that travel without the error (a report, a service-down reason). A cause whose text is in what came
/// before already (some errors' `Display` repeats their source) is not repeated.
pub(crate) fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `Result` with [`Error`] as its default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a test body, a fake request or a hook returns: any error can be raised with `?`.
///
/// Errors are classified by what they contain: [`Error::SignalTimeout`] → TIMEOUT, [`Error::CheckFailed`] → FAIL,
/// anything else → ERROR. A panic (e.g. a failing `assert!`) is a FAIL.
pub type CaseResult = anyhow::Result<()>;

/// Fails the executing test with FAIL when `cond` is false, recording the message and the source location.
///
/// ```
/// # fn body(count: u32) -> livecheck::CaseResult {
/// livecheck::ensure!(count < 10, "count {count} exceeded the threshold");
/// # Ok(()) }
/// ```
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return ::core::result::Result::Err($crate::Error::CheckFailed {
                message: format!($($msg)+),
                location: format!("{}:{}:{}", file!(), line!(), column!()),
            }.into());
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transport_error_keeps_its_cause_and_says_whether_to_retry() {
        let cause = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let error = Error::transport("publishing to `livecheck`", true, cause);
        assert_eq!(error.to_string(), "transport: publishing to `livecheck`", "the cause is the source's to tell");
        assert_eq!(with_causes(&error), "transport: publishing to `livecheck`: connection refused");
        let source = std::error::Error::source(&error).expect("the cause is kept");
        assert!(source.downcast_ref::<std::io::Error>().is_some());
        assert!(error.is_retriable());
        assert!(!Error::transport_stopped("the writer stopped").is_retriable());
        assert!(!Error::Config("x".into()).is_retriable());
    }

    #[test]
    fn a_transport_error_printed_with_its_causes_names_the_cause_once() {
        let cause = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let error = Error::transport("publishing to `livecheck`", true, cause);
        let chain = format!("{:#}", anyhow::Error::from(error));
        assert_eq!(chain, "transport: publishing to `livecheck`: connection refused");
        assert_eq!(chain.matches("connection refused").count(), 1, "{chain}");

        let wrapped = anyhow::Error::from(Error::transport("the group member stopped", false, cause_of_cause()))
            .context("receiving failed");
        assert_eq!(
            format!("{wrapped:#}"),
            "receiving failed: transport: the group member stopped: transport: the embedded log (sqlite): disk I/O \
             error",
        );
        let no_cause = anyhow::Error::from(Error::transport_stopped("the writer stopped"));
        assert_eq!(format!("{no_cause:#}"), "transport: the writer stopped");
    }

    /// A transport error caused by another one, as a group member's stop cause is.
    fn cause_of_cause() -> Error {
        Error::transport("the embedded log (sqlite)", true, std::io::Error::other("disk I/O error"))
    }
}
