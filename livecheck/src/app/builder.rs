use std::{sync::Arc, time::Duration};

use super::{Config, LiveCheck, Metrics, Registry, Shared, StreamNames};
use crate::{
    clock::Clock,
    runner::SignalRouter,
    transport::{MemoryTransport, Transport},
};

/// Configures a [`LiveCheck`] app.
#[must_use]
pub struct LiveCheckBuilder {
    transport: Option<Arc<dyn Transport>>,
    streams: StreamNames,
    group: String,
    partitions: Option<u32>,
    max_concurrent_tests: usize,
    bus_concurrency: usize,
    send_reports: bool,
    clock: Clock,
    draw: Option<Box<dyn Fn() -> f64 + Send + Sync>>,
    early_signal_limit: usize,
    early_signal_bytes: usize,
    max_message_bytes: usize,
    stats_interval: Duration,
}

impl Default for LiveCheckBuilder {
    fn default() -> Self {
        LiveCheckBuilder {
            transport: None,
            streams: StreamNames::default(),
            group: "livecheck".into(),
            partitions: None,
            max_concurrent_tests: 100,
            bus_concurrency: 30,
            send_reports: true,
            clock: Clock::System,
            draw: None,
            early_signal_limit: 100_000,
            early_signal_bytes: 64 << 20,
            max_message_bytes: 1 << 20,
            stats_interval: Duration::from_secs(10),
        }
    }
}

impl LiveCheckBuilder {
    /// The transport (default: a new in-memory one, private to this app).
    pub fn transport(mut self, transport: impl Transport) -> Self {
        self.transport = Some(Arc::new(transport));
        self
    }

    /// A transport shared with other parts of the program.
    pub fn shared_transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Stream names (default `livecheck`, `livecheck-bus`, `livecheck-report`).
    pub fn streams(mut self, streams: StreamNames) -> Self {
        self.streams = streams;
        self
    }

    /// Consumer group of LiveCheck instances (default `livecheck`); instances in one group share the tests.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = group.into();
        self
    }

    /// Partitions of the streams when the app creates them (default: the transport's, 8 for the built-in ones).
    /// The pending-tests, bus and report streams must have the same count; existing streams are left as they are.
    pub fn partitions(mut self, partitions: u32) -> Self {
        self.partitions = Some(partitions.max(1));
        self
    }

    /// How many tests execute at once (default 100).
    pub fn max_concurrent_tests(mut self, n: usize) -> Self {
        self.max_concurrent_tests = n.max(1);
        self
    }

    /// How many ready signals are routed per batch, with one commit per batch (default 30). Routing a signal never
    /// waits, so signals are handled in order on one task.
    pub fn bus_concurrency(mut self, n: usize) -> Self {
        self.bus_concurrency = n.max(1);
        self
    }

    /// Whether reports are published on the report stream (default true). Counters and status change either way.
    pub fn send_reports(mut self, send: bool) -> Self {
        self.send_reports = send;
        self
    }

    /// Where the time of day comes from (default: the system clock).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The draw `maybe_trigger` compares with a case's probability: a value in `0.0..1.0` (default: uniform random).
    pub fn draw(mut self, draw: impl Fn() -> f64 + Send + Sync + 'static) -> Self {
        self.draw = Some(Box::new(draw));
        self
    }

    /// How many signals are held for tests that have not started executing yet (default 100 000); beyond it the
    /// oldest is dropped and counted.
    pub fn early_signal_limit(mut self, n: usize) -> Self {
        self.early_signal_limit = n.max(1);
        self
    }

    /// How many bytes the signals held for tests that have not started executing yet may take (default 64 MiB:
    /// their values and test ids, plus ~160 bytes each); beyond it the oldest are dropped and counted
    /// (`metrics().signals_evicted`). A forged flood of big signals cannot take more.
    pub fn early_signal_bytes(mut self, bytes: usize) -> Self {
        self.early_signal_bytes = bytes;
        self
    }

    /// The largest pending-test or signal message the instance reads (default 1 MiB); bigger ones are dropped and
    /// counted (`metrics().messages_too_large`) without being decoded.
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes.max(1);
        self
    }

    /// How often case statistics are logged (default 10 s).
    pub fn stats_interval(mut self, every: Duration) -> Self {
        self.stats_interval = every.max(Duration::from_millis(1));
        self
    }

    /// The app.
    pub fn build(self) -> LiveCheck {
        LiveCheck {
            shared: Arc::new(Shared {
                transport: self.transport.unwrap_or_else(|| Arc::new(MemoryTransport::new())),
                streams: self.streams,
                clock: self.clock,
                draw: self.draw.unwrap_or_else(|| Box::new(fastrand::f64)),
                router: SignalRouter::new(self.early_signal_limit, self.early_signal_bytes),
                metrics: Metrics::default(),
                config: Config {
                    group: self.group,
                    partitions: self.partitions,
                    max_concurrent_tests: self.max_concurrent_tests,
                    bus_concurrency: self.bus_concurrency,
                    send_reports: self.send_reports,
                    max_message_bytes: self.max_message_bytes,
                    stats_interval: self.stats_interval,
                },
            }),
            registry: Arc::new(Registry::default()),
        }
    }
}
