//! Which broker, and which streams on it: the options `tail` and `trigger` share.

use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use livecheck::{transport, StreamNames};

/// The broker and the stream names of the LiveCheck app on it.
#[derive(Args, Clone, Debug)]
pub(crate) struct BrokerArgs {
    /// Broker URL: sqlite://PATH (default sqlite://livecheck-data/livecheck.sqlite3), kafka://HOST:PORT.
    #[arg(long, env = transport::BROKER_ENV)]
    pub(crate) broker: Option<String>,
    /// Stream name prefix of the app (its `StreamNames::prefixed`): PREFIX-livecheck, PREFIX-livecheck-report, ….
    #[arg(long, value_name = "PREFIX")]
    pub(crate) prefix: Option<String>,
}

impl BrokerArgs {
    /// The broker URL given, or the default.
    pub(crate) fn url(&self) -> &str {
        self.broker.as_deref().unwrap_or(transport::DEFAULT_BROKER)
    }

    /// The transport of the broker URL.
    pub(crate) fn connect(&self) -> anyhow::Result<Arc<dyn transport::Transport>> {
        let url = self.url();
        if url.starts_with("memory://") {
            anyhow::bail!(
                "`{url}` lives inside one process: the livecheck command cannot share it; use sqlite:// or kafka://"
            );
        }
        transport::from_url(url).with_context(|| format!("broker `{url}`"))
    }

    /// The app's stream names.
    pub(crate) fn streams(&self) -> StreamNames {
        match &self.prefix {
            Some(prefix) => StreamNames::prefixed(prefix),
            None => StreamNames::default(),
        }
    }
}

/// Whether trying again can help: a broker or database that is busy or away.
pub(crate) fn is_retriable(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| cause.downcast_ref::<livecheck::Error>().is_some_and(livecheck::Error::is_retriable))
}
