//! `POST /v1/traces`: the OTLP/HTTP trace receiver (protobuf or JSON, gzip or not). The spans of tests become
//! signals (see [`crate::spans`]); the others are counted and dropped. Answers as OTLP asks: 200 with an export
//! response (its partial success counting the spans refused), 400 for a body that does not decode, 413 past the
//! size limit, 415 for another content type, 503 when a signal could not be published (the exporter retries).

use std::{sync::Arc, time::Duration};

use axum::{
    body::Body,
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use prost::Message as _;

use super::server::Instance;
use crate::{
    error::with_causes,
    spans::otlp::{self, proto, Encoding},
};

/// How long a request's body may take to arrive once its headers did (the connection's header-read timeout does
/// not cover the body).
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn traces(State(instance): State<Arc<Instance>>, headers: HeaderMap, body: Body) -> Response {
    let app = &instance.app;
    if super::auth::Access::Write.check(&instance.tokens, &headers) == super::auth::Presented::Denied {
        app.count_refused_otlp_request();
        return super::api_error::ApiError::unauthorized().into_response();
    }
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let refused = |status: StatusCode, error: &(dyn std::error::Error + 'static)| {
        app.count_refused_otlp_request();
        tracing::debug!(error = %with_causes(error), "refusing an OTLP export");
        (status, with_causes(error)).into_response()
    };
    let encoding = match Encoding::of_content_type(text(header::CONTENT_TYPE).unwrap_or_default()) {
        Ok(encoding) => encoding,
        Err(error) => return refused(StatusCode::UNSUPPORTED_MEDIA_TYPE, &error),
    };
    let body = match tokio::time::timeout(BODY_READ_TIMEOUT, axum::body::to_bytes(body, otlp::MAX_BODY_BYTES)).await {
        Ok(Ok(body)) => body,
        Ok(Err(error)) => return refused(StatusCode::PAYLOAD_TOO_LARGE, &error),
        Err(elapsed) => return refused(StatusCode::REQUEST_TIMEOUT, &elapsed),
    };
    // Decoding is CPU work: off the async threads, one body at a time (which also bounds its memory).
    let Ok(_permit) = instance.otlp_decoding.acquire().await else {
        return (StatusCode::SERVICE_UNAVAILABLE, "the instance is stopping").into_response();
    };
    let content_encoding = text(header::CONTENT_ENCODING).map(str::to_owned);
    let decoded = tokio::task::spawn_blocking(move || otlp::decode(&body, encoding, content_encoding.as_deref())).await;
    let export = match decoded {
        Ok(Ok(export)) => export,
        Ok(Err(error @ (otlp::BodyError::TooLarge | otlp::BodyError::TooManyItems))) => {
            return refused(StatusCode::PAYLOAD_TOO_LARGE, &error)
        }
        Ok(Err(error)) => return refused(StatusCode::BAD_REQUEST, &error),
        Err(join) => return refused(StatusCode::INTERNAL_SERVER_ERROR, &join),
    };
    drop(_permit);
    let taken = match app.take_spans(export).await {
        Ok(taken) => taken,
        Err(error) => {
            tracing::warn!(error = %with_causes(&error), "spans could not be made into signals; the exporter is asked to retry");
            return (StatusCode::SERVICE_UNAVAILABLE, "the instance could not publish the spans' signals")
                .into_response();
        }
    };
    let partial = (taken.refused > 0).then(|| proto::ExportTracePartialSuccess {
        rejected_spans: taken.refused as i64,
        error_message: "spans with a test context that is malformed, or not signed with the instance's secret".into(),
    });
    match encoding {
        Encoding::Protobuf => {
            let answer = proto::ExportTraceServiceResponse { partial_success: partial }.encode_to_vec();
            ([(header::CONTENT_TYPE, "application/x-protobuf")], answer).into_response()
        }
        Encoding::Json => {
            let answer = match partial {
                Some(p) => {
                    serde_json::json!({"partialSuccess": {"rejectedSpans": p.rejected_spans.to_string(), "errorMessage": p.error_message}})
                }
                None => serde_json::json!({}),
            };
            axum::Json(answer).into_response()
        }
    }
}
