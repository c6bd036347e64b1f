//! The LiveCheck app: the registry of cases and the instance that runs them.

mod builder;
mod bus;
mod companion;
mod consumer;
mod consumers;
pub(crate) mod dead_letter;
mod group_view;
mod inspect;
mod lag;
mod member;
mod offsets;
mod outcome;
mod pending;
mod reported;
mod running;
#[cfg(feature = "web")]
mod spans;
mod stopping;
mod traces;
mod trigger;
mod watchers;

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use serde::Serialize;

pub(crate) use crate::metrics::Metrics;
pub use crate::metrics::MetricsSnapshot;
pub use crate::publish::StreamNames;
pub use builder::LiveCheckBuilder;
#[cfg_attr(not(feature = "web"), allow(unused_imports))]
pub(crate) use companion::{BoundCompanion, Companion, StartedInstance};
pub(crate) use consumer::{consume, Handled};
#[cfg(feature = "web")]
pub(crate) use consumers::StoppedConsumer;
pub(crate) use consumers::{Consumer, ConsumerRuns, Consumers};
pub use group_view::{CaseView, InstanceView};
pub use lag::LagState;
pub use running::Running;

use crate::{
    alert::{AlertDelivery, Alerts},
    case::{
        Case, CaseCore, CaseHandle, CaseHealth, CaseSender, CaseSettings, HealthSnapshot, Registered, RegisteredCase,
        SignalSet, Signals,
    },
    clock::Clock,
    context::{HeaderError, HeaderParts, Headers, Signer, TestContext, HEADER_BAGGAGE},
    history::ExecutionHistory,
    publish::Publisher,
    runner::SignalRouter,
    transport::Transport,
    Error, Result,
};

/// What every part of one app shares.
pub(crate) struct Shared {
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) streams: StreamNames,
    pub(crate) clock: Clock,
    /// What the cases send out through (it holds the same transport, streams, clock, signer and counters).
    pub(crate) publisher: Arc<Publisher>,
    pub(crate) router: SignalRouter,
    /// What the group's instances said of themselves (see `group_view.rs`).
    pub(crate) group_view: group_view::GroupView,
    /// How far behind its streams the instance reads (see `lag.rs`).
    pub(crate) lag: lag::Lag,
    /// Executing tests by the trace they were sampled from (for spans without a test context).
    pub(crate) traces: traces::TestsByTrace,
    /// Executions with a report, so that copies of them are not run again.
    pub(crate) reported: reported::ReportedExecutions,
    pub(crate) metrics: Arc<Metrics>,
    /// The instance's group as its member watches it (the Kafka transport does), once started.
    pub(crate) group_health: std::sync::OnceLock<tokio::sync::watch::Receiver<crate::transport::GroupHealth>>,
    /// Signs the test context the app writes and checks the one it reads; `None` when signing is off.
    pub(crate) signer: Option<Signer>,
    /// Where poison messages are copied; `None` when they are only counted.
    pub(crate) dead_letters: Option<dead_letter::DeadLetters>,
    /// Where alerts go, and the record of their deliveries (one of the observers).
    pub(crate) alerts: Arc<Alerts>,
    /// Told of every finished execution and health change: the alerts, the web server's metrics, the user's.
    pub(crate) observers: crate::observe::Observers,
    /// Which consumers run, and which stopped on their own (for `/healthz`).
    pub(crate) consumers: Consumers,
    /// The instance's stop signals, and what it could not publish while stopping.
    pub(crate) stopping: stopping::Stopping,
    pub(crate) config: Config,
    /// What runs beside the instance (the web server, when configured).
    pub(crate) companions: Vec<Box<dyn Companion>>,
}

