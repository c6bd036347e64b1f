use std::{sync::Arc, time::Duration};

use super::{Config, LiveCheck, Registry, Shared, StreamNames};
#[cfg(feature = "http")]
use crate::alert::Webhooks;
use crate::{
    alert::Alerts,
    clock::Clock,
    context::{Carriers, Signer, SIGNING_SECRET_ENV, SIGNING_SECRET_PREVIOUS_ENV},
    observe::{Observer, Observers},
    publish::{Publisher, PublisherParts},
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
    max_in_flight_bytes: usize,
    bus_concurrency: usize,
    send_reports: bool,
    count_tests_by_hand: bool,
    clock: Clock,
    draw: Option<Box<dyn Fn() -> f64 + Send + Sync>>,
    early_signal_limit: usize,
    early_signal_bytes: usize,
    max_message_bytes: usize,
    signal_send_timeout: Duration,
    stats_interval: Duration,
    shutdown_timeout: Duration,
    execution_history: usize,
    trace_url: Option<String>,
    remembered_reports: usize,
    lag_threshold: u64,
    /// What runs beside the instance (the web server, when configured).
    pub(super) companions: Vec<Box<dyn super::companion::Companion>>,
    signing_secret: Option<Vec<u8>>,
    previous_signing_secret: Option<Vec<u8>>,
    context_carriers: Carriers,
    dead_letter_stream: Option<String>,
    #[cfg(feature = "http")]
    alert_webhooks: Vec<String>,
    #[cfg(feature = "http")]
    alert_webhook_secret: Option<Vec<u8>>,
    #[cfg(feature = "http")]
    alert_instance: Option<String>,
    #[cfg(feature = "http")]
    alert_dashboard_url: Option<String>,
    observers: Vec<Arc<dyn Observer>>,
    service_version: Option<String>,
}

