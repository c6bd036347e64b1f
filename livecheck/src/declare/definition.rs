//! A case file's content: the case's name, settings, alert webhooks, steps and fake request, as written (serde,
//! checked field by field where it is read, so an error names the line) and as run.

use std::{collections::BTreeMap, time::Duration};

use serde::Deserialize;
use serde_json::Value;

use super::{
    assertion::{Assertion, WrittenAssertion},
    duration::FileDuration,
    template::{JsonTemplate, Template},
};
use crate::{spans::SpanSelector, CaseSettings};

/// How long a step waits for its signal when neither it nor the case says.
pub(crate) const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// A case as a file declares it.
#[derive(Clone, Debug)]
pub struct CaseDefinition {
    pub(crate) settings: CaseSettings,
    pub(crate) alert_webhooks: Vec<String>,
    pub(crate) steps: Vec<Step>,
    pub(crate) fake_request: Option<FakeRequest>,
}

impl CaseDefinition {
    /// The case's name.
    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// Its settings (those the file sets, the defaults otherwise).
    pub fn settings(&self) -> &CaseSettings {
        &self.settings
    }

    /// The alert webhooks the file names (the instance sends every case's alerts to each).
    pub fn alert_webhooks(&self) -> &[String] {
        &self.alert_webhooks
    }

    /// The signals it waits for, in order.
    pub fn signal_names(&self) -> Vec<&str> {
        self.stages().map(|stage| stage.signal.as_str()).collect()
    }

    /// Every stage, in order (the members of a parallel group in the file's order).
    pub(crate) fn stages(&self) -> impl Iterator<Item = &Stage> {
        self.steps.iter().flat_map(|step| step.stages.iter())
    }
}

/// One step: one stage, or a group of stages awaited together.
#[derive(Clone, Debug)]
pub(crate) struct Step {
    pub(crate) stages: Vec<Stage>,
}

/// A signal awaited, and the contracts on its value.
#[derive(Clone, Debug)]
pub(crate) struct Stage {
    pub(crate) signal: String,
    pub(crate) timeout: Duration,
    /// The soft latency budget, from the test's issue: over it the stage is slow, not broken.
    pub(crate) budget: Option<Duration>,
    /// When the signal is a span: which spans are this signal.
    pub(crate) span: Option<SpanSelector>,
    pub(crate) assertions: Vec<Assertion>,
}

/// The request made every `frequency` on the leader.
#[derive(Clone, Debug)]
pub(crate) struct FakeRequest {
    pub(crate) method: http::Method,
    pub(crate) url: Template,
    pub(crate) headers: Vec<(http::HeaderName, Template)>,
    pub(crate) body: Option<FakeBody>,
    /// Whether it starts a test of the case first (and carries its headers).
    pub(crate) trigger: bool,
    pub(crate) args: Value,
}

#[derive(Clone, Debug)]
pub(crate) enum FakeBody {
    Json(JsonTemplate),
    Text(Template),
}

// What the file says, checked as it is read.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WrittenCase {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) settings: WrittenSettings,
    #[serde(default)]
    pub(crate) alert_webhooks: Vec<String>,
    /// The timeout of steps that name none.
    #[serde(default)]
    pub(crate) timeout: Option<FileDuration>,
    pub(crate) steps: Vec<WrittenStep>,
    #[serde(default)]
    pub(crate) fake_request: Option<WrittenFakeRequest>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WrittenSettings {
    #[serde(default, deserialize_with = "probability")]
    probability: Option<f64>,
    warn_stalled_after: Option<FileDuration>,
    test_expires: Option<FileDuration>,
    frequency: Option<FileDuration>,
    max_history: Option<Positive>,
    max_consecutive_failures: Option<Positive>,
    state_transition_delay: Option<FileDuration>,
    active: Option<bool>,
    realtime_logs: Option<bool>,
    url_timeout_total: Option<FileDuration>,
    url_timeout_connect: Option<FileDuration>,
    url_error_retries: Option<u32>,
    url_error_delay_min: Option<FileDuration>,
    #[serde(default, deserialize_with = "backoff")]
    url_error_delay_backoff: Option<f64>,
    url_error_delay_max: Option<FileDuration>,
    failure_rate: Option<WrittenFailureRate>,
    min_pass_rate: Option<WrittenMinPassRate>,
    min_pass_rate_executions: Option<Positive>,
}

/// A count above 0 (and below 10⁹).
#[derive(Clone, Copy, Deserialize)]
#[serde(try_from = "u64")]
struct Positive(u32);

