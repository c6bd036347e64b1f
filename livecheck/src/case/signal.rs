use std::{marker::PhantomData, sync::Arc, time::Duration};

use serde::{de::DeserializeOwned, Serialize};

use super::CaseCore;
use crate::{
    context::{current_test_ref, Headers, TestContext},
    runner::executing_test,
    transport::Message,
    wire::SignalEvent,
    Error, Result,
};

/// A stage of a test case that services announce and the case waits for, carrying a value of type `T`
/// (`Signal<()>` for none).
///
/// The same declaration serves both sides: services call [`Signal::send`], the case calls [`Signal::wait`].
pub struct Signal<T> {
    inner: Arc<SignalInner>,
    _value: PhantomData<fn() -> T>,
}

struct SignalInner {
    name: Arc<str>,
    index: usize,
    case: Arc<CaseCore>,
}

impl<T> Clone for Signal<T> {
    fn clone(&self) -> Self {
        Signal { inner: self.inner.clone(), _value: PhantomData }
    }
}

impl<T> std::fmt::Debug for Signal<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signal").field("name", &self.inner.name).field("case", &self.inner.case.name).finish()
    }
}

/// Declares the signals of a case while it is registered.
pub struct Signals {
    case: Arc<CaseCore>,
    names: Vec<Arc<str>>,
    duplicates: Vec<String>,
}

impl Signals {
    pub(crate) fn new(case: Arc<CaseCore>) -> Self {
        Signals { case, names: Vec::new(), duplicates: Vec::new() }
    }

    /// Declares the signal `name` carrying values of type `T`.
    pub fn declare<T: Serialize + DeserializeOwned>(&mut self, name: &str) -> Signal<T> {
        if self.names.iter().any(|n| &**n == name) {
            self.duplicates.push(name.to_owned());
        }
        let name: Arc<str> = name.into();
        self.names.push(name.clone());
        Signal {
            inner: Arc::new(SignalInner { name, index: self.names.len() - 1, case: self.case.clone() }),
            _value: PhantomData,
        }
    }

    /// The declared names, or an error naming a signal declared twice.
    pub(crate) fn finish(self) -> Result<Vec<Arc<str>>> {
        match self.duplicates.first() {
            Some(name) => Err(Error::Config(format!("signal `{name}` declared twice in case `{}`", self.case.name))),
            None => Ok(self.names),
        }
    }
}

impl<T: Serialize + DeserializeOwned> Signal<T> {
    /// The signal's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Announces this stage for the current test. With no current test (or a test of another case) nothing is
    /// published, so calls can stay in production code.
    pub async fn send(&self, value: &T) -> Result<()> {
        let case = &self.inner.case.name;
        let Some(test) = current_test_ref(|test| test.filter(|t| t.case_name() == &**case).cloned()) else {
            return Ok(());
        };
        self.publish(test.id(), Some(&test), value).await
    }

    /// Announces this stage for test `key`, whether or not a test is current (the "forced" send).
    pub async fn send_with_key(&self, key: &str, value: &T) -> Result<()> {
        let test = current_test_ref(|test| test.cloned());
        self.publish(key, test.as_ref(), value).await
    }

    async fn publish(&self, key: &str, test: Option<&TestContext>, value: &T) -> Result<()> {
        let core = &self.inner.case;
        let mut event = SignalEvent::new(&*self.inner.name, &*core.name, key, serde_json::value::to_raw_value(value)?);
        event.service_version = core.publisher.service_version.as_deref().map(str::to_owned);
        let mut headers = Headers::new();
        if let Some(test) = test {
            core.publisher.append_context(test, &mut headers);
        }
        let message = Message { key: Some(key.to_owned()), value: serde_json::to_vec(&event)?, headers };
        let publisher = &core.publisher;
        let unconfirmed = &publisher.metrics.signals_unconfirmed;
        publisher.publish_bounded(&publisher.streams.bus, message, unconfirmed, "a signal").await
    }

    /// Waits for this signal in the executing test: returns at once if it arrived already, otherwise when it
    /// arrives, or fails with [`Error::SignalTimeout`] after exactly `timeout`. Only valid inside a test body.
    ///
    /// Cancellation safe.
    pub async fn wait(&self, timeout: Duration) -> Result<T> {
        let name = &self.inner.name;
        let test = executing_test().ok_or_else(|| Error::NotInTest { signal: name.to_string() })?;
        if !Arc::ptr_eq(&test.case, &self.inner.case) {
            return Err(Error::WrongCase {
                signal: name.to_string(),
                signal_case: self.inner.case.name.to_string(),
                test_case: test.case.name.to_string(),
            });
        }
        let raw = test.wait_for_signal(self.inner.index, timeout).await?;
        serde_json::from_str(raw.get()).map_err(|e| {
            test.note_decode_error(self.inner.index);
            Error::SignalDecode { signal: name.to_string(), source: e }
        })
    }
}

impl Signal<()> {
    /// Announces this stage for the current test, for a signal that carries no value: `send(&())` without the
    /// `&()`.
    pub async fn notify(&self) -> Result<()> {
        self.send(&()).await
    }
}
