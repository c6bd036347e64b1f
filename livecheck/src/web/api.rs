//! The JSON API: the instance and its cases' status, and their executions.

use std::sync::Arc;

use axum::{
    extract::{Path, State},
    Json,
};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{not_found::NotFound, server::Instance};
use crate::{
    health::{CaseStatus, StageHealth},
    history::ExecutionRecord,
    instance::{InstanceView, MetricsSnapshot},
};

/// `GET /api/status`.
#[derive(Serialize)]
pub(super) struct Status {
    instance: InstanceStatus,
    /// Failing cases first, then by name.
    cases: Vec<CaseStatus>,
    /// Every instance of the group heard of lately, this one included: its cases and recent failures.
    instances: Vec<InstanceView>,
}

#[derive(Serialize)]
struct InstanceStatus {
    started_at: DateTime<Utc>,
    leader: bool,
    transport: String,
    /// Partitions of the instance's group with tests or signals waiting and no member consuming them.
    unowned_partitions: Vec<u32>,
    /// How far behind its streams it reads, while it is further than its `lag_threshold` (its TIMEOUTs are then
    /// unknown); `null` otherwise.
    lagging: Option<crate::instance::LagState>,
    metrics: MetricsSnapshot,
}

/// `GET /api/cases/{name}`.
#[derive(Serialize)]
pub(super) struct CaseDetail {
    #[serde(flatten)]
    status: CaseStatus,
    /// Each declared signal over the case's last executions: reached, arrived, missing, latency percentiles.
    stages: Vec<StageHealth>,
    /// Newest first.
    executions: Vec<ExecutionRecord>,
}

pub(super) async fn status(State(instance): State<Arc<Instance>>) -> Json<Status> {
    let app = &instance.app;
    Json(Status {
        instance: InstanceStatus {
            started_at: instance.started_at,
            leader: instance.is_leader(),
            transport: app.transport().describe(),
            unowned_partitions: app.group_health().unowned_partitions,
            lagging: app.lagging(),
            metrics: app.metrics(),
        },
        cases: app.case_statuses(),
        instances: app.group_view(),
    })
}

pub(super) async fn case(
    State(instance): State<Arc<Instance>>,
    Path(name): Path<String>,
) -> Result<Json<CaseDetail>, NotFound> {
    let app = &instance.app;
    let (Some(status), Some(stages), Some(executions)) =
        (app.case_status(&name), app.case_stages(&name), app.recent_executions(&name))
    else {
        return Err(unknown_case(&name));
    };
    Ok(Json(CaseDetail { status, stages, executions }))
}

pub(super) async fn executions(
    State(instance): State<Arc<Instance>>,
    Path(name): Path<String>,
) -> Result<Json<Vec<ExecutionRecord>>, NotFound> {
    instance.app.recent_executions(&name).map(Json).ok_or_else(|| unknown_case(&name))
}

pub(super) async fn execution(
    State(instance): State<Arc<Instance>>,
    Path(id): Path<String>,
) -> Result<Json<ExecutionRecord>, NotFound> {
    instance.app.execution(&id).map(Json).ok_or_else(|| NotFound(format!("no execution `{id}` is running or kept")))
}

/// `GET /api/alerts`: the alerts sent (or being sent) to the webhooks, newest first, with every attempt.
pub(super) async fn alerts(State(instance): State<Arc<Instance>>) -> Json<Vec<crate::alert::AlertDelivery>> {
    Json(instance.app.alert_deliveries())
}

fn unknown_case(name: &str) -> NotFound {
    NotFound(format!("no case named `{name}`"))
}
