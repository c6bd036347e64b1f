//! `GET /`: the dashboard, one HTML page with its CSS and script inline, built into the binary.

use axum::response::Html;

/// The page.
const PAGE: &str = include_str!("dashboard.html");

pub(super) async fn dashboard() -> Html<&'static str> {
    Html(PAGE)
}
