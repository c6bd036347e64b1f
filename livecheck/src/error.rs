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
    #[error("signal `{signal}` carried a value that does not decode: {reason}")]
    SignalDecode {
        /// The signal whose value was bad.
        signal: String,
        /// Why decoding failed.
        reason: String,
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
    /// The service under test could not be reached; a suite failure of the case.
    #[error("service down: {reason}")]
    ServiceDown {
        /// What failed, with the last error.
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
    /// The execution's arguments do not decode into the case's argument type.
    #[error("test arguments do not decode: {0}")]
    Arguments(String),
    /// A value could not be encoded or decoded as JSON.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// Invalid configuration, e.g. a signal declared twice or a case registered twice.
    #[error("configuration: {0}")]
    Config(String),
    /// The transport failed (a broker went away, a stream is missing, …).
    #[error("transport: {0}")]
    Transport(String),
    /// The LiveCheck instance is shutting down.
    #[error("shutting down")]
    Shutdown,
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
