use std::borrow::Cow;

use super::{
    signing::{Signer, Verified, HEADER_SIGNATURE},
    TestContext,
};
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
    /// Test context signing is on and the headers carry no signature.
    #[error("LiveCheck headers without the `LiveCheck-Test-Signature` this app requires")]
    Unsigned,
    /// Test context signing is on and the signature is not that of these headers with either secret.
    #[error("LiveCheck headers with a `LiveCheck-Test-Signature` that does not match them")]
    BadSignature,
}

impl HeaderError {
    /// A short stable name of the cause, for counting.
    pub fn cause(&self) -> &'static str {
        match self {
            HeaderError::Partial { .. } => "partial",
            HeaderError::NotUtf8 { .. } => "not_utf8",
            HeaderError::BadTimestamp { .. } => "bad_timestamp",
            HeaderError::Unsigned => "unsigned",
            HeaderError::BadSignature => "bad_signature",
        }
    }
}

impl TestContext {
    /// Reads the test from message headers: `Ok(None)` when there are no test headers at all. A signature is
    /// neither checked nor kept: [`crate::LiveCheck::test_from_headers`] checks it when the app signs test context.
    pub fn from_headers(headers: &Headers) -> Result<Option<TestContext>, HeaderError> {
        Self::from_lookup(|name| headers.get(name))
    }

    /// Reads the test through a case-insensitive header lookup (message headers, HTTP headers, …).
    pub fn from_lookup<'a>(lookup: impl Fn(&str) -> Option<&'a [u8]>) -> Result<Option<TestContext>, HeaderError> {
        Ok(HeaderParts::read(lookup, None)?.map(HeaderParts::into_context))
    }
}

/// The four test headers, read and checked, borrowing the text.
pub(crate) struct HeaderParts<'a> {
    pub(crate) id: &'a str,
    pub(crate) case_name: &'a str,
    pub(crate) timestamp: chrono::DateTime<chrono::Utc>,
    pub(crate) expires: chrono::DateTime<chrono::Utc>,
    /// The signature to pass on: the one received, or a new one when it was made with the previous secret.
    /// `None` when the reader does not sign test context.
    pub(crate) signature: Option<Cow<'a, str>>,
}

impl<'a> HeaderParts<'a> {
    /// Reads the four headers and, with a `signer`, checks their signature: unsigned or badly signed headers are
    /// an error, as malformed ones are. Without one, a signature header is ignored.
    pub(crate) fn read(
        lookup: impl Fn(&str) -> Option<&'a [u8]>,
        signer: Option<&Signer>,
    ) -> Result<Option<Self>, HeaderError> {
        let values = ALL.map(&lookup);
        if values.iter().all(Option::is_none) {
            return Ok(None);
        }
        let mut text = [""; 4];
        for (i, value) in values.iter().enumerate() {
            let value = value.ok_or(HeaderError::Partial { missing: ALL[i] })?;
            text[i] = std::str::from_utf8(value).map_err(|_| HeaderError::NotUtf8 { header: ALL[i] })?.trim();
        }
        // An empty id or case name is as good as a missing one.
        if let Some(i) = text[..2].iter().position(|t| t.is_empty()) {
            return Err(HeaderError::Partial { missing: ALL[i] });
        }
        let time = |i: usize| {
            timestamp::parse(text[i]).ok_or_else(|| HeaderError::BadTimestamp { header: ALL[i], value: text[i].into() })
        };
        let (timestamp, expires) = (time(2)?, time(3)?);
        if expires < timestamp {
            let value = format!("{} (before the test's timestamp {})", text[3], text[2]);
            return Err(HeaderError::BadTimestamp { header: HEADER_EXPIRES, value });
        }
        let signature = match signer {
            None => None,
            Some(signer) => {
                let received = lookup(HEADER_SIGNATURE).ok_or(HeaderError::Unsigned)?;
                Some(match signer.verify(text, received) {
                    None => return Err(HeaderError::BadSignature),
                    Some(Verified::Current) => match std::str::from_utf8(received) {
                        Ok(received) => Cow::Borrowed(received.trim()),
                        Err(_) => Cow::Owned(signer.sign(text)),
                    },
                    Some(Verified::Previous) => Cow::Owned(signer.sign(text)),
                })
            }
        };
        Ok(Some(HeaderParts { id: text[0], case_name: text[1], timestamp, expires, signature }))
    }

    /// The context, carrying the signature.
    pub(crate) fn into_context(self) -> TestContext {
        let context = TestContext::new(self.id, self.case_name, self.timestamp, self.expires);
        match self.signature {
            Some(signature) => context.with_signature(signature),
            None => context,
        }
    }
}

