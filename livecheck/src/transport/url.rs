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
    match scheme {
        "memory" => Ok(Arc::new(MemoryTransport::new())),
        #[cfg(feature = "sqlite")]
        "sqlite" => sqlite(url, rest),
        #[cfg(feature = "kafka")]
        "kafka" => Ok(Arc::new(super::KafkaTransport::connect(url)?)),
        #[cfg(not(feature = "kafka"))]
        "kafka" => Err(Error::Config(format!("`{url}` needs livecheck's `kafka` feature"))),
        other => Err(Error::Config(format!(
            "unsupported broker `{other}://` in `{url}` (supported: sqlite://, kafka://, memory://)"
        ))),
    }
}

#[cfg(feature = "sqlite")]
fn sqlite(url: &str, rest: &str) -> Result<Arc<dyn Transport>> {
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let default_path = DEFAULT_BROKER.trim_start_matches("sqlite://");
    let path = if path.is_empty() { default_path } else { path };
    // Only the default's data directory is made on demand: a typo in a path must not create directories anywhere.
    let dir = std::path::Path::new(path).parent().filter(|dir| !dir.as_os_str().is_empty());
    if let Some(dir) = dir.filter(|dir| path != default_path && !dir.is_dir()) {
        return Err(Error::Config(format!(
            "`{url}`: the directory {} does not exist; create it first (only the default {DEFAULT_BROKER} makes \
             its own)",
            dir.display()
        )));
    }
    let (mut recreate, mut retention, mut max_bytes) = (false, None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let bad = |why: &str| Error::Config(format!("`{pair}` in `{url}`: {why}"));
        match pair.split_once('=') {
            Some(("recreate", value)) => {
                recreate = match value {
                    "1" | "true" => true,
                    "0" | "false" => false,
                    _ => return Err(bad("recreate is 1 or 0")),
                }
            }
            Some(("retention", value)) => {
                retention = Some(parse_duration(value).ok_or_else(|| bad("not a duration like 30s, 15m, 12h or 7d"))?)
            }
            Some(("max_bytes", value)) => {
                max_bytes = Some(parse_bytes(value).ok_or_else(|| bad("not a size like 500MB, 2GB or 1000000"))?)
            }
            _ => return Err(bad("sqlite:// options are retention=DURATION, max_bytes=SIZE and recreate=1")),
        }
    }
    let transport =
        if recreate { super::SqliteTransport::recreate(path)? } else { super::SqliteTransport::open(path)? };
    let transport = match retention {
        Some(retention) => transport.with_retention(retention),
        None => transport,
    };
    Ok(Arc::new(match max_bytes {
        Some(max_bytes) => transport.with_max_bytes(max_bytes),
        None => transport,
    }))
}

/// `1000000`, `64KB`, `500MB`, `2GB` (powers of 1000; `KiB`, `MiB`, `GiB` for powers of 1024): a positive size.
#[cfg(feature = "sqlite")]
fn parse_bytes(text: &str) -> Option<u64> {
    let digits = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let unit = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1.0,
        "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "KIB" => 1024.0,
        "MIB" => 1024.0 * 1024.0,
        "GIB" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let number: f64 = number.parse().ok()?;
    (number.is_finite() && number > 0.0).then_some((number * unit) as u64)
}

/// `30s`, `15m`, `12h`, `7d`: a positive number and a unit.
#[cfg(feature = "sqlite")]
fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let unit = match text.chars().last()? {
        's' => 1.0,
        'm' => 60.0,
        'h' => 3600.0,
        'd' => 86400.0,
        _ => return None,
    };
    let number: f64 = text[..text.len() - 1].parse().ok()?;
    (number.is_finite() && number > 0.0).then(|| std::time::Duration::from_secs_f64(number * unit))
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

    #[cfg(feature = "sqlite")]
    #[test]
    fn sqlite_options_are_checked() {
        assert_eq!(parse_duration("7d"), Some(std::time::Duration::from_secs(7 * 86400)));
        assert_eq!(parse_duration("90s"), Some(std::time::Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5h"), Some(std::time::Duration::from_secs(5400)));
        assert_eq!(parse_duration("-1d"), None);
        assert_eq!(parse_duration("7"), None);
        assert_eq!(parse_bytes("500MB"), Some(500_000_000));
        assert_eq!(parse_bytes("2GiB"), Some(2 << 30));
        assert_eq!(parse_bytes("1000"), Some(1000));
        assert_eq!((parse_bytes("lots"), parse_bytes("0")), (None, None));
        let dir = std::env::temp_dir().join(format!("livecheck-url-test-{}", fastrand::u64(..)));
        let url = |query: &str| format!("sqlite://{}/lc.sqlite3{query}", dir.display());
        let missing = from_url(&url("")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(missing.contains("does not exist"), "a directory is not made for a path: {missing}");
        assert!(!dir.exists());
        std::fs::create_dir(&dir).unwrap();
        assert!(matches!(from_url(&url("?retention=forever")), Err(Error::Config(_))));
        assert!(matches!(from_url(&url("?colour=blue")), Err(Error::Config(_))));
        assert!(from_url(&url("?retention=1d&recreate=0")).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
