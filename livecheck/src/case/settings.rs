use std::time::Duration;

/// How a case runs: name, sampling, health thresholds and the HTTP settings of its fake requests.
///
/// Every setting has the default the Python original has (see the README's table).
///
/// ```
/// use std::time::Duration;
/// let settings = livecheck::CaseSettings::new("test_order")
///     .probability(0.5)
///     .warn_stalled_after(Duration::from_secs(5))
///     .frequency(Duration::from_millis(500));
/// assert_eq!(settings.max_consecutive_failures, 30);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct CaseSettings {
    /// The case's name on the wire; stable across releases, so choose it deliberately.
    pub name: String,
    /// Chance that `maybe_trigger` starts a test (0.5).
    pub probability: f64,
    /// No test started for this long → STALL (30 min).
    pub warn_stalled_after: Duration,
    /// An execution older than this is skipped (3 h).
    pub test_expires: Duration,
    /// Period of `make_fake_request`, on the leader only (none).
    pub frequency: Option<Duration>,
    /// Samples kept for the runtime / frequency / latency medians (100).
    pub max_history: usize,
    /// Failing tests in a row before the suite fails (30).
    pub max_consecutive_failures: u32,
    /// How long a failed suite stays failed before it may recover, and how often a repeated suite failure is
    /// re-reported (60 s).
    pub state_transition_delay: Duration,
    /// Inactive cases skip their tests (true).
    pub active: bool,
    /// Log each step as it happens instead of one block at the end (false).
    pub realtime_logs: bool,
    /// Total timeout of one fake-request HTTP call (300 s).
    pub url_timeout_total: Duration,
    /// Connect timeout of one fake-request HTTP call (none).
    pub url_timeout_connect: Option<Duration>,
    /// Retries before the service is declared down (10).
    pub url_error_retries: u32,
    /// First retry delay (0.5 s).
    pub url_error_delay_min: Duration,
    /// Factor applied to the delay after each retry (1.5).
    pub url_error_delay_backoff: f64,
    /// Longest retry delay (5 s).
    pub url_error_delay_max: Duration,
    /// Alert policy: the suite fails when this many of the last executions failed (off).
    pub failure_rate: Option<FailureRate>,
    /// Alert policy: the suite fails when the pass rate over a time window falls below a minimum (off).
    pub min_pass_rate: Option<MinPassRate>,
    /// The fewest executions finished within the window for [`CaseSettings::min_pass_rate`] to judge (10): one
    /// failure of one is not a pass rate of 0 %.
    pub min_pass_rate_executions: u32,
    /// Signals that are spans: the signal's name and the selector that picks its span (see
    /// [`CaseSettings::span_signal`]).
    pub span_signals: Vec<(String, crate::spans::SpanSelector)>,
    /// Latency budgets: a declared signal and the most it may take from the test's issue before a passing
    /// execution is DEGRADED (see [`CaseSettings::signal_budget`]).
    pub signal_budgets: Vec<(String, Duration)>,
    /// Alert policy: the suite is DEGRADED when too many executions over a time window were (off).
    pub max_degraded_rate: Option<MaxDegradedRate>,
}

/// Alert policy "more than X degraded over W": the suite is DEGRADED (a suite failure of kind `degraded_rate`,
/// alerted like the others, not counted as failing) when, of the executions that passed or were degraded within
/// the last `window`, more than `max_rate` were degraded — once at least
/// [`CaseSettings::min_pass_rate_executions`] finished in it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MaxDegradedRate {
    /// X: the highest acceptable share of degraded executions, in `0.0..=1.0`.
    pub max_rate: f64,
    /// W: how far back executions count.
    pub window: Duration,
}

/// Alert policy "N of the last M executions failed": the suite fails (kind `failure_rate`) when at least `failures`
/// of the last `of_last` finished executions failed (FAIL, ERROR or TIMEOUT; SKIP is not an execution that
/// counts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailureRate {
    /// N: failed executions that fail the suite.
    pub failures: u32,
    /// M: how many of the last finished executions are looked at.
    pub of_last: u32,
}

