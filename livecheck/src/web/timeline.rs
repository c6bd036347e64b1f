//! `GET /api/cases/{name}/timeline`: a case's outcomes per minute over the last 6 hours (passed, failed, skipped,
//! runtime p50 and p99), observed as executions finish, for the dashboard's charts.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
};

use axum::{
    extract::{Path, State},
    Json,
};
use serde::Serialize;

use super::{not_found::NotFound, server::Instance};
use crate::{
    history::{CaseTimeline, TimelineBucket, BUCKET_SECONDS},
    observe::{ExecutionFinished, Observer},
    sync::{lock, read, write},
};

/// Every case's timeline, kept as executions finish.
#[derive(Default)]
pub(crate) struct Timelines {
    cases: RwLock<HashMap<Arc<str>, Mutex<CaseTimeline>>>,
}

impl Observer for Timelines {
    fn execution_finished(&self, execution: &ExecutionFinished<'_>) {
        let (state, runtime) = (execution.report.state, execution.report.runtime);
        if let Some(timeline) = read(&self.cases).get(execution.case) {
            lock(timeline).record(execution.finished_at, state, runtime, execution.signals);
            return;
        }
        let mut cases = write(&self.cases);
        let timeline = cases.entry(execution.case.into()).or_default();
        lock(timeline).record(execution.finished_at, state, runtime, execution.signals);
    }
}

/// A case's timeline, as the API answers.
#[derive(Serialize)]
pub(super) struct Timeline {
    case: String,
    bucket_seconds: i64,
    /// The declared signals, in the order of each bucket's `stages`.
    signals: Vec<String>,
    /// Buckets that hold executions, oldest first.
    buckets: Vec<TimelineBucket>,
}

pub(super) async fn timeline(
    State(instance): State<Arc<Instance>>,
    Path(name): Path<String>,
) -> Result<Json<Timeline>, NotFound> {
    if instance.app.case_status(&name).is_none() {
        return Err(NotFound(format!("no case named `{name}`")));
    }
    let now = instance.app.shared.clock.now();
    let buckets = read(&instance.timelines.cases).get(name.as_str()).map_or_else(Vec::new, |t| lock(t).buckets(now));
    let signals = instance.app.case_stages(&name).unwrap_or_default().into_iter().map(|s| s.signal).collect();
    Ok(Json(Timeline { case: name, bucket_seconds: BUCKET_SECONDS, signals, buckets }))
}