impl TryFrom<u64> for Positive {
    type Error = String;
    fn try_from(value: u64) -> Result<Self, String> {
        match u32::try_from(value) {
            Ok(value) if value > 0 && value < 1_000_000_000 => Ok(Positive(value)),
            _ => Err(format!("expected a count from 1 to 999999999, not {value}")),
        }
    }
}

fn probability<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    let value = f64::deserialize(deserializer)?;
    if (0.0..=1.0).contains(&value) {
        Ok(Some(value))
    } else {
        Err(serde::de::Error::custom(format!("probability is from 0 to 1, not {value}")))
    }
}

fn backoff<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    let value = f64::deserialize(deserializer)?;
    if (1.0..=100.0).contains(&value) {
        Ok(Some(value))
    } else {
        Err(serde::de::Error::custom(format!("url_error_delay_backoff is from 1 to 100, not {value}")))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WrittenFailureRate {
    failures: Positive,
    of_last: Positive,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WrittenMinPassRate {
    min_rate: f64,
    window: FileDuration,
}

impl WrittenSettings {
    /// The settings of case `name`: the file's, the defaults for the others.
    pub(crate) fn into_settings(self, name: &str) -> Result<CaseSettings, String> {
        let mut settings = CaseSettings::new(name);
        let d = |written: Option<FileDuration>| written.map(|d| d.0);
        if let Some(p) = self.probability {
            settings.probability = p;
        }
        if let Some(v) = d(self.warn_stalled_after) {
            settings.warn_stalled_after = v;
        }
        if let Some(v) = d(self.test_expires) {
            settings.test_expires = v;
        }
        settings.frequency = d(self.frequency);
        if let Some(v) = self.max_history {
            settings.max_history = v.0 as usize;
        }
        if let Some(v) = self.max_consecutive_failures {
            settings.max_consecutive_failures = v.0;
        }
        if let Some(v) = d(self.state_transition_delay) {
            settings.state_transition_delay = v;
        }
        if let Some(v) = self.active {
            settings.active = v;
        }
        if let Some(v) = self.realtime_logs {
            settings.realtime_logs = v;
        }
        if let Some(v) = d(self.url_timeout_total) {
            settings.url_timeout_total = v;
        }
        settings.url_timeout_connect = d(self.url_timeout_connect);
        if let Some(v) = self.url_error_retries {
            settings.url_error_retries = v.min(1000);
        }
        if let Some(v) = d(self.url_error_delay_min) {
            settings.url_error_delay_min = v;
        }
        if let Some(v) = self.url_error_delay_backoff {
            settings.url_error_delay_backoff = v;
        }
        if let Some(v) = d(self.url_error_delay_max) {
            settings.url_error_delay_max = v;
        }
        if let Some(rate) = self.failure_rate {
            settings = settings.failure_rate(rate.failures.0, rate.of_last.0);
        }
        if let Some(rate) = self.min_pass_rate {
            settings = settings.min_pass_rate(rate.min_rate, rate.window.0);
        }
        if let Some(v) = self.min_pass_rate_executions {
            settings = settings.min_pass_rate_executions(v.0);
        }
        settings.check_alert_policies().map_err(|error| match error {
            crate::Error::Config(message) => message,
            other => other.to_string(),
        })?;
        Ok(settings)
    }
}

/// A step as written: `signal: NAME` (with its own fields) or `parallel: [stages]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WrittenStep {
    #[serde(default)]
    signal: Option<String>,
    #[serde(default)]
    parallel: Option<Vec<WrittenStage>>,
    #[serde(default)]
    timeout: Option<FileDuration>,
    #[serde(default)]
    budget: Option<FileDuration>,
    #[serde(default)]
    span: Option<WrittenSpan>,
    #[serde(default, rename = "assert")]
    assertions: Vec<Assertion>,
}

/// A member of a parallel group.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WrittenStage {
    signal: String,
    #[serde(default)]
    timeout: Option<FileDuration>,
    #[serde(default)]
    budget: Option<FileDuration>,
    #[serde(default)]
    span: Option<WrittenSpan>,
    #[serde(default, rename = "assert")]
    assertions: Vec<Assertion>,
}

impl<'de> Deserialize<'de> for Assertion {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let written = WrittenAssertion::deserialize(deserializer)?;
        Assertion::try_from(written).map_err(serde::de::Error::custom)
    }
}

