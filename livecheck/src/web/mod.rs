//! The instance's web server (feature `web`): a JSON API on its cases and their executions, the dashboard,
//! `/healthz` and Prometheus `/metrics`. Turned on with [`crate::LiveCheckBuilder::web_address`]; it runs while
//! the instance runs, over HTTPS with [`crate::LiveCheckBuilder::web_tls`].
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the dashboard (one HTML page on the API) |
//! | `GET /api/status` | the instance and every case's status, failing cases first |
//! | `GET /api/cases/{name}` | one case's status and its recent executions |
//! | `GET /api/cases/{name}/executions` | its recent executions, newest first |
//! | `GET /api/cases/{name}/timeline` | its outcomes per minute over the last 6 hours (the dashboard's charts) |
//! | `GET /api/executions/{id}` | one execution |
//! | `GET /api/cases/{name}/versions` | its results per service version |
//! | `GET /api/gate?case=…&canary=…&baseline=…` | the verdict on a canary version (Argo Rollouts, `livecheck gate`) |
//! | `POST /api/gate/flagger` | the same for a Flagger webhook: 200 successful, 412 failed, 425 inconclusive |
//! | `GET /healthz` | the instance's own health (200, or 503 when not ok) |
//! | `GET /metrics` | Prometheus / OpenMetrics text |
//! | `POST /v1/traces` | OTLP/HTTP traces (protobuf or JSON, gzip): spans of tests become signals |
//! | `POST /api/tests` | starts an execution of a case (for services that do not link LiveCheck) |
//! | `POST /api/signals` | sends a signal of a test (for services that do not link LiveCheck) |
//! | `GET /api/openapi.json` | the OpenAPI document of the JSON API |
//!
//! Tokens (`auth.rs`): [`crate::LiveCheckBuilder::web_write_token`] guards the routes that publish,
//! [`crate::LiveCheckBuilder::web_read_token`] the API's reads and `/metrics`.
//!
//! Each connection is served within limits: a header-read timeout, an idle timeout for kept-alive
//! connections, and a most number of connections at once, so idle, slow and half-open connections cannot hold the
//! server.

mod api;
mod api_error;
mod auth;
mod companion;
mod connection;
mod dashboard;
mod foldable_histogram;
mod gate;
mod healthz;
mod json_body;
mod metrics;
mod not_found;
mod openapi;
mod otlp;
mod rate_limit;
mod server;
mod signals_api;
mod tests_api;
mod timeline;
mod tls;

use connection::ConnectionLimits;
pub use server::DEFAULT_WEB_ADDRESS;
use server::{Instance, WebServer};
use tls::TlsFiles;
pub use tls::{WEB_TLS_CERT_ENV, WEB_TLS_KEY_ENV};
