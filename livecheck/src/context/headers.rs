use std::borrow::Cow;

use super::TestContext;
use crate::wire::timestamp;

/// Header carrying the test id.
pub const HEADER_TEST_ID: &str = "LiveCheck-Test-Id";
/// Header carrying the case name.
pub const HEADER_TEST_NAME: &str = "LiveCheck-Test-Name";
/// Header carrying the issue time (ISO-8601 with offset).
pub const HEADER_TIMESTAMP: &str = "LiveCheck-Test-Timestamp";
/// Header carrying the expiry time (ISO-8601 with offset).
pub const HEADER_EXPIRES: &str = "LiveCheck-Test-Expires";

const ALL: [&str; 4] = [HEADER_TEST_ID, HEADER_TEST_NAME, HEADER_TIMESTAMP, HEADER_EXPIRES];

/// Message headers: an ordered list of name/value pairs, names looked up case-insensitively.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers(Vec<(Cow<'static, str>, Vec<u8>)>);

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    /// Appends a header (duplicates are kept, as on Kafka).
    pub fn push(&mut self, name: impl Into<Cow<'static, str>>, value: impl Into<Vec<u8>>) {
        self.0.push((name.into(), value.into()));
    }

    /// The value of the first header named `name`, compared case-insensitively.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.0.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }

    /// All headers in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.0.iter().map(|(n, v)| (n.as_ref(), v.as_slice()))
    }

    /// How many headers there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<N: Into<Cow<'static, str>>, V: Into<Vec<u8>>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        Headers(iter.into_iter().map(|(n, v)| (n.into(), v.into())).collect())
    }
}

/// Why test headers were not accepted. The request or message is then handled as one with no test.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// Some of the four headers are present, not all.
    #[error("partial LiveCheck headers: `{missing}` is missing")]
    Partial {
        /// The first missing header.
        missing: &'static str,
    },
    /// A header value is not UTF-8.
    #[error("LiveCheck header `{header}` is not UTF-8")]
    NotUtf8 {
        /// The header.
        header: &'static str,
    },
    /// A timestamp header is not ISO-8601.
    #[error("LiveCheck header `{header}` is not an ISO-8601 timestamp: `{value}`")]
    BadTimestamp {
        /// The header.
        header: &'static str,
        /// Its value.
        value: String,
    },
}

impl HeaderError {
    /// A short stable name of the cause, for counting.
    pub fn cause(&self) -> &'static str {
        match self {
            HeaderError::Partial { .. } => "partial",
            HeaderError::NotUtf8 { .. } => "not_utf8",
            HeaderError::BadTimestamp { .. } => "bad_timestamp",
        }
    }
}

impl TestContext {
    /// Reads the test from message headers: `Ok(None)` when there are no test headers at all.
    pub fn from_headers(headers: &Headers) -> Result<Option<TestContext>, HeaderError> {
        Self::from_lookup(|name| headers.get(name))
    }

    /// Reads the test through a case-insensitive header lookup (message headers, HTTP headers, …).
    pub fn from_lookup<'a>(lookup: impl Fn(&str) -> Option<&'a [u8]>) -> Result<Option<TestContext>, HeaderError> {
        Ok(HeaderParts::read(lookup)?.map(|p| TestContext::new(p.id, p.case_name, p.timestamp, p.expires)))
    }
}

/// The four test headers, read and checked, borrowing the text.
pub(crate) struct HeaderParts<'a> {
    pub(crate) id: &'a str,
    pub(crate) case_name: &'a str,
    pub(crate) timestamp: chrono::DateTime<chrono::Utc>,
    pub(crate) expires: chrono::DateTime<chrono::Utc>,
}

impl<'a> HeaderParts<'a> {
    pub(crate) fn read(lookup: impl Fn(&str) -> Option<&'a [u8]>) -> Result<Option<Self>, HeaderError> {
        let values = ALL.map(lookup);
        if values.iter().all(Option::is_none) {
            return Ok(None);
        }
        let mut text = [""; 4];
        for (i, value) in values.iter().enumerate() {
            let value = value.ok_or(HeaderError::Partial { missing: ALL[i] })?;
            text[i] = std::str::from_utf8(value).map_err(|_| HeaderError::NotUtf8 { header: ALL[i] })?.trim();
        }
        if text[0].is_empty() {
            return Err(HeaderError::Partial { missing: HEADER_TEST_ID });
        }
        let time = |i: usize| {
            timestamp::parse(text[i]).ok_or_else(|| HeaderError::BadTimestamp { header: ALL[i], value: text[i].into() })
        };
        Ok(Some(HeaderParts { id: text[0], case_name: text[1], timestamp: time(2)?, expires: time(3)? }))
    }
}

impl TestContext {
    /// The four headers of this test, as name/value pairs.
    pub fn header_pairs(&self) -> [(&'static str, String); 4] {
        let [id, name, issued, expires] = self.header_values();
        [(HEADER_TEST_ID, id), (HEADER_TEST_NAME, name), (HEADER_TIMESTAMP, issued), (HEADER_EXPIRES, expires)]
    }

    pub(super) fn render_header_values(&self) -> [String; 4] {
        [
            self.id().to_owned(),
            self.case_name().to_owned(),
            timestamp::to_header_text(&self.timestamp()),
            timestamp::to_header_text(&self.expires()),
        ]
    }

    /// Appends the four headers after the ones present, unless test headers are already there (never twice).
    pub fn append_to(&self, headers: &mut Headers) {
        if ALL.iter().any(|name| headers.get(name).is_some()) {
            return;
        }
        for (name, value) in ALL.iter().zip(self.header_values()) {
            headers.push(*name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn sample() -> TestContext {
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 1, 51, 6).unwrap();
        TestContext::new("id-1", "test_order", t, t + chrono::Duration::hours(3))
    }

    #[test]
    fn round_trips_through_headers_after_existing_ones_and_only_once() {
        let mut headers: Headers = [("trace", "x")].into_iter().collect();
        sample().append_to(&mut headers);
        sample().append_to(&mut headers);
        assert_eq!(headers.len(), 5);
        assert_eq!(headers.iter().next().unwrap().0, "trace");
        assert_eq!(TestContext::from_headers(&headers).unwrap(), Some(sample()));
    }

    #[test]
    fn lookup_is_case_insensitive() {
        let headers: Headers = sample().header_pairs().into_iter().map(|(n, v)| (n.to_ascii_lowercase(), v)).collect();
        assert_eq!(TestContext::from_headers(&headers).unwrap(), Some(sample()));
    }

    #[test]
    fn no_headers_is_no_test() {
        assert_eq!(TestContext::from_headers(&Headers::new()), Ok(None));
    }

    #[test]
    fn partial_non_utf8_and_non_iso_headers_are_errors() {
        let mut partial: Headers = Headers::new();
        partial.push(HEADER_TEST_ID, "id-1");
        assert_eq!(TestContext::from_headers(&partial).unwrap_err().cause(), "partial");

        let mut bad_time: Headers = sample().header_pairs().into_iter().collect();
        bad_time.0[2].1 = b"last tuesday".to_vec();
        assert_eq!(TestContext::from_headers(&bad_time).unwrap_err().cause(), "bad_timestamp");

        let mut not_utf8: Headers = sample().header_pairs().into_iter().collect();
        not_utf8.0[0].1 = vec![0xff, 0xfe];
        assert_eq!(TestContext::from_headers(&not_utf8).unwrap_err().cause(), "not_utf8");
    }
}
