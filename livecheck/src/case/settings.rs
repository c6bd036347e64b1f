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
}

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
        }
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
