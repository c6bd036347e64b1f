//! The names of the three LiveCheck streams.

/// Names of the three LiveCheck streams.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamNames {
    /// Pending tests (`livecheck`).
    pub pending: String,
    /// Signals (`livecheck-bus`).
    pub bus: String,
    /// Reports (`livecheck-report`).
    pub reports: String,
}

impl Default for StreamNames {
    fn default() -> Self {
        StreamNames { pending: "livecheck".into(), bus: "livecheck-bus".into(), reports: "livecheck-report".into() }
    }
}

impl StreamNames {
    /// `{prefix}-livecheck`, `{prefix}-livecheck-bus`, `{prefix}-livecheck-report`: for several apps sharing one
    /// broker.
    pub fn prefixed(prefix: &str) -> Self {
        let d = StreamNames::default();
        StreamNames {
            pending: format!("{prefix}-{}", d.pending),
            bus: format!("{prefix}-{}", d.bus),
            reports: format!("{prefix}-{}", d.reports),
        }
    }

    /// `<pending>-instances`: where the group's instances publish their summaries and the services their traffic.
    pub(crate) fn instances(&self) -> String {
        format!("{}-instances", self.pending)
    }
}
