//! One view of every instance of the group: each instance publishes a summary of itself — its cases' status and
//! its recent executions that did not pass — on the group's instances stream every few seconds, and reads the
//! others'. Any instance's `/api/status` (and `livecheck status`) then shows the whole group, and which instance
//! ran what. An instance not heard of for three intervals is left out (it stopped, or cannot publish). The
//! summaries are not signed: the view is for reading, nothing acts on it.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::LiveCheck;
use crate::{case::TrafficReport, history::ExecutionRecord, transport::Message, State};

/// How often an instance publishes its summary, and reads the others'.
pub(crate) const INTERVAL: Duration = Duration::from_secs(5);
/// Executions that did not pass, per case, that a summary carries at most (the newest).
const RECENT_FAILURES: usize = 5;
/// Summaries read per partition per round, at most.
const READ_BATCH: usize = 500;
/// Instances remembered at most (whoever writes on the stream cannot grow this without bound).
const MOST_INSTANCES: usize = 256;

/// What one instance of the group says of itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InstanceView {
    /// The instance's id (random, new at each start).
    pub instance: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it said this.
    pub at: DateTime<Utc>,
    /// Whether it is its group's leader.
    pub leader: bool,
    /// Its cases, by name.
    pub cases: Vec<CaseView>,
    /// Its newest executions that did not pass (at most 5 per case), newest first.
    pub recent_failures: Vec<ExecutionRecord>,
}

/// A case as one instance sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CaseView {
    /// The case's name.
    pub name: String,
    /// Its status on that instance.
    pub status: State,
    /// Whether it fails there.
    pub failing: bool,
    /// Its executions running there now.
    pub in_flight: u64,
}

/// The summaries heard from the group, by instance.
#[derive(Default)]
pub(crate) struct GroupView {
    heard: Mutex<HashMap<String, InstanceView>>,
}

impl LiveCheck {
    /// Every instance of the group heard of in the last three intervals (this one included, once it runs), by id.
    pub fn group_view(&self) -> Vec<InstanceView> {
        let now = self.shared.clock.now();
        let fresh = chrono::Duration::from_std(INTERVAL * 3).unwrap_or_default();
        let heard = crate::sync::lock(&self.shared.group_view.heard);
        let mut views: Vec<InstanceView> = heard.values().filter(|v| now - v.at <= fresh).cloned().collect();
        views.sort_by(|a, b| a.instance.cmp(&b.instance));
        views
    }

    /// This instance's summary now.
    fn own_view(&self, instance: &str, started_at: DateTime<Utc>, leader: bool) -> InstanceView {
        let statuses = self.case_statuses();
        let mut recent_failures = Vec::new();
        for status in &statuses {
            let Some(records) = self.recent_executions(&status.name) else { continue };
            let failed =
                records.into_iter().filter(|r| r.state.is_some_and(|s| !matches!(s, State::Pass | State::Skip)));
            recent_failures.extend(failed.take(RECENT_FAILURES));
        }
        recent_failures.sort_by_key(|r| std::cmp::Reverse(r.finished_at));
        InstanceView {
            instance: instance.to_owned(),
            started_at,
            at: self.shared.clock.now(),
            leader,
            cases: statuses
                .iter()
                .map(|s| CaseView {
                    name: s.name.clone(),
                    status: s.health.status,
                    failing: s.health.failing,
                    in_flight: s.in_flight,
                })
                .collect(),
            recent_failures,
        }
    }
}

/// The stream the group's instances publish their summaries on: `<pending-tests stream>-instances`.
pub(crate) fn stream_of(app: &LiveCheck) -> String {
    app.shared.streams.instances()
}

/// Publishes this instance's summary and reads the others' every [`INTERVAL`] until `shutdown`. Failures are
/// logged once and retried at the next round: the view is an aid, never a reason to stop.
pub(crate) async fn run(
    app: LiveCheck,
    started_at: DateTime<Utc>,
    leader: impl Fn() -> bool + Send,
    shutdown: CancellationToken,
) {
    let instance = crate::sync::random_uuid();
    let stream = stream_of(&app);
    let transport = app.shared.transport.clone();
    // Brokers that do not create topics on first use (tansu) need it made; one that exists is left as it is.
    if let Err(error) = transport.create_stream(&stream, app.shared.config.partitions.unwrap_or(1)).await {
        tracing::debug!(error = %crate::error::with_causes(&error), %stream, "creating the group view's stream");
    }
    // Where each partition was read up to; a new instance starts a little before the end.
    let mut next: Vec<u64> = Vec::new();
    loop {
        let view = app.own_view(&instance, started_at, leader());
        crate::sync::lock(&app.shared.group_view.heard).insert(instance.clone(), view.clone());
        let published = match serde_json::to_vec(&view) {
            Ok(value) => {
                transport
                    .publish(&stream, Message { key: Some(instance.clone()), value, headers: Default::default() })
                    .await
            }
            Err(error) => Err(error.into()),
        };
        if let Err(error) = published {
            if app.shared.metrics.first_time("group view publish") {
                tracing::warn!(error = %crate::error::with_causes(&error), %stream, "could not publish this instance's summary for the group view (logged once)");
            }
        }
        if let Err(error) = read_others(&app, &stream, &instance, &mut next).await {
            if app.shared.metrics.first_time("group view read") {
                tracing::warn!(error = %crate::error::with_causes(&error), %stream, "could not read the group's summaries (logged once)");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(INTERVAL) => {}
        }
    }
}

/// Reads the summaries published since the last round (the last few per partition the first time).
async fn read_others(app: &LiveCheck, stream: &str, own: &str, next: &mut Vec<u64>) -> crate::Result<()> {
    let transport = &app.shared.transport;
    // Instances not heard of for three intervals are gone.
    let now = app.shared.clock.now();
    let fresh = chrono::Duration::from_std(INTERVAL * 3).unwrap_or_default();
    crate::sync::lock(&app.shared.group_view.heard).retain(|id, view| id == own || now - view.at <= fresh);
    let ends = transport.end_offsets(stream).await?;
    if next.len() != ends.len() {
        *next = ends.iter().map(|end| end.saturating_sub(READ_BATCH as u64)).collect();
    }
    for (partition, end) in ends.iter().enumerate() {
        while next[partition] < *end {
            let page = transport.read(stream, partition as u32, next[partition], READ_BATCH).await?;
            let Some(last) = page.last() else { break };
            next[partition] = last.offset + 1;
            let mut heard = crate::sync::lock(&app.shared.group_view.heard);
            for received in page {
                if received.message.value.len() > app.shared.config.max_message_bytes {
                    continue;
                }
                // A service's traffic report goes to its case's health.
                if let Ok(TrafficReport { traffic }) = serde_json::from_slice(&received.message.value) {
                    if let Some(case) = app.registry.get(&traffic.case) {
                        case.core().health().traffic_reported(traffic.at, traffic.seen, traffic.sampled);
                    }
                    continue;
                }
                // A summary that does not decode is passed over (another version, or not one of ours).
                let Ok(view) = serde_json::from_slice::<InstanceView>(&received.message.value) else { continue };
                let known = heard.contains_key(&view.instance);
                if view.instance == own || (!known && heard.len() >= MOST_INSTANCES) {
                    continue;
                }
                if heard.get(&view.instance).is_none_or(|known| known.at <= view.at) {
                    heard.insert(view.instance.clone(), view);
                }
            }
        }
    }
    Ok(())
}