pub(crate) struct Config {
    pub(crate) group: String,
    pub(crate) partitions: Option<u32>,
    pub(crate) max_concurrent_tests: usize,
    pub(crate) max_in_flight_bytes: usize,
    pub(crate) bus_concurrency: usize,
    pub(crate) send_reports: bool,
    /// Whether tests started by hand count in their case's health (see `LiveCheckBuilder::count_tests_by_hand`).
    pub(crate) count_tests_by_hand: bool,
    pub(crate) max_message_bytes: usize,
    pub(crate) stats_interval: Duration,
    /// How long a stopping instance still tries to publish what is under way.
    pub(crate) shutdown_timeout: Duration,
    /// Finished executions kept per case for the API.
    pub(crate) execution_history: usize,
    /// The link to a trace, `{trace_id}` standing for its id (see `LiveCheckBuilder::trace_url`).
    pub(crate) trace_url: Option<String>,
    /// Messages behind on either stream beyond which the instance is lagging.
    pub(crate) lag_threshold: u64,
}

#[derive(Default)]
pub(crate) struct Registry {
    cases: RwLock<HashMap<Arc<str>, Arc<dyn RegisteredCase>>>,
    /// The app was started (or is starting): no more cases, no second start.
    started: std::sync::atomic::AtomicBool,
}

impl Registry {
    pub(crate) fn get(&self, name: &str) -> Option<Arc<dyn RegisteredCase>> {
        crate::sync::read(&self.cases).get(name).cloned()
    }

    pub(crate) fn all(&self) -> Vec<Arc<dyn RegisteredCase>> {
        crate::sync::read(&self.cases).values().cloned().collect()
    }
}

/// A LiveCheck app: the cases, and the transport their tests, signals and reports travel on.
///
/// Services use it to trigger tests and send signals; the LiveCheck instance also [`starts`](LiveCheck::start) it
/// to run the cases. Cheap to clone.
///
/// ```
/// # use livecheck::{Case, CaseResult, CaseSettings, LiveCheck, Signal, TestRun};
/// # struct Ping { pong: Signal<()> }
/// # impl Case for Ping {
/// #     type Args = ();
/// #     async fn run(&self, _: &TestRun, _: ()) -> CaseResult { Ok(()) }
/// # }
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> livecheck::Result<()> {
/// let livecheck = LiveCheck::builder().build();
/// let ping = livecheck.register(CaseSettings::new("ping"), |signals| Ping { pong: signals.declare("pong") })?;
/// let running = livecheck.start().await?;
/// let test = ping.trigger(&()).await?;
/// livecheck::scope(Some(test), ping.pong.notify()).await?;
/// running.shutdown().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct LiveCheck {
    pub(crate) shared: Arc<Shared>,
    pub(crate) registry: Arc<Registry>,
}

impl LiveCheck {
    /// A builder with the defaults: in-memory transport, stream names `livecheck`, `livecheck-bus`,
    /// `livecheck-report`, 100 concurrent tests, 30 concurrent bus consumers, reports on.
    pub fn builder() -> LiveCheckBuilder {
        LiveCheckBuilder::default()
    }

