//! The current test: which test, if any, the code running now belongs to, and how it travels in headers.

mod baggage;
mod current;
mod headers;
mod signing;
mod test_context;
mod trace;

pub use baggage::{
    Carriers, BAGGAGE_EXPIRES, BAGGAGE_SIGNATURE, BAGGAGE_TEST_ID, BAGGAGE_TEST_NAME, BAGGAGE_TIMESTAMP, HEADER_BAGGAGE,
};
pub(crate) use current::current_test_ref;
#[cfg(feature = "http")]
pub(crate) use current::scope_future;
pub use current::{append_current_test, carry_current_test, current_test, scope};
pub(crate) use headers::HeaderParts;
pub use headers::{HeaderError, Headers, HEADER_EXPIRES, HEADER_TEST_ID, HEADER_TEST_NAME, HEADER_TIMESTAMP};
pub(crate) use signing::Signer;
pub use signing::{HEADER_EXECUTION_SIGNATURE, HEADER_SIGNATURE, SIGNING_SECRET_ENV, SIGNING_SECRET_PREVIOUS_ENV};
pub use test_context::TestContext;
pub use trace::{current_trace_id, in_trace};
#[cfg_attr(not(feature = "http"), allow(unused_imports))]
pub(crate) use trace::{trace_id_of_traceparent, trace_scope, valid_trace_id};