impl Default for LiveCheckBuilder {
    fn default() -> Self {
        LiveCheckBuilder {
            transport: None,
            streams: StreamNames::default(),
            group: "livecheck".into(),
            partitions: None,
            max_concurrent_tests: 100,
            max_in_flight_bytes: 32 << 20,
            bus_concurrency: 30,
            send_reports: true,
            count_tests_by_hand: false,
            clock: Clock::System,
            draw: None,
            early_signal_limit: 100_000,
            early_signal_bytes: 64 << 20,
            max_message_bytes: 1 << 20,
            signal_send_timeout: Duration::from_secs(2),
            stats_interval: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(5),
            execution_history: 50,
            trace_url: None,
            remembered_reports: super::reported::DEFAULT_REMEMBERED,
            lag_threshold: 10_000,
            companions: Vec::new(),
            signing_secret: None,
            previous_signing_secret: None,
            context_carriers: Carriers::Both,
            dead_letter_stream: None,
            #[cfg(feature = "http")]
            alert_webhooks: Vec::new(),
            #[cfg(feature = "http")]
            alert_webhook_secret: None,
            #[cfg(feature = "http")]
            alert_instance: None,
            #[cfg(feature = "http")]
            alert_dashboard_url: None,
            observers: Vec::new(),
            service_version: None,
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

    /// How many bytes of pending tests the instance holds at most, executing or waiting their turn (default 32 MiB;
    /// a test's bytes are its message's: id, case, arguments, headers). Besides `max_concurrent_tests`: tests with
    /// big arguments wait (the pending-tests stream is paused) rather than lift the instance's memory; a test
    /// bigger than the whole bound still runs, alone. See the README's "Memory" for the instance's worst case.
    pub fn max_in_flight_bytes(mut self, bytes: usize) -> Self {
        self.max_in_flight_bytes = bytes.max(1);
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

    /// Whether tests started by hand (`livecheck trigger`, [`LiveCheck::trigger_by_name`]) count in their case's
    /// health — its status, failure policies, stall detection — and so in its alerts (default false: a test run
    /// by hand to try something cannot fail a suite or page anyone). Their verdicts are logged, reported and kept
    /// in the history either way.
    pub fn count_tests_by_hand(mut self, count: bool) -> Self {
        self.count_tests_by_hand = count;
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

    /// Copies every pending-test, signal or agent message that cannot be read (too large, or not what its stream
    /// carries) to `stream` before skipping it, with headers saying why (`LiveCheck-Dead-Letter-Cause`: `too_large`
    /// or `malformed`, `-Error`) and where from (`-Stream`, `-Partition`, `-Offset`); values are cut at
    /// `max_message_bytes` (`-Truncated-From` gives the size). Default: off, such messages are only counted.
    /// Counted in `metrics().dead_letters_published` / `dead_letters_failed`.
    pub fn dead_letter_stream(mut self, stream: impl Into<String>) -> Self {
        self.dead_letter_stream = Some(stream.into()).filter(|s| !s.is_empty());
        self
    }

    /// How many messages behind the end of its partitions of the pending-tests or bus stream the instance may be
    /// before it counts as lagging (default 10 000; checked every 2 s). While it lags, a TIMEOUT may be its own
    /// fault — the signal is on the bus, not read yet — so such verdicts are marked unknown and kept out of the
    /// cases' failure counts and alert policies, and `/api/status` shows `lagging`.
    pub fn lag_threshold(mut self, messages: u64) -> Self {
        self.lag_threshold = messages;
        self
    }

    /// The largest pending-test or signal message the instance reads (default 1 MiB); bigger ones are dropped and
    /// counted (`metrics().messages_too_large`) without being decoded.
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes.max(1);
        self
    }

    /// The longest `Signal::send` waits for the log or broker to take a signal (default 2 s). A service's request
    /// is not held up longer when the broker is away: the signal stays queued in the producer and goes out when it
    /// can, unconfirmed (counted in `metrics().signals_unconfirmed`, logged once).
    pub fn signal_send_timeout(mut self, timeout: Duration) -> Self {
        self.signal_send_timeout = timeout;
        self
    }

    /// How often case statistics are logged (default 10 s).
    pub fn stats_interval(mut self, every: Duration) -> Self {
        self.stats_interval = every.max(Duration::from_millis(1));
        self
    }

    /// How long a stopping instance still tries to publish what is under way (default 5 s): the reports of the
    /// executions that reached a verdict, suite reports and alerts being published or retried (a full disk, a
    /// broker away, a webhook down), and its last commits. Past it, [`Running::shutdown`](crate::Running::shutdown)
    /// gives them up and returns (within a second more, leaving behind, with a warning, a task still stuck), after
    /// logging what could not be published, one line per kind: the reports (by test id), the suite reports and
    /// the alerts. An execution whose report is not out is not committed, so it runs again after a restart.
    ///
    /// The transport's threads get the same deadline: dropping it afterwards waits no longer (see
    /// [`Transport::set_drop_deadline`](crate::transport::Transport::set_drop_deadline)). Test bodies do not wait
    /// for it: shutdown interrupts them at once.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// How many finished executions each case keeps for [`LiveCheck::recent_executions`] and the web API
    /// (default 50; 0 keeps none). They are kept without their signal values, with at most their last 100 steps.
    pub fn execution_history(mut self, executions: usize) -> Self {
        self.execution_history = executions;
        self
    }

    /// Links each execution to the trace of the request it was sampled from: `template` with `{trace_id}`
    /// replaced by the trace id, e.g. `http://grafana:3000/explore?traceId={trace_id}` or
    /// `http://jaeger:16686/trace/{trace_id}`. Shown as `trace_url` in the execution records (the JSON API) and as
    /// a link on the dashboard. Off by default (the trace id alone is shown).
    pub fn trace_url(mut self, template: impl Into<String>) -> Self {
        self.trace_url = Some(template.into());
        self
    }

    /// How many reported executions the instance remembers, so that a copy of one arriving later (delivered
    /// again, replayed, or written twice by a producer's retry) is never run again (default 250 000, about 64
    /// bytes each: 16 MiB at most). Each is remembered until its expiry plus 10 minutes; beyond the limit, those
    /// expiring first are forgotten (counted in `reports_forgotten`). See the README's "Exactly one report".
    pub fn remembered_reports(mut self, executions: usize) -> Self {
        self.remembered_reports = executions;
        self
    }

    /// Signs the test context this app writes with `secret`, and requires a valid signature on the test context
    /// it reads (HTTP requests through the `http` layer, messages of agents and of
    /// [`LiveCheck::test_from_headers`], signals on the bus). Headers without one, or with one that matches neither
    /// this secret nor the [previous](LiveCheckBuilder::previous_signing_secret) one, mean no test, and are counted
    /// (`headers_unsigned`, `headers_bad_signature`).
    ///
    /// The signature travels in a fifth header, [`crate::context::HEADER_SIGNATURE`]: lowercase hex of
    /// HMAC-SHA256(secret, `id \n name \n timestamp \n expires`), over the four header values. Every service and
    /// LiveCheck instance sharing tests needs the same secret.
    ///
    /// Default: the [`LIVECHECK_SIGNING_SECRET`](crate::context::SIGNING_SECRET_ENV) environment variable (and
    /// [`LIVECHECK_SIGNING_SECRET_PREVIOUS`](crate::context::SIGNING_SECRET_PREVIOUS_ENV)), read by [`Self::build`];
    /// unset or empty, signing is off and test context is read and written as without this option. An empty
    /// `secret` here turns signing off whatever the environment says.
    pub fn signing_secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.signing_secret = Some(secret.into());
        self
    }

    /// The version of this service (`1.4.2`, a git hash, an image tag): written on the executions it samples and
    /// the signals it sends, so that results are counted per version and a canary can be compared with its
    /// baseline (see [`crate::gate`]). Default: the [`LIVECHECK_SERVICE_VERSION`](crate::wire::SERVICE_VERSION_ENV)
    /// environment variable, read by [`Self::build`]. Up to 64 ASCII letters, digits or `. - _ + : / @ ~`; anything
    /// else is no version (logged).
    pub fn service_version(mut self, version: impl Into<String>) -> Self {
        self.service_version = Some(version.into());
        self
    }

    /// A secret still accepted on the test context read, not used to sign: the one used before the current
    /// [`signing_secret`](Self::signing_secret), while a new secret is rolled out.
    ///
    /// To rotate without losing tests: give every process the new secret as the previous one; then make it the
    /// current one everywhere, with the old one as the previous; then drop the old one.
    pub fn previous_signing_secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.previous_signing_secret = Some(secret.into());
        self
    }

    /// Where this app writes the test context on the messages it publishes — executions (`trigger`, …), signals,
    /// [`Topic::send`](crate::stream::Topic::send): the `LiveCheck-*` headers, the `livecheck.test.*` members of
    /// the W3C `baggage` header, or both (the default: Faust reads the headers, OpenTelemetry-instrumented services
    /// carry the baggage). Reading always accepts both, the headers first. Writers without an app —
    /// [`TestContext::append_to`](crate::TestContext::append_to),
    /// [`append_current_test`](crate::context::append_current_test), reqwest's
    /// [`with_current_test`](crate::http::RequestBuilderExt::with_current_test),
    /// [`TestContext::header_pairs`](crate::TestContext::header_pairs) — write both.
    pub fn context_carriers(mut self, carriers: Carriers) -> Self {
        self.context_carriers = carriers;
        self
    }

    /// Adds a webhook that alerts are POSTed to (feature `http`): a suite failure (`suite_failed`, `stalled`,
    /// `service_down`) and a recovery (`recovered`) of any case this instance runs, as JSON (see
    /// [`crate::alert::Alert`]). Call it once per webhook. Delivered in the background, retried with backoff (5
    /// attempts at most); every attempt is listed by [`LiveCheck::alert_deliveries`]. An invalid URL makes
    /// [`LiveCheck::start`] fail.
    ///
    /// Default: the URLs in [`LIVECHECK_ALERT_WEBHOOKS`](crate::alert::ALERT_WEBHOOKS_ENV) (separated by commas or
    /// whitespace), read by [`Self::build`]; none, no webhooks (alerts are still logged).
    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub fn alert_webhook(mut self, url: impl Into<String>) -> Self {
        self.alert_webhooks.push(url.into());
        self
    }

    /// Signs alerts with `secret` (feature `http`): each POST carries
    /// [`LiveCheck-Webhook-Signature`](crate::alert::HEADER_WEBHOOK_SIGNATURE)`: sha256=<hex>`, the lowercase hex of
    /// HMAC-SHA256(secret, body), for the receiver to check.
    ///
    /// Default: [`LIVECHECK_ALERT_WEBHOOK_SECRET`](crate::alert::ALERT_WEBHOOK_SECRET_ENV); unset or empty, alerts
    /// are not signed. An empty `secret` here turns signing off whatever the environment says.
    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub fn alert_webhook_secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.alert_webhook_secret = Some(secret.into());
        self
    }

