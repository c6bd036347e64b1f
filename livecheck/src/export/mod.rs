//! Verdicts exported as spans (features `http` and `web`): with
//! [`otlp_endpoint`](crate::LiveCheckBuilder::otlp_endpoint), each finished execution is sent over OTLP/HTTP as a
//! span `livecheck <case>` in the trace of the request it was sampled from (a trace of its own when it has none), so
//! the verdict shows up inside the trace in Jaeger, Tempo or any OTLP backend.

mod verdict_span;
mod verdict_spans;
