//! The embedded log's options: set on a [`SqliteTransport`] before it is shared, or given on its `sqlite://` URL
//! (`?retention=7d`, `?max_bytes=500MB`, `?recreate=1`).

use std::{sync::Arc, time::Duration};

use super::{Inner, SqliteTransport};
use crate::{transport::DEFAULT_BROKER, Error, Result};

impl SqliteTransport {
    /// Partitions of streams created on first use (default 8). Call before sharing the transport.
    #[must_use]
    pub fn with_partitions(self, partitions: u32) -> Self {
        self.rebuild(|inner| inner.default_partitions = partitions.max(1))
    }

    /// How long messages are kept (default 7 days).
    #[must_use]
    pub fn with_retention(self, retention: Duration) -> Self {
        self.rebuild(|inner| inner.retention.age = retention)
    }

    /// The most bytes the log's data may take in the file — its used pages, what the disk holds — (default: no
    /// limit). Checked every minute with the age retention:
    /// above it, the oldest messages of every partition are deleted, the same share of each, down to 90 % of it —
    /// read or not, as with Kafka's size retention.
    #[must_use]
    pub fn with_max_bytes(self, max_bytes: u64) -> Self {
        self.rebuild(|inner| inner.retention.max_bytes = Some(max_bytes))
    }

    /// How long a leader's lease and a group member's heartbeat last (default 5 s); a process that stops is
    /// replaced after this long.
    #[must_use]
    pub fn with_liveness(self, timeout: Duration) -> Self {
        self.rebuild(|inner| {
            inner.lease = timeout;
            inner.member_timeout = timeout;
        })
    }

    /// The transport with `change` made to its options, if it is not shared yet (a WARN otherwise).
    pub(super) fn rebuild(self, change: impl FnOnce(&mut Inner)) -> Self {
        match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                change(&mut inner);
                SqliteTransport { inner: Arc::new(inner) }
            }
            Err(shared) => {
                tracing::warn!("SqliteTransport options must be set before the transport is shared; ignored");
                SqliteTransport { inner: shared }
            }
        }
    }
}

/// The log a `sqlite://` URL names, with its options: `url` is the whole URL, `rest` what follows `sqlite://`.
pub(in crate::transport) fn from_url(url: &str, rest: &str) -> Result<SqliteTransport> {
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
    let transport = if recreate { SqliteTransport::recreate(path)? } else { SqliteTransport::open(path)? };
    let transport = match retention {
        Some(retention) => transport.with_retention(retention),
        None => transport,
    };
    Ok(match max_bytes {
        Some(max_bytes) => transport.with_max_bytes(max_bytes),
        None => transport,
    })
}

/// `1000000`, `64KB`, `500MB`, `2GB` (powers of 1000; `KiB`, `MiB`, `GiB` for powers of 1024): a positive size.
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let missing = crate::transport::from_url(&url("")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(missing.contains("does not exist"), "a directory is not made for a path: {missing}");
        assert!(!dir.exists());
        std::fs::create_dir(&dir).unwrap();
        assert!(matches!(crate::transport::from_url(&url("?retention=forever")), Err(Error::Config(_))));
        assert!(matches!(crate::transport::from_url(&url("?colour=blue")), Err(Error::Config(_))));
        assert!(crate::transport::from_url(&url("?retention=1d&recreate=0")).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