/// Alert policy "pass rate below X over W": the suite fails (kind `pass_rate`) when, of the executions that
/// finished within the last `window`, fewer than `min_rate` passed — once at least
/// [`CaseSettings::min_pass_rate_executions`] finished in it.
///
/// The window slides in steps of 1/60 of its length: it covers the last `window` and at most one step more.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MinPassRate {
    /// X: the lowest acceptable share of passing executions, in `0.0..=1.0`.
    pub min_rate: f64,
    /// W: how far back executions count.
    pub window: Duration,
}

/// Executions kept for [`FailureRate::of_last`] at most: the policy's memory stays bounded.
pub(crate) const MAX_FAILURE_RATE_WINDOW: u32 = 10_000;

impl CaseSettings {
    /// Defaults for a case named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        CaseSettings {
            name: name.into(),
            probability: 0.5,
            warn_stalled_after: Duration::from_secs(30 * 60),
            test_expires: Duration::from_secs(3 * 60 * 60),
            frequency: None,
            max_history: 100,
            max_consecutive_failures: 30,
            state_transition_delay: Duration::from_secs(60),
            active: true,
            realtime_logs: false,
            url_timeout_total: Duration::from_secs(300),
            url_timeout_connect: None,
            url_error_retries: 10,
            url_error_delay_min: Duration::from_millis(500),
            url_error_delay_backoff: 1.5,
            url_error_delay_max: Duration::from_secs(5),
            failure_rate: None,
            min_pass_rate: None,
            min_pass_rate_executions: 10,
            span_signals: Vec::new(),
            signal_budgets: Vec::new(),
            max_degraded_rate: None,
        }
    }

    /// A latency budget for the declared signal `signal`: besides the hard timeout of its `wait`, it should arrive
    /// within `budget` of the test's issue. An execution that passes with a stage over its budget is DEGRADED: shown
    /// and counted apart, kept out of the failure counts and rates, reported to Faust readers as a PASS with an
    /// `over_budget` field. Call it once per signal.
    ///
    /// ```
    /// use std::time::Duration;
    /// let settings = livecheck::CaseSettings::new("test_order")
    ///     .signal_budget("order_executed", Duration::from_millis(500))
    ///     .max_degraded_rate(0.1, Duration::from_secs(600));
    /// # let _ = settings;
    /// ```
    #[must_use]
    pub fn signal_budget(mut self, signal: impl Into<String>, budget: Duration) -> Self {
        self.signal_budgets.push((signal.into(), budget));
        self
    }

    /// Turns on the alert policy "more than `max_rate` of the executions over `window` were DEGRADED" (see
    /// [`MaxDegradedRate`]).
    #[must_use]
    pub fn max_degraded_rate(mut self, max_rate: f64, window: Duration) -> Self {
        self.max_degraded_rate = Some(MaxDegradedRate { max_rate, window });
        self
    }

    /// The declared signal `signal` is a span: a span of a test of this case that `selector` picks, received by
    /// the instance's OTLP receiver (`POST /v1/traces` on its web server), becomes that signal, its value a
    /// [`crate::spans::Span`] (declare the signal as `Signal<Span>`). A service exporting spans with
    /// OpenTelemetry's baggage span processor needs no LiveCheck code. Call it once per such signal.
    #[must_use]
    pub fn span_signal(mut self, signal: impl Into<String>, selector: crate::spans::SpanSelector) -> Self {
        self.span_signals.push((signal.into(), selector));
        self
    }

    /// Turns on the alert policy "`failures` of the last `of_last` executions failed" (see [`FailureRate`]).
    ///
    /// ```
    /// // A suite failure of kind `failure_rate` when 8 of the last 10 executions failed.
    /// let settings = livecheck::CaseSettings::new("test_order").failure_rate(8, 10);
    /// ```
    #[must_use]
    pub fn failure_rate(mut self, failures: u32, of_last: u32) -> Self {
        self.failure_rate = Some(FailureRate { failures, of_last });
        self
    }

    /// Turns on the alert policy "pass rate below `min_rate` over `window`" (see [`MinPassRate`]), judged once
    /// [`min_pass_rate_executions`](Self::min_pass_rate_executions) executions (10 by default) finished within the
    /// window.
    ///
    /// ```
    /// use std::time::Duration;
    /// // A suite failure of kind `pass_rate` when fewer than 95 % of the last hour's executions passed,
    /// // counted once at least 20 finished in that hour.
    /// let settings = livecheck::CaseSettings::new("test_order")
    ///     .min_pass_rate(0.95, Duration::from_secs(3600))
    ///     .min_pass_rate_executions(20);
    /// ```
    #[must_use]
    pub fn min_pass_rate(mut self, min_rate: f64, window: Duration) -> Self {
        self.min_pass_rate = Some(MinPassRate { min_rate, window });
        self
    }

    /// Sets [`CaseSettings::min_pass_rate_executions`].
    #[must_use]
    pub fn min_pass_rate_executions(mut self, executions: u32) -> Self {
        self.min_pass_rate_executions = executions;
        self
    }

    /// Rejects alert policies that cannot work: N of M with N = 0, N > M or M over 10 000; a pass rate outside
    /// 0..=1 or an empty window.
    pub(crate) fn check_alert_policies(&self) -> crate::Result<()> {
        let name = &self.name;
        if let Some(FailureRate { failures, of_last }) = self.failure_rate {
            if failures == 0 || failures > of_last || of_last > MAX_FAILURE_RATE_WINDOW {
                return Err(crate::Error::Config(format!(
                    "case `{name}`: failure_rate({failures}, {of_last}) needs 1 <= failures <= of_last <= \
                     {MAX_FAILURE_RATE_WINDOW}"
                )));
            }
        }
        if let Some(MinPassRate { min_rate, window }) = self.min_pass_rate {
            if !(0.0..=1.0).contains(&min_rate) || window.is_zero() {
                return Err(crate::Error::Config(format!(
                    "case `{name}`: min_pass_rate needs a rate within 0..=1 and a window longer than 0 \
                     (got {min_rate} over {window:?})"
                )));
            }
        }
        if let Some(MaxDegradedRate { max_rate, window }) = self.max_degraded_rate {
            if !(0.0..=1.0).contains(&max_rate) || window.is_zero() {
                return Err(crate::Error::Config(format!(
                    "case `{name}`: max_degraded_rate needs a rate within 0..=1 and a window longer than 0 \
                     (got {max_rate} over {window:?})"
                )));
            }
        }
        if let Some((signal, budget)) = self.signal_budgets.iter().find(|(_, budget)| budget.is_zero()) {
            return Err(crate::Error::Config(format!(
                "case `{name}`: the budget of `{signal}` must be longer than 0 (got {budget:?})"
            )));
        }
        Ok(())
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $field:ident: $ty:ty),* $(,)?) => {
        impl CaseSettings {
            $(
                $(#[$doc])*
                #[must_use]
                pub fn $field(mut self, value: $ty) -> Self {
                    self.$field = value.into();
                    self
                }
            )*
        }
    };
}

