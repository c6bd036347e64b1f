//! Reading a JSON request body of the API: an object of known fields, each checked where it is read so a refusal
//! names the field. Used by every route that takes a body.

use std::time::Duration;

use axum::{body::Body, http::StatusCode};
use serde_json::{Map, Value};

use super::api_error::ApiError;

/// How long a body may take to arrive once its headers did.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest id, case or signal name taken (the same bound as an order id's in the tutorial; ids travel in
/// headers).
pub(super) const MAX_NAME_BYTES: usize = 256;

/// A body's fields, by name.
pub(super) struct JsonBody {
    fields: Map<String, Value>,
}

impl JsonBody {
    /// Reads `body` (at most `limit` bytes, within [`BODY_READ_TIMEOUT`]): a JSON object whose fields are all
    /// among `known`.
    pub(super) async fn read(body: Body, limit: usize, known: &[&'static str]) -> Result<Self, ApiError> {
        let bytes = match tokio::time::timeout(BODY_READ_TIMEOUT, axum::body::to_bytes(body, limit)).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(_)) => {
                return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("the body is over {limit} bytes")))
            }
            Err(_) => return Err(ApiError::new(StatusCode::REQUEST_TIMEOUT, "the body did not arrive in time")),
        };
        let fields = match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(fields)) => fields,
            Ok(_) => return Err(ApiError::new(StatusCode::BAD_REQUEST, "the body is not a JSON object")),
            Err(error) => return Err(ApiError::new(StatusCode::BAD_REQUEST, format!("the body is not JSON: {error}"))),
        };
        if let Some(unknown) = fields.keys().find(|name| !known.contains(&name.as_str())) {
            let shown: String = unknown.chars().take(64).collect();
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("unknown field `{shown}` (known: {})", known.join(", ")),
            ));
        }
        Ok(JsonBody { fields })
    }

    /// The field `name` as a name or id: text of 1 to [`MAX_NAME_BYTES`] bytes without control characters (it
    /// travels in headers); `None` when absent or null.
    pub(super) fn name(&self, name: &'static str) -> Result<Option<String>, ApiError> {
        match self.fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => {
                if text.is_empty() {
                    Err(ApiError::field(name, format!("`{name}` is empty")))
                } else if text.len() > MAX_NAME_BYTES {
                    Err(ApiError::field(name, format!("`{name}` is over {MAX_NAME_BYTES} bytes")))
                } else if text.chars().any(char::is_control) {
                    Err(ApiError::field(name, format!("`{name}` holds control characters")))
                } else {
                    Ok(Some(text.clone()))
                }
            }
            Some(_) => Err(ApiError::field(name, format!("`{name}` must be a string"))),
        }
    }

    /// [`JsonBody::name`] that must be there.
    pub(super) fn required_name(&self, name: &'static str) -> Result<String, ApiError> {
        self.name(name)?.ok_or_else(|| ApiError::field(name, format!("`{name}` is required")))
    }

    /// The field `name` as any JSON value (null when absent).
    pub(super) fn value(&mut self, name: &str) -> Value {
        self.fields.remove(name).unwrap_or(Value::Null)
    }

    /// The field `name` as a number of seconds above 0 and at most a year; `None` when absent or null.
    pub(super) fn seconds(&self, name: &'static str) -> Result<Option<Duration>, ApiError> {
        match self.fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(number)) => match number.as_f64() {
                Some(seconds) if seconds > 0.0 && seconds <= 366.0 * 86_400.0 => {
                    Ok(Some(Duration::from_secs_f64(seconds)))
                }
                _ => Err(ApiError::field(name, format!("`{name}` must be seconds above 0, at most a year"))),
            },
            Some(_) => Err(ApiError::field(name, format!("`{name}` must be a number of seconds"))),
        }
    }
}
