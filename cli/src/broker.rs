//! Which broker, and which streams on it: the options `tail` and `trigger` share.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use clap::Args;
use livecheck::{instance::StreamNames, transport};

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
        if let Some(missing) = not_built_in(url, BUILT_WITH) {
            anyhow::bail!("{missing}");
        }
        if url.starts_with("memory://") {
            anyhow::bail!(
                "`{url}` lives inside one process: the livecheck command cannot share it; use sqlite:// or kafka://"
            );
        }
        if let Some(path) = sqlite_path(url) {
            // Opening a log that is not there would create an empty one, which nothing else writes to.
            if !std::path::Path::new(path).exists() {
                anyhow::bail!(
                    "broker `{url}`: there is no LiveCheck log at `{path}` (run from the directory the services run \
                     in, or give --broker / LIVECHECK_BROKER)"
                );
            }
        }
        transport::from_url(url).with_context(|| format!("broker `{url}`"))
    }

    /// The error of a broker that did not answer within `timeout`: exit 2 with one line naming it.
    pub(crate) fn silent(&self, timeout: Duration) -> anyhow::Error {
        anyhow::anyhow!(
            "the broker {} did not answer within {}",
            self.url(),
            crate::args::seconds_text(timeout.as_secs_f64())
        )
    }

    /// How long to wait before reading the streams again when nothing new came: reading Kafka outside a group
    /// takes a consumer per partition and read, so it is looked at less often than the embedded log.
    pub(crate) fn idle_poll(&self) -> Duration {
        if self.url().starts_with("kafka://") {
            Duration::from_secs(1)
        } else {
            Duration::from_millis(200)
        }
    }

    /// The app's stream names.
    pub(crate) fn streams(&self) -> StreamNames {
        match &self.prefix {
            Some(prefix) => StreamNames::prefixed(prefix),
            None => StreamNames::default(),
        }
    }
}

/// The transports this build of the command has (its cargo features `sqlite` and `kafka`).
const BUILT_WITH: &[&str] = &[
    #[cfg(feature = "sqlite")]
    "sqlite",
    #[cfg(feature = "kafka")]
    "kafka",
];

/// What to say of a `sqlite://` or `kafka://` URL given to a build without that transport (`built_with` names the
/// transports it has); `None` when it has it, or for any other URL.
fn not_built_in(url: &str, built_with: &[&str]) -> Option<String> {
    let (scheme, what) = match url.split_once("://")?.0 {
        "kafka" => ("kafka", "Kafka (librdkafka)"),
        "sqlite" => ("sqlite", "the embedded SQLite log"),
        _ => return None,
    };
    if built_with.contains(&scheme) {
        return None;
    }
    Some(format!(
        "broker `{url}`: this livecheck command was built without {what} (cargo feature `{scheme}`); install one \
         with it: cargo install livecheck-cli --features {scheme} (the default features have both)"
    ))
}

/// The file of a `sqlite://PATH[?options]` URL (`sqlite://` alone: the default's).
fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://")?;
    let path = rest.split_once('?').map_or(rest, |(path, _)| path);
    Some(if path.is_empty() { transport::DEFAULT_BROKER.trim_start_matches("sqlite://") } else { path })
}

/// Whether trying again can help: a broker or database that is busy or away.
pub(crate) fn is_retriable(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| cause.downcast_ref::<livecheck::Error>().is_some_and(livecheck::Error::is_retriable))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transport_left_out_of_the_build_is_named_with_the_feature_that_brings_it() {
        let said = not_built_in("kafka://127.0.0.1:9092", &["sqlite"]).expect("kafka is not built in");
        assert!(said.contains("built without Kafka"), "{said}");
        assert!(said.contains("--features kafka"), "{said}");
        let said = not_built_in("sqlite:///tmp/log.sqlite3", &["kafka"]).expect("sqlite is not built in");
        assert!(said.contains("--features sqlite"), "{said}");
        assert_eq!(not_built_in("kafka://127.0.0.1:9092", &["sqlite", "kafka"]), None);
        assert_eq!(not_built_in("memory://", &[]), None, "said elsewhere: memory:// is never shared");
        assert_eq!(not_built_in("nats://host", &[]), None, "the library names the schemes it knows");
    }

    #[test]
    fn the_file_of_a_sqlite_url() {
        assert_eq!(sqlite_path("sqlite:///var/lc.db?retention=1d"), Some("/var/lc.db"));
        assert_eq!(sqlite_path("sqlite://data/lc.db"), Some("data/lc.db"));
        assert_eq!(sqlite_path("sqlite://"), Some("livecheck-data/livecheck.sqlite3"));
        assert_eq!(sqlite_path("kafka://localhost:9092"), None);
    }
}
