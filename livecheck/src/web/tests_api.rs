//! `POST /api/tests`: starts an execution of a case for a service that does not link LiveCheck. Body:
//! `{"case": NAME, "args": {..} | [..] | null, "id": ID?, "expires_after": SECONDS?}`. Answers 201 with the test's
//! id and the headers to forward to the services under test (signed when signing is on), once the execution is
//! on the pending-tests stream (durable).
//!
//! Needs the write token when one is set; with signing on and no write token, refused (403): only a holder of the
//! token or of the secret starts tests.

use std::sync::Arc;

use axum::{
    body::Body,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::{Map, Value};

use super::{
    api_error::ApiError,
    auth::{Access, Presented},
    json_body::JsonBody,
    server::Instance,
};
use crate::error::with_causes;

const FIELDS: &[&str] = &["case", "args", "id", "expires_after"];

pub(super) async fn start_test(State(instance): State<Arc<Instance>>, headers: HeaderMap, body: Body) -> Response {
    match start(&instance, &headers, body).await {
        Ok(answer) => (StatusCode::CREATED, Json(answer)).into_response(),
        Err(error) => {
            instance.app.shared.metrics.api_requests_refused.inc();
            error.into_response()
        }
    }
}

async fn start(instance: &Instance, headers: &HeaderMap, body: Body) -> Result<Value, ApiError> {
    let app = &instance.app;
    match Access::Write.check(&instance.tokens, headers) {
        Presented::Denied => return Err(ApiError::unauthorized()),
        Presented::Allowed if app.shared.signer.is_some() && !instance.tokens.writes_need_token() => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "signing is on: tests are started through the API only with a write token (set one)",
            ));
        }
        Presented::Allowed => {}
    }
    if !instance.publishes.take() {
        return Err(ApiError::rate_limited());
    }
    let mut body = JsonBody::read(body, app.shared.config.max_message_bytes, FIELDS).await?;
    let case_name = body.required_name("case")?;
    let id = body.name("id")?;
    let expires_after = body.seconds("expires_after")?;
    let args = match body.value("args") {
        args @ (Value::Object(_) | Value::Array(_) | Value::Null) => args,
        _ => return Err(ApiError::field("args", "`args` must be an object (named), an array (positional) or null")),
    };
    let Some(case) = app.registry.get(&case_name) else {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            ..ApiError::field("case", format!("this instance runs no case `{case_name}`"))
        });
    };
    let expires_after = expires_after.unwrap_or(case.core().settings.test_expires);
    let args = match args {
        Value::Null => Value::Object(Map::new()),
        args => args,
    };
    let test = app.trigger_by_name(&case_name, id.as_deref(), &args, expires_after).await.map_err(|error| {
        tracing::warn!(error = %with_causes(&error), case = %case_name, "a test started through the API could not be published");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the execution could not be published; try again")
    })?;
    app.shared.metrics.api_tests.inc();
    let forward: Map<String, Value> =
        test.header_pairs().into_iter().map(|(name, value)| (name.to_owned(), Value::String(value))).collect();
    Ok(serde_json::json!({
        "id": test.id(),
        "case": test.case_name(),
        "timestamp": test.timestamp(),
        "expires": test.expires(),
        "headers": forward,
    }))
}
