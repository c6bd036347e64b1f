use super::panic_capture::CaughtPanic;
use crate::{
    wire::{OverBudget, State},
    CaseResult, Error,
};

/// How an execution ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    Pass,
    /// Passed, with stages over their latency budget.
    Degraded(Vec<OverBudget>),
    Fail {
        message: String,
        location: Option<String>,
    },
    Error(String),
    /// A signal did not arrive in time: the error's text, and the signal (the stage that is missing).
    Timeout {
        message: String,
        signal: String,
    },
    Skip(String),
}

impl Verdict {
    /// Classifies what the body returned: a panic or a failed check is FAIL, a signal timeout is TIMEOUT, any other
    /// error is ERROR.
    pub(crate) fn of(result: Result<CaseResult, CaughtPanic>) -> Verdict {
        let error = match result {
            Ok(Ok(())) => return Verdict::Pass,
            Err(panic) => return Verdict::Fail { message: panic.message, location: panic.location },
            Ok(Err(error)) => error,
        };
        for cause in error.chain() {
            match cause.downcast_ref::<Error>() {
                Some(Error::SignalTimeout { signal, .. }) => {
                    return Verdict::Timeout { message: format!("{error:#}"), signal: signal.clone() }
                }
                Some(Error::CheckFailed { message, location }) => {
                    return Verdict::Fail { message: message.clone(), location: Some(location.clone()) }
                }
                _ => {}
            }
        }
        Verdict::Error(format!("{error:#}"))
    }

    pub(crate) fn state(&self) -> State {
        match self {
            Verdict::Pass => State::Pass,
            Verdict::Degraded(_) => State::Degraded,
            Verdict::Fail { .. } => State::Fail,
            Verdict::Error(_) => State::Error,
            Verdict::Timeout { .. } => State::Timeout,
            Verdict::Skip(_) => State::Skip,
        }
    }

    /// The report's `error` field.
    pub(crate) fn error(&self) -> Option<String> {
        match self {
            Verdict::Pass | Verdict::Degraded(_) => None,
            Verdict::Fail { message, .. } => Some(message.clone()),
            Verdict::Error(message) | Verdict::Timeout { message, .. } | Verdict::Skip(message) => {
                Some(message.clone())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn classifies_errors_through_their_context() {
        let timeout: anyhow::Error =
            Error::SignalTimeout { signal: "s".into(), timeout: Duration::from_secs(1) }.into();
        assert_eq!(
            Verdict::of(Ok(Err(timeout.context("waiting for the order")))),
            Verdict::Timeout {
                message: "waiting for the order: signal `s` did not arrive within 1s".into(),
                signal: "s".into()
            }
        );
        let check: anyhow::Error = Error::CheckFailed { message: "m".into(), location: "f.rs:1:1".into() }.into();
        assert_eq!(Verdict::of(Ok(Err(check))).state(), State::Fail);
        assert_eq!(Verdict::of(Ok(Err(anyhow::anyhow!("boom")))), Verdict::Error("boom".into()));
        assert_eq!(Verdict::of(Ok(Ok(()))), Verdict::Pass);
    }
}
