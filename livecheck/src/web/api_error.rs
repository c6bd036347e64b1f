//! The API's refusals: a status and a JSON body `{"error": "...", "field": "..."}` naming the field of the request
//! that is wrong, when one is.

use axum::{
    http::{header, StatusCode},
    response::IntoResponse,
    Json,
};

/// A request refused, with why.
#[derive(Debug)]
pub(super) struct ApiError {
    pub(super) status: StatusCode,
    /// The body's field (or header) at fault, when one is.
    pub(super) field: Option<&'static str>,
    pub(super) message: String,
}

impl ApiError {
    /// 400: the field `field` is missing or wrong.
    pub(super) fn field(field: &'static str, message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, field: Some(field), message: message.into() }
    }

    /// `status` with a message, naming no field.
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, field: None, message: message.into() }
    }

    /// 401: a token is needed and the request did not present it.
    pub(super) fn unauthorized() -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "this route needs `Authorization: Bearer TOKEN` with the right token")
    }

    pub(super) fn rate_limited() -> Self {
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "over the API's rate limit; try again shortly")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        let body = match self.field {
            Some(field) => serde_json::json!({ "error": self.message, "field": field }),
            None => serde_json::json!({ "error": self.message }),
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        response
    }
}
