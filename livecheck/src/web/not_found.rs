//! The API's "not found": status 404 with a JSON body `{"error": "..."}`.

use axum::{http::StatusCode, response::IntoResponse, Json};

/// A case, execution or route that does not exist.
pub(super) struct NotFound(pub(super) String);

impl IntoResponse for NotFound {
    fn into_response(self) -> axum::response::Response {
        (StatusCode::NOT_FOUND, Json(serde_json::json!({ "error": self.0 }))).into_response()
    }
}

/// Any other path.
pub(super) async fn no_route(uri: axum::http::Uri) -> NotFound {
    NotFound(format!("no route {}", uri.path()))
}
