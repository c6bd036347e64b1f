use std::task::{Context, Poll};

use tokio::task::futures::TaskLocalFuture;
use tower_layer::Layer;
use tower_service::Service;

use crate::{
    context::{HeaderParts, TestContext, HEADER_BAGGAGE},
    LiveCheck,
};

/// A tower layer (works with axum's `Router::layer`) that reads the test context of each request — the LiveCheck
/// headers, else the `livecheck.test.*` members of its `baggage` headers — and makes that test current for the
/// handler, and only for it. Partial or malformed headers mean no test: logged once per
/// cause, counted in [`LiveCheck::metrics`]. So do headers without a valid signature when the app signs test
/// context ([`crate::LiveCheckBuilder::signing_secret`]).
#[derive(Clone)]
pub struct LiveCheckLayer {
    app: LiveCheck,
}

impl LiveCheckLayer {
    /// The layer for `app` (whose metrics count malformed headers).
    pub fn new(app: &LiveCheck) -> Self {
        LiveCheckLayer { app: app.clone() }
    }
}

impl<S> Layer<S> for LiveCheckLayer {
    type Service = LiveCheckService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LiveCheckService { inner, app: self.app.clone() }
    }
}

/// The service [`LiveCheckLayer`] wraps around a handler.
#[derive(Clone)]
pub struct LiveCheckService<S> {
    inner: S,
    app: LiveCheck,
}

impl<S, B> Service<http::Request<B>> for LiveCheckService<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = TaskLocalFuture<Option<Box<str>>, TaskLocalFuture<Option<TestContext>, S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let headers = request.headers();
        let test = self
            .app
            .read_carriers(
                |name| headers.get(name).map(http::HeaderValue::as_bytes),
                headers.get_all(HEADER_BAGGAGE).iter().map(http::HeaderValue::as_bytes),
            )
            .map(HeaderParts::into_context);
        // The request's trace, so that an execution it triggers records it.
        let trace =
            headers.get("traceparent").and_then(|value| crate::context::trace_id_of_traceparent(value.as_bytes()));
        crate::context::trace_scope(trace, crate::context::scope_future(test, self.inner.call(request)))
    }
}
