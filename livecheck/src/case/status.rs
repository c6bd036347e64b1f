//! A case's status as the JSON API shows it: its health and the executions running now.

use serde::Serialize;

use super::HealthSnapshot;

/// One case's status: its health, and its executions running now.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CaseStatus {
    /// The case's name.
    pub name: String,
    /// Its health (serialized inline: status, counts, medians …).
    #[serde(flatten)]
    pub health: HealthSnapshot,
    /// Executions of the case running now on this instance.
    pub in_flight: u64,
    /// Seconds the oldest of them has been running; `None` when none runs.
    pub oldest_in_flight_seconds: Option<f64>,
    /// The instance is lagging behind its streams: a TIMEOUT now may be its own fault, so its TIMEOUTs are
    /// "unknown" (counted in `unknown_verdicts`, kept out of the failure counts and policies).
    pub instance_lagging: bool,
}

impl CaseStatus {
    /// Whether the case is failing: a suite failure it has not recovered from, its service down, or a failing
    /// status (neither INIT nor PASS).
    pub fn is_failing(&self) -> bool {
        self.health.failing
    }
}
