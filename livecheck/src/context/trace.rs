//! The trace a request belongs to (W3C Trace Context): an execution triggered inside a request records its trace
//! id, so that its verdict links to the trace, and spans of that trace can be its signals.

use std::future::Future;

tokio::task_local! {
    static CURRENT_TRACE: Option<Box<str>>;
}

/// Runs `future` as part of the trace `trace_id` (32 hex digits; anything else is no trace): executions it
/// triggers record it. The HTTP layer does this for each request with a `traceparent` header; call it yourself
/// where your OpenTelemetry context knows the trace (`span.span_context().trace_id().to_string()`).
pub async fn in_trace<F: Future>(trace_id: Option<&str>, future: F) -> F::Output {
    let trace = trace_id.and_then(valid_trace_id);
    CURRENT_TRACE.scope(trace, future).await
}

/// The trace the current task is part of (see [`in_trace`]), if any.
pub fn current_trace_id() -> Option<String> {
    CURRENT_TRACE.try_with(|trace| trace.as_deref().map(str::to_owned)).ok().flatten()
}

/// `future` as part of `trace` (already checked).
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) fn trace_scope<F: Future>(
    trace: Option<Box<str>>,
    future: F,
) -> tokio::task::futures::TaskLocalFuture<Option<Box<str>>, F> {
    CURRENT_TRACE.scope(trace, future)
}

/// The trace id of a `traceparent` header (`00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`), lowercase;
/// `None` when the header is not one (an all-zero id, a wrong length, version `ff`).
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) fn trace_id_of_traceparent(value: &[u8]) -> Option<Box<str>> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let mut parts = text.split('-');
    let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex(version, 2) || version.eq_ignore_ascii_case("ff") || !hex(parent, 16) || !hex(flags, 2) {
        return None;
    }
    // Version 00 has exactly four parts; later versions may add some.
    if version == "00" && parts.next().is_some() {
        return None;
    }
    valid_trace_id(trace)
}

/// `trace_id` lowercased, when it is 32 hex digits and not all zeros.
pub(crate) fn valid_trace_id(trace_id: &str) -> Option<Box<str>> {
    let ok =
        trace_id.len() == 32 && trace_id.bytes().all(|b| b.is_ascii_hexdigit()) && trace_id.bytes().any(|b| b != b'0');
    ok.then(|| trace_id.to_ascii_lowercase().into_boxed_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_trace_id_of_a_traceparent_and_nothing_else() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(trace_id_of_traceparent(format!("00-{id}-00f067aa0ba902b7-01").as_bytes()).as_deref(), Some(id));
        assert_eq!(
            trace_id_of_traceparent(b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01").as_deref(),
            Some(id)
        );
        for bad in [
            &b""[..],
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            b"00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01",
            b"\xff\xfe",
        ] {
            assert_eq!(trace_id_of_traceparent(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[tokio::test]
    async fn the_current_trace_is_the_one_of_the_scope() {
        assert_eq!(current_trace_id(), None);
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(in_trace(Some(id), async { current_trace_id() }).await.as_deref(), Some(id));
        assert_eq!(in_trace(Some("not a trace id"), async { current_trace_id() }).await, None);
    }
}