/// Which spans are the signal: all criteria must hold.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WrittenSpan {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    attributes: BTreeMap<String, Value>,
}

impl WrittenSpan {
    fn selector(self) -> SpanSelector {
        let selector = self.name.map_or_else(SpanSelector::any, SpanSelector::named);
        let selector = match self.service {
            Some(service) => selector.service(service),
            None => selector,
        };
        self.attributes.into_iter().fold(selector, |selector, (key, value)| selector.attribute(key, value))
    }
}

impl WrittenStep {
    /// The step, each stage's timeout being its own or `default_timeout`.
    pub(crate) fn into_step(self, default_timeout: Duration) -> Result<Step, String> {
        let stage = |signal: String,
                     timeout: Option<FileDuration>,
                     budget: Option<FileDuration>,
                     span: Option<WrittenSpan>,
                     assertions|
         -> Result<Stage, String> {
            check_name("signal", &signal)?;
            let timeout = timeout.map_or(default_timeout, |t| t.0);
            let budget = budget.map(|b| b.0);
            Ok(Stage { signal, timeout, budget, span: span.map(WrittenSpan::selector), assertions })
        };
        match (self.signal, self.parallel) {
            (Some(signal), None) => {
                Ok(Step { stages: vec![stage(signal, self.timeout, self.budget, self.span, self.assertions)?] })
            }
            (None, Some(group)) => {
                if self.timeout.is_some() || self.budget.is_some() || self.span.is_some() || !self.assertions.is_empty()
                {
                    return Err(
                        "a `parallel` step holds only its stages (put timeout, budget, span and assert on each)".into(),
                    );
                }
                if group.is_empty() {
                    return Err("a `parallel` group needs at least one stage".into());
                }
                let stages = group
                    .into_iter()
                    .map(|s| stage(s.signal, s.timeout, s.budget, s.span, s.assertions))
                    .collect::<Result<_, _>>()?;
                Ok(Step { stages })
            }
            (Some(_), Some(_)) => Err("a step is `signal: NAME` or `parallel: [...]`, not both".into()),
            (None, None) => Err("a step needs `signal: NAME` or `parallel: [...]`".into()),
        }
    }
}

/// A name (of a case, a signal): 1 to 256 bytes, no control characters.
pub(crate) fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 256 || name.chars().any(char::is_control) {
        return Err(format!("a {what} name is 1 to 256 characters without control characters"));
    }
    Ok(())
}

/// The fake request as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WrittenFakeRequest {
    #[serde(default)]
    method: Option<String>,
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Option<Value>,
    #[serde(default)]
    trigger: bool,
    #[serde(default)]
    args: Option<Value>,
}

impl WrittenFakeRequest {
    pub(crate) fn into_fake_request(self) -> Result<FakeRequest, String> {
        let method = self.method.as_deref().unwrap_or("GET").to_ascii_uppercase();
        let method =
            http::Method::from_bytes(method.as_bytes()).map_err(|_| format!("`{method}` is not an HTTP method"))?;
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(format!("the fake request's url `{}` must start with http:// or https://", self.url));
        }
        let url = Template::parse(&self.url)?;
        let headers = self
            .headers
            .into_iter()
            .map(|(name, value)| {
                let header = http::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("`{name}` is not a header name"))?;
                if value.contains(['\r', '\n']) {
                    return Err(format!("header `{name}`: a value is one line"));
                }
                Ok((header, Template::parse(&value)?))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let body = match self.body {
            None => None,
            Some(Value::String(text)) => Some(FakeBody::Text(Template::parse(&text)?)),
            Some(json) => Some(FakeBody::Json(JsonTemplate::parse(json)?)),
        };
        let args = match self.args {
            None | Some(Value::Null) => Value::Object(Default::default()),
            Some(args @ (Value::Object(_) | Value::Array(_))) => args,
            Some(_) => return Err("the fake request's `args` are an object (named) or a list (positional)".into()),
        };
        let uses_test_id = url.uses_test_id()
            || headers.iter().any(|(_, value)| value.uses_test_id())
            || match &body {
                Some(FakeBody::Json(json)) => json.uses_test_id(),
                Some(FakeBody::Text(text)) => text.uses_test_id(),
                None => false,
            };
        if uses_test_id && !self.trigger {
            return Err("`{{test.id}}` is there only when the fake request starts a test (`trigger: true`)".into());
        }
        Ok(FakeRequest { method, url, headers, body, trigger: self.trigger, args })
    }
}
