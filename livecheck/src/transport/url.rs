//! Choosing a transport by URL, like the Python original's `broker=` setting.

use std::sync::Arc;

use super::{MemoryTransport, Transport};
use crate::{Error, Result};

/// The environment variable that names the broker when none is given.
pub const BROKER_ENV: &str = "LIVECHECK_BROKER";

/// The default broker: the embedded log in a data directory of the working directory.
pub const DEFAULT_BROKER: &str = "sqlite://livecheck-data/livecheck.sqlite3";

/// The transport a broker URL names:
/// - `sqlite://PATH` — the embedded log shared by the processes of this machine (`sqlite://data/lc.db`,
///   `sqlite:///var/lib/app/lc.db`); `sqlite://` alone uses [`DEFAULT_BROKER`]'s path. Options:
///   `?retention=7d` (how long messages are kept: `s`, `m`, `h` or `d`), `?max_bytes=500MB` (the most data kept:
///   bytes, or `KB`, `MB`, `GB`), `?recreate=1` (start a new, empty log
///   when the one created there before is gone, instead of failing). The file's directory must exist, except
///   for the default's;
/// - `kafka://host:port[,host:port][?name=value&…]` — a Kafka cluster (feature `kafka`); settings pass to
///   librdkafka, as do `LIVECHECK_KAFKA_*` environment variables;
/// - `memory://` — in this process only (tests).
pub fn from_url(url: &str) -> Result<Arc<dyn Transport>> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| Error::Config(format!("not a broker URL: `{url}`")))?;
    #[cfg(not(feature = "sqlite"))]
    let _ = rest;
    match scheme {
        "memory" => Ok(Arc::new(MemoryTransport::new())),
        #[cfg(feature = "sqlite")]
        "sqlite" => Ok(Arc::new(super::sqlite::from_url(url, rest)?)),
        #[cfg(feature = "kafka")]
        "kafka" => Ok(Arc::new(super::KafkaTransport::connect(url)?)),
        #[cfg(not(feature = "kafka"))]
        "kafka" => Err(Error::Config(format!("`{url}` needs livecheck's `kafka` feature"))),
        other => Err(Error::Config(format!(
            "unsupported broker `{other}://` in `{url}` (supported: sqlite://, kafka://, memory://)"
        ))),
    }
}

/// The transport named by `url`, else by the `LIVECHECK_BROKER` environment variable, else the default.
pub fn from_env(url: Option<&str>) -> Result<Arc<dyn Transport>> {
    match url {
        Some(url) => from_url(url),
        None => from_url(&std::env::var(BROKER_ENV).unwrap_or_else(|_| DEFAULT_BROKER.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_what_it_does_not_know() {
        assert!(matches!(from_url("localhost:9092"), Err(Error::Config(_))));
        assert!(matches!(from_url("redis://localhost"), Err(Error::Config(_))));
        assert!(from_url("memory://").is_ok());
    }
}
