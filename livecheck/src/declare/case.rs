//! The declared case as a [`Case`]: it waits for each step's signals (a parallel group's together, each within
//! its timeout from the group's start), checks each stage's assertions as soon as its step is complete, and makes
//! the file's fake request.

use std::{collections::HashMap, sync::Arc, time::Duration};

use serde_json::Value;
use tokio::time::Instant;

use super::{
    budget,
    definition::{CaseDefinition, FakeBody, Stage},
    template::Fill,
    CaseFile,
};
use crate::{
    http::FakeRequestClient, Case, CaseHandle, CaseResult, CaseSender, Error, LiveCheck, Result, Signal, TestRun,
};

/// A case read from a file, registered on an app.
pub struct DeclaredCase {
    definition: Arc<CaseDefinition>,
    /// Where it was read from (named in failures).
    file: String,
    signals: HashMap<String, Signal<Value>>,
    http: FakeRequestClient,
    /// Starts the tests of fake requests that ask for one.
    sender: CaseSender<Value, ()>,
}

impl CaseFile {
    /// Registers the case on `app` (before it starts): its signals, spans and settings as the file says.
    pub fn register(&self, app: &LiveCheck) -> Result<CaseHandle<DeclaredCase>> {
        let definition = Arc::new(self.definition.clone());
        let mut settings = definition.settings.clone();
        for stage in definition.stages() {
            if let Some(selector) = &stage.span {
                settings = settings.span_signal(stage.signal.clone(), selector.clone());
            }
        }
        let budgets: Vec<(&str, Duration)> =
            definition.stages().filter_map(|s| s.budget.map(|b| (s.signal.as_str(), b))).collect();
        let settings = budget::settings_with_budgets(settings, &budgets);
        let http = FakeRequestClient::new(&settings)?;
        let sender = app.sender::<Value, ()>(settings.clone())?;
        let file = self.path.display().to_string();
        app.register(settings, |declare| {
            let signals = definition
                .stages()
                .map(|stage| (stage.signal.clone(), declare.declare::<Value>(&stage.signal)))
                .collect();
            DeclaredCase { definition: definition.clone(), file, signals, http, sender }
        })
    }
}

impl DeclaredCase {
    /// The case as the file declared it.
    pub fn definition(&self) -> &CaseDefinition {
        &self.definition
    }

    fn signal(&self, stage: &Stage) -> Result<&Signal<Value>> {
        self.signals
            .get(&stage.signal)
            .ok_or_else(|| Error::Config(format!("signal `{}` is not declared", stage.signal)))
    }
}

impl Case for DeclaredCase {
    /// Named arguments (an object), positional ones (an array), or none.
    type Args = Value;

    async fn run(&self, test: &TestRun, args: Value) -> CaseResult {
        let mut stages: Vec<(String, Value)> = Vec::with_capacity(self.signals.len());
        for (index, step) in self.definition.steps.iter().enumerate() {
            let started = Instant::now();
            let first = stages.len();
            for stage in &step.stages {
                // Signals that came early are held for the test: waiting one after the other is waiting together.
                let left = (started + stage.timeout).saturating_duration_since(Instant::now());
                let value = self.signal(stage)?.wait(left.max(Duration::from_millis(1))).await?;
                let after_issue = (chrono::Utc::now() - test.context().timestamp()).to_std().unwrap_or_default();
                if let Some(line) = budget::over_budget(&stage.signal, after_issue, stage.budget) {
                    test.log(line);
                }
                stages.push((stage.signal.clone(), value));
            }
            for (offset, stage) in step.stages.iter().enumerate() {
                let value = &stages[first + offset].1;
                for (number, assertion) in stage.assertions.iter().enumerate() {
                    let known =
                        super::assertion::Known { test_id: test.id(), args: &args, stages: &stages[..first + offset] };
                    if let Err(message) = assertion.check(value, &known) {
                        let location =
                            format!("{}, step {} ({}), assertion {}", self.file, index + 1, stage.signal, number + 1);
                        let message = format!("{}: {message}", stage.signal);
                        return Err(Error::CheckFailed { message, location }.into());
                    }
                }
            }
        }
        Ok(())
    }

    async fn make_fake_request(&self) -> CaseResult {
        let Some(fake) = &self.definition.fake_request else { return Ok(()) };
        let test = if fake.trigger { Some(self.sender.trigger(&fake.args).await?) } else { None };
        let fill = Fill { args: &fake.args, test_id: test.as_ref().map(|t| t.id()) };
        let url = fake.url.render(&fill);
        let mut headers: Vec<(http::HeaderName, String)> =
            fake.headers.iter().map(|(name, value)| (name.clone(), value.render(&fill))).collect();
        if let Some(test) = &test {
            for (name, value) in test.header_pairs() {
                if let Ok(name) = http::HeaderName::from_bytes(name.as_bytes()) {
                    headers.push((name, value));
                }
            }
        }
        let body = fake.body.as_ref().map(|body| match body {
            FakeBody::Json(json) => (serde_json::to_vec(&json.render(&fill)).unwrap_or_default(), "application/json"),
            FakeBody::Text(text) => (text.render(&fill).into_bytes(), "text/plain; charset=utf-8"),
        });
        self.http.request(fake.method.clone(), &url, &headers, body).await?;
        Ok(())
    }
}
