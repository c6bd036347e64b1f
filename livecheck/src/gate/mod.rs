//! Rollout gates: results per service version, and a verdict on a canary version against a baseline.
//!
//! Services say which version they are ([`LiveCheckBuilder::service_version`](crate::LiveCheckBuilder::service_version),
//! `LIVECHECK_SERVICE_VERSION`, or OpenTelemetry's `service.version` for spans); executions carry the version
//! that sampled them, signals the version that handled their stage. A [`VersionTally`] (an observer; the web
//! server keeps one) counts each version's outcomes and latencies, and compares a canary with its baseline: a
//! [`Verdict`] that is [`Successful`](Outcome::Successful), [`Failed`](Outcome::Failed) (which stage, which
//! contract, how many executions) or [`Inconclusive`](Outcome::Inconclusive) — never a pass by default. The web
//! server answers it on `GET /api/gate` (Argo Rollouts), `POST /api/gate/flagger` (Flagger) and for
//! `livecheck gate` (CI).

mod recent_versions;
mod results;
pub(crate) mod stats;
mod tally;
mod thresholds;
mod verdict;

#[cfg(feature = "web")]
pub(crate) use recent_versions::{RecentVersions, DEFAULT_PLACES, OTHER};
pub use results::{Counts, Latency, StageLatency, VersionResults};
pub use tally::VersionTally;
pub use thresholds::{Thresholds, Window};
pub use verdict::{Finding, Metric, Outcome, Verdict};

#[cfg(test)]
mod tests;