    /// The instance's name in its alerts (feature `http`; the `instance` field, PagerDuty's `source`,
    /// Alertmanager's `instance` label). Default: [`LIVECHECK_ALERT_INSTANCE`](crate::alert::ALERT_INSTANCE_ENV),
    /// else the host's name.
    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub fn alert_instance(mut self, name: impl Into<String>) -> Self {
        self.alert_instance = Some(name.into());
        self
    }

    /// The dashboard alerts link to (feature `http`), e.g. the URL operators reach the instance's web server at
    /// through a proxy. Default: [`LIVECHECK_DASHBOARD_URL`](crate::alert::DASHBOARD_URL_ENV), else the web
    /// server's own address when it serves one (`http://127.0.0.1:9999/`), else none.
    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub fn alert_dashboard_url(mut self, url: impl Into<String>) -> Self {
        self.alert_dashboard_url = Some(url.into());
        self
    }

    /// Adds an observer, told of every execution that reaches its verdict and every change of a case's health on
    /// this app's instance, in the order added (after the alerts; the web server's metrics are added when it is
    /// bound). See [`crate::observe`].
    pub fn observer(mut self, observer: impl Observer) -> Self {
        self.observers.push(Arc::new(observer));
        self
    }

    /// The app.
    pub fn build(self) -> LiveCheck {
        let env = |name: &str| std::env::var_os(name).map(std::ffi::OsString::into_encoded_bytes);
        let signer = signer(self.signing_secret, self.previous_signing_secret, env);
        #[cfg(feature = "http")]
        let alerts = {
            let env = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
            let sender = crate::alert::AlertSender::new(
                self.alert_instance.or_else(|| env(crate::alert::ALERT_INSTANCE_ENV)),
                self.alert_dashboard_url.or_else(|| env(crate::alert::DASHBOARD_URL_ENV)),
            );
            Alerts::new(Webhooks::configure(self.alert_webhooks, self.alert_webhook_secret, env), sender)
        };
        #[cfg(not(feature = "http"))]
        let alerts = Alerts::new();
        let alerts = Arc::new(alerts);
        let observers = Observers::default();
        observers.add(alerts.clone());
        for observer in self.observers {
            observers.add(observer);
        }
        let transport = self.transport.unwrap_or_else(|| Arc::new(MemoryTransport::new()));
        let metrics = Arc::<super::Metrics>::default();
        let publisher = Arc::new(Publisher::new(PublisherParts {
            transport: transport.clone(),
            streams: self.streams.clone(),
            partitions: self.partitions,
            clock: self.clock.clone(),
            signer: signer.clone(),
            carriers: self.context_carriers,
            metrics: metrics.clone(),
            draw: self.draw.unwrap_or_else(|| Box::new(fastrand::f64)),
            signal_send_timeout: self.signal_send_timeout,
            service_version: service_version(self.service_version.as_deref(), |name| std::env::var(name).ok()),
        }));
        LiveCheck {
            shared: Arc::new(Shared {
                transport,
                publisher,
                group_health: Default::default(),
                streams: self.streams,
                clock: self.clock,
                router: SignalRouter::new(self.early_signal_limit, self.early_signal_bytes),
                reported: super::reported::ReportedExecutions::new(self.remembered_reports),
                traces: Default::default(),
                group_view: Default::default(),
                lag: Default::default(),
                metrics,
                signer,
                dead_letters: self.dead_letter_stream.map(super::dead_letter::DeadLetters::new),
                alerts,
                observers,
                consumers: Default::default(),
                stopping: Default::default(),
                config: Config {
                    group: self.group,
                    partitions: self.partitions,
                    max_concurrent_tests: self.max_concurrent_tests,
                    max_in_flight_bytes: self.max_in_flight_bytes,
                    bus_concurrency: self.bus_concurrency,
                    send_reports: self.send_reports,
                    count_tests_by_hand: self.count_tests_by_hand,
                    max_message_bytes: self.max_message_bytes,
                    stats_interval: self.stats_interval,
                    shutdown_timeout: self.shutdown_timeout,
                    execution_history: self.execution_history,
                    trace_url: self.trace_url,
                    lag_threshold: self.lag_threshold,
                },
                companions: self.companions,
            }),
            registry: Arc::new(Registry::default()),
        }
    }
}

