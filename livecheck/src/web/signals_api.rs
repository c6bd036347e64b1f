//! `POST /api/signals`: a stage of a test announced by a service that does not link LiveCheck. Body:
//! `{"test_id": ID, "signal": NAME, "value": ANY?, "case": NAME?}`; the case is the body's, else the one the
//! request's `LiveCheck-Test-Name` header names, else this instance's only case. Answers 202 once the signal is on
//! the bus (durable); the instance that runs the test gets it from there.
//!
//! Who may send: anyone when no write token is set and signing is off; else the holder of the write token, or —
//! with signing on — a request carrying the test's signed context headers (as `POST /api/tests` answered them),
//! which name this one test (401 otherwise).

use std::sync::Arc;

use axum::{
    body::Body,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};

use super::{
    api_error::ApiError,
    auth::{Access, Presented},
    json_body::JsonBody,
    server::Instance,
};
use crate::{context::HEADER_TEST_NAME, error::with_causes, Error};

const FIELDS: &[&str] = &["test_id", "signal", "value", "case"];

pub(super) async fn send_signal(State(instance): State<Arc<Instance>>, headers: HeaderMap, body: Body) -> Response {
    match send(&instance, &headers, body).await {
        Ok(()) => (StatusCode::ACCEPTED, Json(serde_json::json!({ "accepted": true }))).into_response(),
        Err(error) => {
            instance.app.shared.metrics.api_requests_refused.inc();
            error.into_response()
        }
    }
}

async fn send(instance: &Instance, headers: &HeaderMap, body: Body) -> Result<(), ApiError> {
    let app = &instance.app;
    let signing = app.shared.signer.is_some();
    let token_set = instance.tokens.writes_need_token();
    let held_token = token_set && Access::Write.check(&instance.tokens, headers) == Presented::Allowed;
    // The test context of the request's headers, checked (its signature too, when signing is on) as any entrance's.
    let lookup = |name: &str| headers.get(name).map(|value| value.as_bytes());
    let has_context =
        headers.contains_key(crate::context::HEADER_TEST_ID) || headers.contains_key(crate::context::HEADER_BAGGAGE);
    let context = if has_context { app.test_from_lookup(lookup) } else { None };
    // With signing on, a signed context stands for the token; without, only the token does (when one is set).
    let signed_context = signing && context.is_some();
    let allowed = match (token_set, signing) {
        (false, false) => true,
        (true, _) => held_token || signed_context,
        (false, true) => signed_context,
    };
    if !allowed {
        return Err(ApiError::unauthorized());
    }
    if !instance.publishes.take() {
        return Err(ApiError::rate_limited());
    }
    let mut body = JsonBody::read(body, app.shared.config.max_message_bytes, FIELDS).await?;
    let test_id = body.required_name("test_id")?;
    let signal = body.required_name("signal")?;
    let named_case = body.name("case")?;
    let value = body.value("value");
    if let Some(context) = &context {
        if context.id() != test_id {
            return Err(ApiError::field("test_id", "`test_id` is not the test of the request's LiveCheck headers"));
        }
        if named_case.as_deref().is_some_and(|case| case != context.case_name()) {
            return Err(ApiError::field("case", "`case` is not the case of the request's LiveCheck headers"));
        }
    }
    let header_case = headers.get(HEADER_TEST_NAME).and_then(|name| name.to_str().ok()).map(str::to_owned);
    let case_name = match named_case.or_else(|| context.as_ref().map(|c| c.case_name().to_owned())).or(header_case) {
        Some(name) => name,
        None => match app.registry.all().as_slice() {
            [only] => only.core().name.to_string(),
            _ => return Err(ApiError::field("case", "`case` is required: this instance runs several cases")),
        },
    };
    let Some(case) = app.registry.get(&case_name) else {
        return Err(ApiError::field("case", format!("this instance runs no case `{case_name}`")));
    };
    if case.core().signal_index(&signal).is_none() {
        return Err(ApiError::field("signal", format!("case `{case_name}` declares no signal `{signal}`")));
    }
    let value = serde_json::value::to_raw_value(&value)
        .map_err(|error| ApiError::field("value", format!("`value` does not encode: {error}")))?;
    match app.publish_signal(&case_name, &signal, &test_id, value, context.as_ref()).await {
        Ok(()) => {
            app.shared.metrics.api_signals.inc();
            Ok(())
        }
        Err(Error::Config(message)) => {
            Err(ApiError { status: StatusCode::PAYLOAD_TOO_LARGE, ..ApiError::field("value", message) })
        }
        Err(error) => {
            tracing::warn!(error = %with_causes(&error), case = %case_name, %signal, "a signal sent through the API could not be published");
            Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the signal could not be published; try again"))
        }
    }
}
