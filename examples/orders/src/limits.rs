//! The LiveCheck instance's memory limits, as options of the `livecheck` command.

use livecheck::LiveCheckBuilder;

/// How much the instance holds in memory for input it cannot act on yet, and the largest message it reads.
#[derive(clap::Args, Clone, Debug, Default)]
pub(crate) struct MemoryLimits {
    /// Bytes the signals held for tests not started yet may take; the oldest are dropped beyond it
    /// (default 64 MiB).
    #[arg(long, value_name = "BYTES")]
    early_signal_bytes: Option<usize>,
    /// The largest pending-test or signal message read, in bytes; bigger ones are dropped undecoded
    /// (default 1 MiB).
    #[arg(long, value_name = "BYTES")]
    max_message_bytes: Option<usize>,
    /// Bytes of pending tests held at most, executing or waiting their turn; beyond, the pending-tests stream is
    /// paused (default 32 MiB).
    #[arg(long, value_name = "BYTES")]
    max_in_flight_bytes: Option<usize>,
}

impl MemoryLimits {
    /// `builder` with the limits that were given (the library's defaults otherwise).
    pub(crate) fn apply(&self, builder: LiveCheckBuilder) -> LiveCheckBuilder {
        let builder = match self.early_signal_bytes {
            Some(bytes) => builder.early_signal_bytes(bytes),
            None => builder,
        };
        let builder = match self.max_in_flight_bytes {
            Some(bytes) => builder.max_in_flight_bytes(bytes),
            None => builder,
        };
        match self.max_message_bytes {
            Some(bytes) => builder.max_message_bytes(bytes),
            None => builder,
        }
    }
}