impl TestContext {
    /// The headers of this test, as name/value pairs: the four, then [`HEADER_SIGNATURE`] when the context
    /// carries a signature.
    pub fn header_pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs: Vec<_> = ALL.into_iter().zip(self.header_values()).collect();
        if let Some(signature) = self.signature() {
            pairs.push((HEADER_SIGNATURE, signature.to_owned()));
        }
        pairs
    }

    /// The context signed by `signer`, if there is one and the context carries no signature yet. For contexts
    /// just made, not yet shared.
    pub(crate) fn signed_by(self, signer: Option<&Signer>) -> Self {
        match signer {
            Some(signer) if self.signature().is_none() => {
                let signature = self.sign_with(signer);
                self.with_signature(signature)
            }
            _ => self,
        }
    }

    fn sign_with(&self, signer: &Signer) -> String {
        let values = self.header_values();
        signer.sign(values.each_ref().map(|v| v.trim()))
    }

    pub(super) fn render_header_values(&self) -> [String; 4] {
        [
            self.id().to_owned(),
            self.case_name().to_owned(),
            timestamp::to_header_text(&self.timestamp()),
            timestamp::to_header_text(&self.expires()),
        ]
    }

    /// Appends the four headers (and the signature the context carries) after the ones present, unless test
    /// headers are already there (never twice).
    pub fn append_to(&self, headers: &mut Headers) {
        self.append_signed(headers, None);
    }

    /// [`TestContext::append_to`], signing with `signer` a context that carries no signature.
    pub(crate) fn append_signed(&self, headers: &mut Headers, signer: Option<&Signer>) {
        if ALL.iter().chain([&HEADER_SIGNATURE]).any(|name| headers.get(name).is_some()) {
            return;
        }
        for (name, value) in ALL.iter().zip(self.header_values()) {
            headers.push(*name, value);
        }
        match (self.signature(), signer) {
            (Some(signature), _) => headers.push(HEADER_SIGNATURE, signature.to_owned()),
            (None, Some(signer)) => headers.push(HEADER_SIGNATURE, self.sign_with(signer)),
            (None, None) => {}
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

    fn signer(current: &str, previous: Option<&str>) -> Signer {
        Signer::new(current.as_bytes(), previous.map(str::as_bytes)).unwrap()
    }

    fn read(headers: &Headers, signer: &Signer) -> Result<Option<TestContext>, HeaderError> {
        Ok(HeaderParts::read(|name| headers.get(name), Some(signer))?.map(HeaderParts::into_context))
    }

    #[test]
    fn a_signed_context_writes_five_headers_and_reads_back_carrying_its_signature() {
        let s = signer("secret", None);
        let signed = sample().signed_by(Some(&s));
        let mut headers: Headers = [("trace", "x")].into_iter().collect();
        signed.append_to(&mut headers);
        signed.append_to(&mut headers);
        let names: Vec<&str> = headers.iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            ["trace", HEADER_TEST_ID, HEADER_TEST_NAME, HEADER_TIMESTAMP, HEADER_EXPIRES, HEADER_SIGNATURE]
        );
        assert_eq!(signed.header_pairs().len(), 5);
        let read_back = read(&headers, &s).unwrap().unwrap();
        assert_eq!(read_back, sample());
        assert_eq!(read_back.signature(), signed.signature());
        // An unsigned context written by an app that signs gets the same signature.
        let mut by_app = Headers::new();
        sample().append_signed(&mut by_app, Some(&s));
        assert_eq!(by_app.get(HEADER_SIGNATURE), signed.signature().map(str::as_bytes));
    }

    #[test]
    fn with_a_signer_unsigned_and_badly_signed_headers_are_errors() {
        let s = signer("secret", None);
        let unsigned: Headers = sample().header_pairs().into_iter().collect();
        assert_eq!(read(&unsigned, &s), Err(HeaderError::Unsigned));
        assert_eq!(HeaderError::Unsigned.cause(), "unsigned");

        let mut forged = unsigned.clone();
        forged.push(HEADER_SIGNATURE, "0".repeat(64));
        assert_eq!(read(&forged, &s), Err(HeaderError::BadSignature));
        assert_eq!(HeaderError::BadSignature.cause(), "bad_signature");

        let mut other_secret = Headers::new();
        sample().append_signed(&mut other_secret, Some(&signer("guess", None)));
        assert_eq!(read(&other_secret, &s), Err(HeaderError::BadSignature));

        // A field changed after signing: the expiry pushed far out.
        let mut tampered = Headers::new();
        sample().append_signed(&mut tampered, Some(&s));
        tampered.0[3].1 = b"9999-12-31T23:59:59+00:00".to_vec();
        assert_eq!(read(&tampered, &s), Err(HeaderError::BadSignature));

        // Malformed headers stay malformed, signed or not; no headers at all are no test.
        let mut partial = Headers::new();
        partial.push(HEADER_TEST_ID, "id-1");
        assert_eq!(read(&partial, &s).unwrap_err().cause(), "partial");
        assert_eq!(read(&Headers::new(), &s), Ok(None));
    }

    #[test]
    fn a_context_signed_with_the_previous_secret_is_signed_again_with_the_current_one() {
        let rotated = signer("new", Some("old"));
        let mut headers = Headers::new();
        sample().append_signed(&mut headers, Some(&signer("old", None)));
        let read_back = read(&headers, &rotated).unwrap().unwrap();
        assert_eq!(read_back.signature(), sample().signed_by(Some(&signer("new", None))).signature());
    }

    #[test]
    fn without_a_signer_the_signature_is_ignored_and_not_kept() {
        let mut headers: Headers = sample().header_pairs().into_iter().collect();
        headers.push(HEADER_SIGNATURE, "not even hex");
        let read_back = TestContext::from_headers(&headers).unwrap().unwrap();
        assert_eq!(read_back, sample());
        assert_eq!(read_back.signature(), None);
        assert_eq!(read_back.header_pairs().len(), 4);
    }
}
