//! Spans received over OTLP made into signals: a span carrying a test's context that a span selector of the test's
//! case picks goes on the bus as that signal, like a signal a service sends — so the instance that owns the test
//! gets it, whichever instance received the span.

use serde_json::value::to_raw_value;

use super::LiveCheck;
use crate::{
    context::{
        HeaderParts, Headers, HEADER_EXPIRES, HEADER_SIGNATURE, HEADER_TEST_ID, HEADER_TEST_NAME, HEADER_TIMESTAMP,
    },
    spans::otlp::{self, TestSpan},
    transport::Message,
    wire::SignalEvent,
    Error, Result,
};

/// What became of the spans of one export.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct SpansTaken {
    /// Spans in the export.
    pub(crate) received: usize,
    /// Signals published.
    pub(crate) signals: usize,
    /// Spans refused: a test context that is malformed, or unsigned or badly signed when the app signs.
    pub(crate) refused: usize,
}

impl LiveCheck {
    /// Counts an OTLP request refused before its spans were read.
    pub(crate) fn count_refused_otlp_request(&self) {
        self.shared.metrics.otlp_requests_refused.inc();
    }

    /// Makes the spans of an OTLP export that belong to tests into signals (see [`crate::spans`]); the others are
    /// counted and dropped. An error when a signal could not be published (the exporter should send again).
    pub(crate) async fn take_spans(&self, export: otlp::proto::ExportTraceServiceRequest) -> Result<SpansTaken> {
        let metrics = &self.shared.metrics;
        let traces = &self.shared.traces;
        // With signing on, only a signed context makes a span a test's: never a trace id the request chose.
        let match_traces = self.shared.signer.is_none();
        let (received, test_spans) = otlp::test_spans(export, |trace_id| {
            let test = traces.test_of(trace_id).filter(|_| match_traces)?;
            let [id, name, issued, expires] = test.header_values();
            Some([Some(id), Some(name), Some(issued), Some(expires), test.signature().map(str::to_owned)])
        });
        metrics.spans_received.add(received as u64);
        metrics.spans_without_test.add((received - test_spans.len()) as u64);
        let mut taken = SpansTaken { received, ..Default::default() };
        let timeout = self.shared.publisher.send_timeout();
        for test_span in test_spans {
            match self.signals_of(&test_span) {
                Err(()) => taken.refused += 1,
                Ok(messages) => {
                    for message in messages {
                        // A signal the bus would drop as too large is refused here, in the export's answer.
                        if message.byte_len() > self.shared.config.max_message_bytes {
                            metrics.spans_refused.inc();
                            taken.refused += 1;
                            continue;
                        }
                        let bus = &self.shared.streams.bus;
                        match tokio::time::timeout(timeout, self.shared.transport.publish(bus, message)).await {
                            Ok(published) => published?,
                            Err(_) => {
                                let context = format!("publishing a span's signal: no answer within {timeout:?}");
                                return Err(Error::Transport { context, retriable: true, source: None });
                            }
                        };
                        metrics.span_signals.inc();
                        taken.signals += 1;
                    }
                }
            }
        }
        Ok(taken)
    }

    /// The bus messages `span` is, one per selector of its case that picks it; `Err` when its context is refused.
    fn signals_of(&self, test_span: &TestSpan) -> std::result::Result<Vec<Message>, ()> {
        let metrics = &self.shared.metrics;
        let header = |name: &str| -> Option<&[u8]> {
            let index = match name {
                HEADER_TEST_ID => 0,
                HEADER_TEST_NAME => 1,
                HEADER_TIMESTAMP => 2,
                HEADER_EXPIRES => 3,
                HEADER_SIGNATURE => 4,
                _ => return None,
            };
            test_span.context[index].as_deref().map(str::as_bytes)
        };
        let context = match HeaderParts::read(header, std::iter::empty(), self.shared.signer.as_ref()) {
            Ok(Some(parts)) => parts.into_context(),
            // A `livecheck.test.id` attribute that is not text: no context at all.
            Ok(None) => {
                metrics.spans_refused.inc();
                return Err(());
            }
            Err(error) => {
                metrics.spans_refused.inc();
                let cause = error.cause();
                if metrics.first_time(&format!("span refused {cause}")) {
                    tracing::warn!(%error, span = %test_span.span.name, "dropping a span whose test context is refused (logged once per cause; counted in spans_refused)");
                }
                return Err(());
            }
        };
        let Some(case) = self.registry.get(context.case_name()) else {
            metrics.spans_unmatched.inc();
            return Ok(Vec::new());
        };
        let core = case.core();
        let picked: Vec<&str> = core
            .settings
            .span_signals
            .iter()
            .filter(|(_, selector)| selector.matches(&test_span.span))
            .map(|(signal, _)| signal.as_str())
            .collect();
        if picked.is_empty() {
            metrics.spans_unmatched.inc();
            return Ok(Vec::new());
        }
        let Ok(value) = to_raw_value(&test_span.span) else { return Ok(Vec::new()) };
        let mut headers = Headers::new();
        context.append_to(&mut headers);
        Ok(picked
            .into_iter()
            .filter_map(|signal| {
                let event = SignalEvent::new(signal, &*core.name, context.id(), value.clone());
                let value = serde_json::to_vec(&event).ok()?;
                Some(Message { key: Some(context.id().to_owned()), value, headers: headers.clone() })
            })
            .collect())
    }
}
