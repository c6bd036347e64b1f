//! Executions that already have a report. When a member is assigned a partition, it reads the report stream's
//! same partition from the mark stored with the group's commits: every execution delivered again — because it
//! finished after the last commit, before a crash or a rebalance — and already reported is found there, and is
//! not run again. So at-least-once delivery still gives one report per execution.
//!
//! The mark: with every commit of the pending-tests and bus streams, the member stores how far the report
//! stream's partition reached when the message at the committed offset was read. Any report of an execution
//! delivered again was published after that, so reading from the lower of the two marks finds it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::LiveCheck;
use crate::Result;

/// Reports read at a time.
const PAGE: usize = 1000;

/// The metadata committed with an offset: the report stream's mark.
pub(crate) fn mark_metadata(mark: u64) -> String {
    format!("reports={mark}")
}

/// The mark in committed metadata, if it has one.
pub(crate) fn parse_mark(metadata: &str) -> Option<u64> {
    metadata.strip_prefix("reports=")?.parse().ok()
}

/// Executions with a report: id → issue times, in microseconds (the precision reports carry).
#[derive(Default)]
pub(crate) struct Reported {
    executions: HashMap<String, Vec<i64>>,
}

#[derive(Deserialize)]
struct ReportedTest {
    test: Option<ExecutionIdentity>,
}

#[derive(Deserialize)]
struct ExecutionIdentity {
    id: String,
    #[serde(with = "crate::wire::timestamp")]
    timestamp: DateTime<Utc>,
}

impl Reported {
    /// Whether the execution `id` issued at `issued` has a report.
    pub(crate) fn contains(&self, id: &str, issued: DateTime<Utc>) -> bool {
        self.executions.get(id).is_some_and(|times| times.contains(&issued.timestamp_micros()))
    }

    pub(crate) fn len(&self) -> usize {
        self.executions.values().map(Vec::len).sum()
    }

    /// Reads `partition` of the report stream from `from` to `end`; the router learns of each execution found, so
    /// that its signals, read again, are known to be late.
    pub(crate) async fn scan(app: &LiveCheck, partition: u32, from: u64, end: u64) -> Result<Reported> {
        let shared = &app.shared;
        let mut reported = Reported::default();
        let mut next = from;
        while next < end {
            let page = shared.transport.read(&shared.streams.reports, partition, next, PAGE).await?;
            let Some(last) = page.last() else { break };
            next = last.offset + 1;
            for received in &page {
                // Suite reports (no test) and anything that does not decode are not executions' reports.
                let Ok(ReportedTest { test: Some(test) }) = serde_json::from_slice(&received.message.value) else {
                    continue;
                };
                shared.router.already_reported(&test.id, test.timestamp);
                reported.executions.entry(test.id).or_default().push(test.timestamp.timestamp_micros());
            }
        }
        Ok(reported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_round_trips_through_commit_metadata() {
        assert_eq!(parse_mark(&mark_metadata(42)), Some(42));
        assert_eq!(parse_mark(""), None);
        assert_eq!(parse_mark("reports=x"), None);
    }
}