setters! {
    /// Sets [`CaseSettings::probability`] (clamped to 0..=1 when used).
    probability: f64,
    /// Sets [`CaseSettings::warn_stalled_after`].
    warn_stalled_after: Duration,
    /// Sets [`CaseSettings::test_expires`].
    test_expires: Duration,
    /// Sets [`CaseSettings::frequency`].
    frequency: Duration,
    /// Sets [`CaseSettings::max_history`].
    max_history: usize,
    /// Sets [`CaseSettings::max_consecutive_failures`].
    max_consecutive_failures: u32,
    /// Sets [`CaseSettings::state_transition_delay`].
    state_transition_delay: Duration,
    /// Sets [`CaseSettings::active`].
    active: bool,
    /// Sets [`CaseSettings::realtime_logs`].
    realtime_logs: bool,
    /// Sets [`CaseSettings::url_timeout_total`].
    url_timeout_total: Duration,
    /// Sets [`CaseSettings::url_timeout_connect`].
    url_timeout_connect: Duration,
    /// Sets [`CaseSettings::url_error_retries`].
    url_error_retries: u32,
    /// Sets [`CaseSettings::url_error_delay_min`].
    url_error_delay_min: Duration,
    /// Sets [`CaseSettings::url_error_delay_backoff`].
    url_error_delay_backoff: f64,
    /// Sets [`CaseSettings::url_error_delay_max`].
    url_error_delay_max: Duration,
}
