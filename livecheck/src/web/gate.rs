//! The rollout gate's routes: each version's results, and the verdict on a canary for Argo Rollouts (`GET
//! /api/gate`, JSON for its web metric provider), Flagger (`POST /api/gate/flagger`, a webhook: 2xx to advance)
//! and `livecheck gate` (CI). Both entrances read their parameters through [`GateRequest::parse`].

use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde::{Deserialize, Serialize};

use super::{not_found::NotFound, server::Instance};
use crate::gate::{Thresholds, Verdict, VersionResults, Window};

/// The gate's routes, on the instance's router.
pub(super) fn routes() -> Router<Arc<Instance>> {
    Router::new()
        .route("/api/cases/{name}/versions", get(versions))
        .route("/api/gate", get(gate))
        .route("/api/gate/flagger", post(flagger).layer(axum::extract::DefaultBodyLimit::max(64 << 10)))
}

/// `GET /api/cases/{name}/versions`.
#[derive(Serialize)]
struct CaseVersions {
    case: String,
    /// Most recently seen first; `other` last when older versions were folded into it.
    versions: Vec<VersionResults>,
}

async fn versions(State(instance): State<Arc<Instance>>, Path(name): Path<String>) -> Result<Response, NotFound> {
    if instance.app.registry.get(&name).is_none() {
        return Err(NotFound(format!("no case named `{name}`")));
    }
    let versions = instance.versions.results(&name).unwrap_or_default();
    Ok(Json(CaseVersions { case: name, versions }).into_response())
}

/// What a gate is asked: the case, the two versions, the thresholds and the window.
#[derive(Debug, PartialEq)]
struct GateRequest {
    case: String,
    canary: String,
    baseline: String,
    thresholds: Thresholds,
    window: Window,
}

/// A request the gate cannot answer: 400 with `{"error": …}`.
struct BadRequest(String);

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        (StatusCode::BAD_REQUEST, Json(serde_json::json!({ "error": self.0 }))).into_response()
    }
}

impl GateRequest {
    /// Reads `case`, `canary`, `baseline` (required) and `last` (executions), `window_seconds`, `min_executions`,
    /// `max_pass_rate_drop`, `max_latency_increase`, `significance` (optional) from string parameters.
    fn parse(parameters: &HashMap<String, String>) -> Result<Self, BadRequest> {
        let text = |name: &str| {
            let value = parameters.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
            value.ok_or_else(|| BadRequest(format!("`{name}` is required")))
        };
        let version = |name: &str| {
            text(name).and_then(|v| {
                crate::wire::valid_service_version(v)
                    .map(String::from)
                    .ok_or_else(|| BadRequest(format!("`{name}` is not a version: `{v}`")))
            })
        };
        fn number<T: std::str::FromStr>(
            parameters: &HashMap<String, String>,
            name: &str,
        ) -> Result<Option<T>, BadRequest> {
            match parameters.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => v.parse().map(Some).map_err(|_| BadRequest(format!("`{name}` is not a number: `{v}`"))),
            }
        }
        let mut thresholds = Thresholds::default();
        if let Some(n) = number::<u64>(parameters, "min_executions")? {
            thresholds = thresholds.min_executions(n);
        }
        if let Some(drop) = number::<f64>(parameters, "max_pass_rate_drop")? {
            thresholds = thresholds.max_pass_rate_drop(drop);
        }
        if let Some(increase) = number::<f64>(parameters, "max_latency_increase")? {
            thresholds = thresholds.max_latency_increase(increase);
        }
        if let Some(significance) = number::<f64>(parameters, "significance")? {
            thresholds = thresholds.significance(significance);
        }
        let window = match (number::<usize>(parameters, "last")?, number::<f64>(parameters, "window_seconds")?) {
            (Some(_), Some(_)) => return Err(BadRequest("`last` or `window_seconds`, not both".into())),
            (Some(last), None) => Window::Last(last),
            (None, Some(seconds)) if seconds.is_finite() && seconds > 0.0 => {
                Window::Within(Duration::from_secs_f64(seconds.min(1e9)))
            }
            (None, Some(_)) => return Err(BadRequest("`window_seconds` must be a positive number".into())),
            (None, None) => Window::All,
        };
        Ok(GateRequest {
            case: text("case")?.to_owned(),
            canary: version("canary")?,
            baseline: version("baseline")?,
            thresholds,
            window,
        })
    }

    fn verdict(&self, instance: &Instance) -> Result<Verdict, NotFound> {
        if instance.app.registry.get(&self.case).is_none() {
            return Err(NotFound(format!("no case named `{}`", self.case)));
        }
        Ok(instance.versions.verdict(&self.case, &self.canary, &self.baseline, &self.thresholds, self.window))
    }
}