/// The signer for the secrets set on the builder, else those in the environment (read through `env`).
fn signer(
    current: Option<Vec<u8>>,
    previous: Option<Vec<u8>>,
    env: impl Fn(&str) -> Option<Vec<u8>>,
) -> Option<Signer> {
    let (current, previous) = match current {
        Some(current) => (current, previous),
        None => (env(SIGNING_SECRET_ENV).unwrap_or_default(), previous.or_else(|| env(SIGNING_SECRET_PREVIOUS_ENV))),
    };
    let signer = Signer::new(&current, previous.as_deref());
    if signer.is_none() && previous.is_some_and(|p| !p.is_empty()) {
        tracing::warn!("a previous signing secret without a current one: test context signing is off");
    }
    signer
}

/// The version given to the builder, else the one in the environment; `None` (logged) when it is not a version.
fn service_version(given: Option<&str>, env: impl Fn(&str) -> Option<String>) -> Option<Arc<str>> {
    let version = given.map(str::to_owned).or_else(|| env(crate::wire::SERVICE_VERSION_ENV))?;
    let valid = crate::wire::valid_service_version(&version);
    if valid.is_none() && !version.trim().is_empty() {
        tracing::warn!(version, "not a service version (1 to 64 letters, digits or . - _ + : / @ ~): none is sent");
    }
    valid.map(Arc::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<Vec<u8>> {
        move |name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_bytes().to_vec())
    }

    const VALUES: [&str; 4] = ["id", "case", "2026-11-25T01:51:06+00:00", "2026-11-25T04:51:06+00:00"];

    /// Which of `secrets` the signer signs with.
    fn signs_with(signer: &Signer, secret: &str) -> bool {
        signer.sign(VALUES) == Signer::new(secret.as_bytes(), None).unwrap().sign(VALUES)
    }

    #[test]
    fn signing_is_off_without_secrets() {
        assert!(signer(None, None, env(&[])).is_none());
        assert!(signer(None, None, env(&[(SIGNING_SECRET_ENV, "")])).is_none());
        assert!(signer(None, Some(b"old".to_vec()), env(&[])).is_none(), "a previous secret alone signs nothing");
    }

    #[test]
    fn secrets_come_from_the_environment_unless_set_on_the_builder() {
        let vars = env(&[(SIGNING_SECRET_ENV, "from-env"), (SIGNING_SECRET_PREVIOUS_ENV, "old-env")]);
        let from_env = signer(None, None, &vars).unwrap();
        assert!(signs_with(&from_env, "from-env"));
        let old = Signer::new(b"old-env", None).unwrap();
        assert!(from_env.verify(VALUES, old.sign(VALUES).as_bytes()).is_some(), "previous secret from the environment");

        let explicit = signer(Some(b"explicit".to_vec()), None, &vars).unwrap();
        assert!(signs_with(&explicit, "explicit"));
        assert!(explicit.verify(VALUES, old.sign(VALUES).as_bytes()).is_none(), "set on the builder: no environment");

        assert!(signer(Some(Vec::new()), None, &vars).is_none(), "an empty secret turns signing off");
    }
}
