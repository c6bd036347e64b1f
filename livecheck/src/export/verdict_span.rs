//! One finished execution as an OTLP span.

use crate::{
    observe::ExecutionFinished,
    spans::otlp::proto::{any_value, AnyValue, KeyValue, Span, Status},
    State,
};

/// The span of a finished execution: in its trace (a new one when it has none), named `livecheck <case>`, from
/// when it started running to its verdict, with its state, runtime, error and test id as attributes; status ERROR
/// for FAIL, ERROR and TIMEOUT.
pub(super) fn verdict_span(execution: &ExecutionFinished<'_>) -> Span {
    let report = execution.report;
    let trace_id =
        execution.trace_id.and_then(|id| crate::hex::decode(id.as_bytes())).unwrap_or_else(|| random_bytes(16));
    let end = execution.finished_at.timestamp_nanos_opt().unwrap_or_default().max(0) as u64;
    let runtime = report.runtime.unwrap_or_default();
    let start = end.saturating_sub((runtime.max(0.0) * 1e9) as u64);
    let mut attributes = vec![
        text("livecheck.case", execution.case),
        text("livecheck.verdict.test_id", execution.test_id),
        text("livecheck.state", report.state.as_str()),
        KeyValue {
            key: "livecheck.runtime_seconds".into(),
            value: Some(value(any_value::Value::DoubleValue(runtime))),
        },
    ];
    if let Some(error) = &report.error {
        attributes.push(text("livecheck.error", error));
    }
    let failed = matches!(report.state, State::Fail | State::Error | State::Timeout);
    let status = Status { message: report.error.clone().unwrap_or_default(), code: if failed { 2 } else { 1 } };
    Span {
        trace_id,
        span_id: random_bytes(8),
        parent_span_id: Vec::new(),
        name: format!("livecheck {}", execution.case),
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes,
        status: Some(status),
    }
}

fn text(key: &str, text: &str) -> KeyValue {
    KeyValue { key: key.to_owned(), value: Some(value(any_value::Value::StringValue(text.to_owned()))) }
}

fn value(value: any_value::Value) -> AnyValue {
    AnyValue { value: Some(value) }
}

fn random_bytes(n: usize) -> Vec<u8> {
    // Never all zeros: an invalid id.
    let mut bytes: Vec<u8> = std::iter::repeat_with(|| fastrand::u8(..)).take(n).collect();
    bytes[0] |= 1;
    bytes
}