/// `GET /api/gate?case=…&canary=…&baseline=…`: the verdict, 200 whatever it is (Argo Rollouts reads `outcome`).
async fn gate(State(instance): State<Arc<Instance>>, Query(parameters): Query<HashMap<String, String>>) -> Response {
    let request = match GateRequest::parse(&parameters) {
        Ok(request) => request,
        Err(bad) => return bad.into_response(),
    };
    match request.verdict(&instance) {
        Ok(verdict) => {
            tracing::info!(case = %verdict.case, canary = %verdict.canary, baseline = %verdict.baseline, outcome = verdict.outcome.as_str(), "gate asked");
            Json(verdict).into_response()
        }
        Err(not_found) => not_found.into_response(),
    }
}

/// A Flagger webhook's body: the canary's name, namespace and phase, and the webhook's metadata.
#[derive(Deserialize)]
struct FlaggerWebhook {
    name: String,
    namespace: String,
    #[serde(default)]
    phase: Option<String>,
    #[serde(default)]
    metadata: HashMap<String, serde_json::Value>,
}

/// `POST /api/gate/flagger`: 200 when the canary is successful; 412 when it failed, 425 when it is inconclusive
/// (Flagger halts the canary's advance on any other status than 2xx and counts a failed check), with the verdict
/// as the body.
async fn flagger(State(instance): State<Arc<Instance>>, body: axum::body::Bytes) -> Response {
    let webhook: FlaggerWebhook = match serde_json::from_slice(&body) {
        Ok(webhook) => webhook,
        Err(error) => return BadRequest(format!("not a Flagger webhook body: {error}")).into_response(),
    };
    // Flagger's metadata values are strings; numbers and booleans are taken as their text.
    let parameters: HashMap<String, String> = webhook
        .metadata
        .into_iter()
        .filter_map(|(key, value)| match value {
            serde_json::Value::String(text) => Some((key, text)),
            serde_json::Value::Number(_) | serde_json::Value::Bool(_) => Some((key, value.to_string())),
            _ => None,
        })
        .collect();
    let request = match GateRequest::parse(&parameters) {
        Ok(request) => request,
        Err(bad) => return bad.into_response(),
    };
    let verdict = match request.verdict(&instance) {
        Ok(verdict) => verdict,
        Err(not_found) => return not_found.into_response(),
    };
    let status = if verdict.is_successful() {
        StatusCode::OK
    } else if verdict.is_failed() {
        StatusCode::PRECONDITION_FAILED
    } else {
        StatusCode::TOO_EARLY
    };
    tracing::info!(
        canary_name = %webhook.name, namespace = %webhook.namespace, phase = webhook.phase.as_deref().unwrap_or(""),
        case = %verdict.case, canary = %verdict.canary, baseline = %verdict.baseline,
        outcome = verdict.outcome.as_str(), "Flagger asked the gate"
    );
    (status, Json(verdict)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parameters(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn reads_the_versions_thresholds_and_window_and_refuses_the_rest() {
        let read = GateRequest::parse(&parameters(&[
            ("case", "test_order"),
            ("canary", "v2"),
            ("baseline", "v1"),
            ("last", "200"),
            ("min_executions", "50"),
            ("max_pass_rate_drop", "0.02"),
        ]))
        .ok()
        .unwrap();
        assert_eq!(read.window, Window::Last(200));
        assert_eq!(read.thresholds, Thresholds::default().min_executions(50).max_pass_rate_drop(0.02));
        let refused = |pairs: &[(&str, &str)]| GateRequest::parse(&parameters(pairs)).err().unwrap().0;
        assert!(refused(&[("case", "c"), ("canary", "v2")]).contains("`baseline` is required"));
        assert!(refused(&[("case", "c"), ("canary", "v 2"), ("baseline", "v1")]).contains("not a version"));
        assert!(refused(&[("case", "c"), ("canary", "v2"), ("baseline", "v1"), ("last", "x")]).contains("number"));
        let both = [("case", "c"), ("canary", "v2"), ("baseline", "v1"), ("last", "5"), ("window_seconds", "60")];
        assert!(refused(&both).contains("not both"));
        let negative = [("case", "c"), ("canary", "v2"), ("baseline", "v1"), ("window_seconds", "-1")];
        assert!(refused(&negative).contains("positive"));
    }
}
