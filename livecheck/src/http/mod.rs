//! HTTP: the test travels in request headers (a tower layer for servers, reqwest for clients), and the client
//! for fake requests retries the way the case's `url_*` settings say.

mod client;
mod fake_request;
mod layer;

pub use client::RequestBuilderExt;
pub use fake_request::FakeRequestClient;
pub use layer::{LiveCheckLayer, LiveCheckService};