    /// Registers a case. `build` declares its signals — one by one with [`Signals::declare`], or a whole
    /// [`SignalSet`] with `OrderSignals::declare(signals)` — and captures whatever else the case needs.
    ///
    /// Register every case before [`LiveCheck::start`]; names must be unique.
    pub fn register<C: Case>(
        &self,
        settings: CaseSettings,
        build: impl FnOnce(&mut Signals) -> C,
    ) -> Result<CaseHandle<C>> {
        if self.registry.started.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::Config(format!(
                "case `{}` registered after start(): register every case before starting the instance",
                settings.name
            )));
        }
        let core = self.case_core(settings)?;
        let name = core.name.clone();
        let mut signals = Signals::new(core.clone());
        let case = Arc::new(build(&mut signals));
        let names = signals.finish()?;
        if let Some((signal, _)) = core.settings.span_signals.iter().find(|(s, _)| !names.iter().any(|n| **n == **s)) {
            return Err(Error::Config(format!("case `{name}`: span signal `{signal}` is not a declared signal")));
        }
        if let Some((signal, _)) = core.settings.signal_budgets.iter().find(|(s, _)| !names.iter().any(|n| **n == **s))
        {
            return Err(Error::Config(format!(
                "case `{name}`: the budget's signal `{signal}` is not a declared signal"
            )));
        }
        let _ = core.signal_names.set(names);
        let mut cases = crate::sync::write(&self.registry.cases);
        // Checked again under the lock: `start` sets the flag before it reads the cases.
        if self.registry.started.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::Config(format!(
                "case `{name}` registered after start(): register every case before starting the instance"
            )));
        }
        if cases.contains_key(&name) {
            return Err(Error::Config(format!("a case named `{name}` is registered already")));
        }
        cases.insert(name, Arc::new(Registered { case: case.clone(), core: core.clone() }));
        Ok(CaseHandle { case, core })
    }

    /// The senders' side of a case, for a service: triggers its tests with arguments `A` and sends its signals `S`
    /// (through `Deref`), without building the case, which only the LiveCheck instance registers. Give it the
    /// case's settings (its name, `probability` and `test_expires` are what it uses). Any number of senders, at any
    /// time; a sender is not a registered case, and does not make this app run one.
    ///
    /// An error for the settings [`LiveCheck::register`] refuses, or a signal set that declares a name twice or
    /// other names than its [`SignalSet::NAMES`].
    pub fn sender<A: Serialize, S: SignalSet>(&self, settings: CaseSettings) -> Result<CaseSender<A, S>> {
        let core = self.case_core(settings)?;
        let mut signals = Signals::new(core.clone());
        let set = S::declare(&mut signals);
        let names = signals.finish()?;
        if names.iter().map(|name| &**name).ne(S::NAMES.iter().copied()) {
            return Err(Error::Config(format!(
                "case `{}`: the signal set {} declares {names:?} but its NAMES are {:?}",
                core.name,
                std::any::type_name::<S>(),
                S::NAMES
            )));
        }
        let _ = core.signal_names.set(names);
        Ok(CaseSender::new(set, core))
    }

    /// A case's shared part, once its settings are checked.
    fn case_core(&self, settings: CaseSettings) -> Result<Arc<CaseCore>> {
        let name: Arc<str> = settings.name.as_str().into();
        if name.is_empty() {
            return Err(Error::Config("a case needs a name".into()));
        }
        if !(0.0..=1.0).contains(&settings.probability) {
            return Err(Error::Config(format!("case `{name}`: probability must be within 0..=1")));
        }
        settings.check_alert_policies()?;
        if settings.warn_stalled_after.is_zero() {
            return Err(Error::Config(format!("case `{name}`: warn_stalled_after must be more than 0")));
        }
        Ok(Arc::new(CaseCore {
            name,
            health: std::sync::Mutex::new(CaseHealth::new(&settings, tokio::time::Instant::now())),
            settings,
            publisher: self.shared.publisher.clone(),
            signal_names: Default::default(),
            history: std::sync::Mutex::new(ExecutionHistory::new(self.shared.config.execution_history)),
            traffic: Default::default(),
        }))
    }

    /// Runs the instance: consumes pending tests and signals, executes tests, watches case health and, on the
    /// leader, makes fake requests. Stops with [`Running::shutdown`].
    ///
    /// An app starts once: a second `start` is an error (so is [`LiveCheck::register`] after it), unless the first
    /// one failed.
    pub async fn start(&self) -> Result<Running> {
        use std::sync::atomic::Ordering;
        if self.registry.started.swap(true, Ordering::SeqCst) {
            return Err(Error::Config("this LiveCheck app is started already: start() once per app".into()));
        }
        let running = running::start(self.clone()).await;
        if running.is_err() {
            self.registry.started.store(false, Ordering::SeqCst);
        }
        running
    }

    /// The instance's counters.
    pub fn metrics(&self) -> MetricsSnapshot {
        let (executing, held) = self.shared.router.sizes();
        let alerts = self.shared.alerts.counts();
        let group = self.group_health();
        MetricsSnapshot {
            unowned_partitions: group.unowned_partitions.len() as u64,
            group_rejoins: group.rejoins,
            tests_executing: executing as u64,
            signals_held: held as u64,
            signals_held_bytes: self.shared.router.early_bytes() as u64,
            reports_remembered: self.shared.reported.len() as u64,
            alerts_delivered: alerts.delivered,
            alerts_failed: alerts.failed,
            alerts_dropped: alerts.dropped,
            ..self.shared.metrics.snapshot()
        }
    }

    /// How the started instance sees its consumer group: partitions with tests or signals waiting that no member
    /// consumes, and how often it rejoined the group to heal that (see
    /// [`Subscription::group_health`](crate::transport::Subscription::group_health)). All clear before the start, or
    /// when the transport does not watch its groups.
    pub fn group_health(&self) -> crate::transport::GroupHealth {
        self.shared.group_health.get().map(|health| health.borrow().clone()).unwrap_or_default()
    }

    /// The latest alert deliveries (at most 200), newest first: each alert sent to each webhook, with every
    /// attempt. Empty without webhooks.
    pub fn alert_deliveries(&self) -> Vec<AlertDelivery> {
        self.shared.alerts.deliveries()
    }

    /// The health of the case named `name`.
    pub fn case_health(&self, name: &str) -> Option<HealthSnapshot> {
        self.registry.get(name).map(|case| case.core().health().snapshot())
    }

    /// The names of the streams.
    pub fn streams(&self) -> &StreamNames {
        &self.shared.streams
    }

    /// The transport.
    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.shared.transport
    }

    /// The test carried by message headers: the `LiveCheck-*` headers when any is there, else the
    /// `livecheck.test.*` members of the `baggage` headers. Partial or malformed headers or members mean no test: the
    /// first occurrence of each cause is logged, every one is counted. When the app signs test context, so do headers without a signature or
    /// with one that matches neither secret (counted in `headers_unsigned` and `headers_bad_signature`); the test
    /// read then carries a signature, written on wherever it goes.
    pub fn test_from_headers(&self, headers: &Headers) -> Option<TestContext> {
        self.read_test_headers(headers).map(HeaderParts::into_context)
    }

    /// The test carried by headers read through a case-insensitive lookup (e.g. HTTP headers), with the same
    /// checks and counting as [`LiveCheck::test_from_headers`]. The lookup's value of `baggage` may hold several
    /// headers' values joined by commas.
    pub fn test_from_lookup<'a>(&self, lookup: impl Fn(&str) -> Option<&'a [u8]>) -> Option<TestContext> {
        let baggage = lookup(HEADER_BAGGAGE);
        self.read_carriers(lookup, baggage).map(HeaderParts::into_context)
    }

    /// [`LiveCheck::test_from_headers`] without copying the text.
    pub(crate) fn read_test_headers<'a>(&self, headers: &'a Headers) -> Option<HeaderParts<'a>> {
        self.read_carriers(|name| headers.get(name), headers.get_all(HEADER_BAGGAGE))
    }

    /// The test carried by headers read through `lookup` and by the values of the `baggage` headers, checked and
    /// counted.
    pub(crate) fn read_carriers<'a>(
        &self,
        lookup: impl Fn(&str) -> Option<&'a [u8]>,
        baggage: impl IntoIterator<Item = &'a [u8]>,
    ) -> Option<HeaderParts<'a>> {
        match HeaderParts::read(lookup, baggage, self.shared.signer.as_ref()) {
            Ok(test) => test,
            Err(error) => {
                let metrics = &self.shared.metrics;
                match error {
                    HeaderError::Unsigned => metrics.headers_unsigned.inc(),
                    HeaderError::BadSignature => metrics.headers_bad_signature.inc(),
                    _ => metrics.headers_malformed.inc(),
                }
                if metrics.first_time(error.cause()) {
                    tracing::warn!(%error, cause = error.cause(), "ignoring LiveCheck headers: no test (logged once per cause)");
                } else {
                    tracing::debug!(%error, cause = error.cause(), "ignoring LiveCheck headers: no test");
                }
                None
            }
        }
    }
}
