use crate::context::current_test_ref;

/// Adds the current test's headers to an outgoing reqwest request.
///
/// ```no_run
/// use livecheck::http::RequestBuilderExt;
/// # async fn demo(client: reqwest::Client) -> reqwest::Result<()> {
/// client.post("http://localhost:6066/order/create/").with_current_test().send().await?;
/// # Ok(()) }
/// ```
pub trait RequestBuilderExt {
    /// The request with the four LiveCheck headers (and the signature the test carries) when a test is current,
    /// and a `baggage` header with the same in its `livecheck.test.*` members (see
    /// [`TestContext::header_pairs`](crate::TestContext::header_pairs)); unchanged otherwise.
    ///
    /// A `RequestBuilder` cannot be looked into, so the `baggage` header is a separate one, beside any other
    /// `baggage` header set on the request (by you or by an OpenTelemetry middleware): W3C allows several, and
    /// readers merge them. Both are always written, whatever the app's
    /// [`context_carriers`](crate::LiveCheckBuilder::context_carriers).
    #[must_use]
    fn with_current_test(self) -> Self;
}

impl RequestBuilderExt for reqwest::RequestBuilder {
    fn with_current_test(self) -> Self {
        match current_test_ref(|test| test.map(|t| t.header_pairs())) {
            Some(pairs) => pairs.into_iter().fold(self, |builder, (name, value)| builder.header(name, value)),
            None => self,
        }
    }
}
