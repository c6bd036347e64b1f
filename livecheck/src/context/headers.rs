use std::borrow::Cow;

use super::{
    baggage::{self, BaggageFull, Carriers, HEADER_BAGGAGE, MEMBERS},
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
/// The baggage members carrying the same.
const BAGGAGE_ALL: [&str; 4] = [MEMBERS[0], MEMBERS[1], MEMBERS[2], MEMBERS[3]];

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

    /// The values of every header named `name`, compared case-insensitively, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.0.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
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
    /// A `livecheck.test.*` member of the `baggage` header is not well-formed W3C baggage (no `=`, a character
    /// baggage does not allow, a `%` not followed by two hex digits, a malformed property), or is given twice with
    /// different values.
    #[error("baggage member `{member}` is malformed: {reason}")]
    BadBaggage {
        /// The member.
        member: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The `baggage` header(s) name a `livecheck.test.*` member but are over the limits read: 8192 bytes or 180
    /// members in all.
    #[error("baggage with LiveCheck members over 8192 bytes or 180 members")]
    BaggageTooLarge,
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
            HeaderError::BadBaggage { .. } => "bad_baggage",
            HeaderError::BaggageTooLarge => "baggage_too_large",
        }
    }
}

impl TestContext {
    /// Reads the test from message headers: the `LiveCheck-*` headers when any is there, else the
    /// `livecheck.test.*` members of the `baggage` headers (see [`HEADER_BAGGAGE`]); `Ok(None)` when neither carries
    /// a test. A signature is neither checked nor kept: [`crate::LiveCheck::test_from_headers`] checks it when the
    /// app signs test context.
    pub fn from_headers(headers: &Headers) -> Result<Option<TestContext>, HeaderError> {
        Ok(HeaderParts::read(|name| headers.get(name), headers.get_all(HEADER_BAGGAGE), None)?
            .map(HeaderParts::into_context))
    }

    /// Reads the test through a case-insensitive header lookup (message headers, HTTP headers, …), as
    /// [`TestContext::from_headers`] does; the lookup's value of `baggage` may hold several headers' values joined
    /// by commas.
    pub fn from_lookup<'a>(lookup: impl Fn(&str) -> Option<&'a [u8]>) -> Result<Option<TestContext>, HeaderError> {
        let baggage = lookup(HEADER_BAGGAGE);
        Ok(HeaderParts::read(lookup, baggage, None)?.map(HeaderParts::into_context))
    }
}

/// The test context read from the four test headers or the baggage members, and checked, borrowing the text
/// where it can.
pub(crate) struct HeaderParts<'a> {
    pub(crate) id: Cow<'a, str>,
    pub(crate) case_name: Cow<'a, str>,
    pub(crate) timestamp: chrono::DateTime<chrono::Utc>,
    pub(crate) expires: chrono::DateTime<chrono::Utc>,
    /// The signature to pass on: the one received, or a new one when it was made with the previous secret.
    /// `None` when the reader does not sign test context.
    pub(crate) signature: Option<Cow<'a, str>>,
}

impl<'a> HeaderParts<'a> {
    /// Reads the test context — the four headers when any of them is there, else the `livecheck.test.*` members
    /// of the `baggage` header values — and, with a `signer`, checks its signature, which comes in the same
    /// carrier: unsigned or badly signed context is an error, as malformed context is. Without one, a signature is
    /// ignored. The one function every entrance reads test context with.
    pub(crate) fn read(
        lookup: impl Fn(&str) -> Option<&'a [u8]>,
        baggage: impl IntoIterator<Item = &'a [u8]>,
        signer: Option<&Signer>,
    ) -> Result<Option<Self>, HeaderError> {
        let values = ALL.map(&lookup);
        let mut text: [Cow<'a, str>; 4] = Default::default();
        let (names, received) = if values.iter().any(Option::is_some) {
            for (i, value) in values.iter().enumerate() {
                let value = value.ok_or(HeaderError::Partial { missing: ALL[i] })?;
                text[i] = Cow::Borrowed(
                    std::str::from_utf8(value).map_err(|_| HeaderError::NotUtf8 { header: ALL[i] })?.trim(),
                );
            }
            let received = match signer {
                Some(_) => lookup(HEADER_SIGNATURE).map(Cow::Borrowed),
                None => None,
            };
            (&ALL, received)
        } else {
            let [id, name, issued, expires, signature] = baggage::read(baggage)?;
            let members = [id, name, issued, expires];
            if members.iter().all(Option::is_none) {
                return Ok(None);
            }
            for (i, value) in members.into_iter().enumerate() {
                text[i] = value.ok_or(HeaderError::Partial { missing: MEMBERS[i] })?;
            }
            let received = signature.map(|s| match s {
                Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
                Cow::Owned(s) => Cow::Owned(s.into_bytes()),
            });
            (&BAGGAGE_ALL, received)
        };
        Self::check(text, names, received, signer).map(Some)
    }

    /// Checks the four texts read under `names` (headers or baggage members) and the `received` signature.
    fn check(
        text: [Cow<'a, str>; 4],
        names: &[&'static str; 4],
        received: Option<Cow<'a, [u8]>>,
        signer: Option<&Signer>,
    ) -> Result<Self, HeaderError> {
        // An empty id or case name is as good as a missing one.
        if let Some(i) = text[..2].iter().position(|t| t.is_empty()) {
            return Err(HeaderError::Partial { missing: names[i] });
        }
        let time = |i: usize| {
            timestamp::parse(&text[i])
                .ok_or_else(|| HeaderError::BadTimestamp { header: names[i], value: text[i].to_string() })
        };
        let (timestamp, expires) = (time(2)?, time(3)?);
        if expires < timestamp {
            let value = format!("{} (before the test's timestamp {})", text[3], text[2]);
            return Err(HeaderError::BadTimestamp { header: names[3], value });
        }
        let signature = match signer {
            None => None,
            Some(signer) => {
                let received = received.ok_or(HeaderError::Unsigned)?;
                let values = text.each_ref().map(|t| &**t);
                Some(match signer.verify(values, &received) {
                    None => return Err(HeaderError::BadSignature),
                    Some(Verified::Current) => match received {
                        Cow::Borrowed(bytes) => match std::str::from_utf8(bytes) {
                            Ok(received) => Cow::Borrowed(received.trim()),
                            Err(_) => Cow::Owned(signer.sign(values)),
                        },
                        Cow::Owned(bytes) => match String::from_utf8(bytes) {
                            Ok(received) => Cow::Owned(received.trim().to_owned()),
                            Err(_) => Cow::Owned(signer.sign(values)),
                        },
                    },
                    Some(Verified::Previous) => Cow::Owned(signer.sign(values)),
                })
            }
        };
        let [id, case_name, _, _] = text;
        Ok(HeaderParts { id, case_name, timestamp, expires, signature })
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
    /// carries a signature, then a [`HEADER_BAGGAGE`] header with the same in its `livecheck.test.*` members (left
    /// out if they are over 8192 bytes). Meant to be added to a request as they are: the `baggage` header is one
    /// more, beside any other `baggage` header of the request (W3C allows several, and readers merge them).
    pub fn header_pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs: Vec<_> = ALL.into_iter().zip(self.header_values()).collect();
        if let Some(signature) = self.signature() {
            pairs.push((HEADER_SIGNATURE, signature.to_owned()));
        }
        let members = self.baggage_value(self.signature());
        if members.len() <= baggage::MAX_BYTES {
            pairs.push((HEADER_BAGGAGE, members));
        }
        pairs
    }

    /// Our baggage members with the `signature`, if any.
    fn baggage_value(&self, signature: Option<&str>) -> String {
        let four = self.baggage_four();
        let mut members = String::with_capacity(four.len() + signature.map_or(0, |s| s.len() + 32));
        members.push_str(four);
        if let Some(signature) = signature {
            members.push(',');
            baggage::push_member(&mut members, baggage::BAGGAGE_SIGNATURE, signature);
        }
        members
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

    /// Writes the test on message headers, unless `LiveCheck-*` headers are already there (never twice): the four
    /// headers (and the signature the context carries) after the ones present, and the same as `livecheck.test.*`
    /// members of the `baggage` header — added to a `baggage` header already there, keeping its other members and
    /// their properties, replacing only `livecheck.test.*` ones; left out (the four headers still go) if the baggage
    /// would be over 8192 bytes or 64 members.
    pub fn append_to(&self, headers: &mut Headers) {
        if self.append_with(headers, None, Carriers::Both).is_err() {
            tracing::debug!(
                test_id = self.id(),
                "baggage over its limits: the test goes in the LiveCheck headers only"
            );
        }
    }

    /// [`TestContext::append_to`] on the given `carriers`, signing with `signer` a context that carries no
    /// signature. `Err` when the baggage had no room for our members (the headers, if asked for, are written).
    pub(crate) fn append_with(
        &self,
        headers: &mut Headers,
        signer: Option<&Signer>,
        carriers: Carriers,
    ) -> Result<(), BaggageFull> {
        if ALL.iter().chain([&HEADER_SIGNATURE]).any(|name| headers.get(name).is_some()) {
            return Ok(());
        }
        let signature = match (self.signature(), signer) {
            (Some(signature), _) => Some(Cow::Borrowed(signature)),
            (None, Some(signer)) => Some(Cow::Owned(self.sign_with(signer))),
            (None, None) => None,
        };
        if carriers.headers() {
            for (name, value) in ALL.iter().zip(self.header_values()) {
                headers.push(*name, value);
            }
            if let Some(signature) = &signature {
                headers.push(HEADER_SIGNATURE, signature.to_string());
            }
        }
        if !carriers.baggage() {
            return Ok(());
        }
        let ours = self.baggage_value(signature.as_deref());
        let count = 4 + usize::from(signature.is_some());
        headers.merge_baggage(&ours, count)
    }
}

impl Headers {
    /// Adds our baggage members (`ours`, `count` of them) to the `baggage` headers, or in a new one at the end.
    fn merge_baggage(&mut self, ours: &str, count: usize) -> Result<(), BaggageFull> {
        let at: Vec<usize> = (0..self.0.len()).filter(|&i| self.0[i].0.eq_ignore_ascii_case(HEADER_BAGGAGE)).collect();
        let existing: Vec<&[u8]> = at.iter().map(|&i| self.0[i].1.as_slice()).collect();
        let (values, merged) = match baggage::merge(&existing, ours, count) {
            Ok(values) => (values, Ok(())),
            Err(values) => (values, Err(BaggageFull)),
        };
        if at.is_empty() {
            if let Some(Some(value)) = values.into_iter().next() {
                self.push(HEADER_BAGGAGE, value);
            }
            return merged;
        }
        for (&i, value) in at.iter().zip(values).rev() {
            match value {
                Some(value) => self.0[i].1 = value,
                None => {
                    self.0.remove(i);
                }
            }
        }
        merged
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
        assert_eq!(headers.len(), 6, "the four, and baggage");
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

    fn append_signed(test: &TestContext, headers: &mut Headers, signer: &Signer) {
        test.append_with(headers, Some(signer), Carriers::Both).unwrap();
    }

    fn read(headers: &Headers, signer: &Signer) -> Result<Option<TestContext>, HeaderError> {
        let baggage = headers.get_all(HEADER_BAGGAGE);
        Ok(HeaderParts::read(|name| headers.get(name), baggage, Some(signer))?.map(HeaderParts::into_context))
    }

    #[test]
    fn a_signed_context_writes_five_headers_and_baggage_and_reads_back_carrying_its_signature() {
        let s = signer("secret", None);
        let signed = sample().signed_by(Some(&s));
        let mut headers: Headers = [("trace", "x")].into_iter().collect();
        signed.append_to(&mut headers);
        signed.append_to(&mut headers);
        let names: Vec<&str> = headers.iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "trace",
                HEADER_TEST_ID,
                HEADER_TEST_NAME,
                HEADER_TIMESTAMP,
                HEADER_EXPIRES,
                HEADER_SIGNATURE,
                HEADER_BAGGAGE
            ]
        );
        assert_eq!(signed.header_pairs().len(), 6);
        let read_back = read(&headers, &s).unwrap().unwrap();
        assert_eq!(read_back, sample());
        assert_eq!(read_back.signature(), signed.signature());
        // An unsigned context written by an app that signs gets the same signature.
        let mut by_app = Headers::new();
        append_signed(&sample(), &mut by_app, &s);
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
        append_signed(&sample(), &mut other_secret, &signer("guess", None));
        assert_eq!(read(&other_secret, &s), Err(HeaderError::BadSignature));

        // A field changed after signing: the expiry pushed far out.
        let mut tampered = Headers::new();
        append_signed(&sample(), &mut tampered, &s);
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
        append_signed(&sample(), &mut headers, &signer("old", None));
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
        assert_eq!(read_back.header_pairs().len(), 5);
    }

    use super::super::baggage::{
        BAGGAGE_EXPIRES, BAGGAGE_SIGNATURE, BAGGAGE_TEST_ID, BAGGAGE_TEST_NAME, BAGGAGE_TIMESTAMP,
    };

    /// `sample()` written on the `carriers` only, after `existing`.
    fn written(existing: &[(&'static str, &str)], carriers: Carriers, signer: Option<&Signer>) -> Headers {
        let mut headers: Headers = existing.iter().map(|(n, v)| (*n, v.to_string())).collect();
        sample().append_with(&mut headers, signer, carriers).unwrap();
        headers
    }

    fn only_baggage(test: &TestContext) -> Headers {
        test.header_pairs().into_iter().filter(|(n, _)| *n == HEADER_BAGGAGE).collect()
    }

    #[test]
    fn baggage_alone_carries_the_test_through_headers_lookups_and_header_pairs() {
        let headers = written(&[], Carriers::Baggage, None);
        assert_eq!(headers.len(), 1);
        assert_eq!(TestContext::from_headers(&headers), Ok(Some(sample())));
        assert_eq!(TestContext::from_headers(&only_baggage(&sample())), Ok(Some(sample())));
        // Our members spread over two headers, other members around them; and a lookup joining them.
        let value = String::from_utf8(headers.get(HEADER_BAGGAGE).unwrap().to_vec()).unwrap();
        let (first, rest) = value.split_once(',').unwrap();
        let split: Headers =
            [(HEADER_BAGGAGE, format!("a=1, {first}")), ("x", "y".into()), ("Baggage", format!("{rest} ,b=2"))]
                .into_iter()
                .collect();
        assert_eq!(TestContext::from_headers(&split), Ok(Some(sample())));
        let joined = format!("a=1, {first},{rest} ,b=2");
        let lookup = |name: &str| name.eq_ignore_ascii_case(HEADER_BAGGAGE).then_some(joined.as_bytes());
        assert_eq!(TestContext::from_lookup(lookup), Ok(Some(sample())));
        // No members of ours: no test.
        let foreign: Headers = [(HEADER_BAGGAGE, "userId=alice")].into_iter().collect();
        assert_eq!(TestContext::from_headers(&foreign), Ok(None));
    }

    #[test]
    fn the_livecheck_headers_come_first_and_baggage_is_checked_as_they_are() {
        let other = TestContext::new("id-2", "other_case", sample().timestamp(), sample().expires());
        let mut both: Headers = other.header_pairs().into_iter().filter(|(n, _)| *n != HEADER_BAGGAGE).collect();
        both.push(HEADER_BAGGAGE, only_baggage(&sample()).get(HEADER_BAGGAGE).unwrap().to_vec());
        assert_eq!(TestContext::from_headers(&both), Ok(Some(other)));
        // Partial headers are an error, whatever the baggage says.
        let mut partial = only_baggage(&sample());
        partial.push(HEADER_TEST_ID, "id-1");
        assert_eq!(TestContext::from_headers(&partial), Err(HeaderError::Partial { missing: HEADER_TEST_NAME }));

        let baggage = |value: &str| -> Headers { [(HEADER_BAGGAGE, value.to_owned())].into_iter().collect() };
        let members = |values: [&str; 4]| super::super::baggage::members_of(&values.map(str::to_owned));
        let [id, name, issued, expires] = sample().header_values();
        let no_expiry = format!("{BAGGAGE_TEST_ID}=id-1,{BAGGAGE_TEST_NAME}=n,{BAGGAGE_TIMESTAMP}={issued}");
        assert_eq!(
            TestContext::from_headers(&baggage(&no_expiry)),
            Err(HeaderError::Partial { missing: BAGGAGE_EXPIRES })
        );
        let empty_id = members(["", &name, &issued, &expires]);
        assert_eq!(
            TestContext::from_headers(&baggage(&empty_id)),
            Err(HeaderError::Partial { missing: BAGGAGE_TEST_ID })
        );
        let bad_time = members([&id, &name, "last tuesday", &expires]);
        let error = TestContext::from_headers(&baggage(&bad_time)).unwrap_err();
        assert_eq!(error, HeaderError::BadTimestamp { header: BAGGAGE_TIMESTAMP, value: "last tuesday".into() });
        let backwards = members([&id, &name, &expires, &issued]);
        assert_eq!(TestContext::from_headers(&baggage(&backwards)).unwrap_err().cause(), "bad_timestamp");
        let not_utf8 = format!("{},{BAGGAGE_TEST_NAME}=%ff", members([&id, "x", &issued, &expires]));
        assert_eq!(
            TestContext::from_headers(&baggage(&not_utf8)),
            Err(HeaderError::NotUtf8 { header: BAGGAGE_TEST_NAME })
        );
    }

    #[test]
    fn with_a_signer_baggage_needs_its_own_valid_signature_member() {
        let s = signer("secret", None);
        let signed = written(&[], Carriers::Baggage, Some(&s));
        let read_back = read(&signed, &s).unwrap().unwrap();
        assert_eq!(read_back, sample());
        assert_eq!(read_back.signature(), sample().signed_by(Some(&s)).signature());
        assert_eq!(only_baggage(&read_back), signed, "written back the same");

        let unsigned = written(&[], Carriers::Baggage, None);
        assert_eq!(read(&unsigned, &s), Err(HeaderError::Unsigned));
        // The signature header does not vouch for baggage: each carrier brings its own.
        let mut header_signature = unsigned.clone();
        header_signature.push(HEADER_SIGNATURE, sample().signed_by(Some(&s)).signature().unwrap());
        assert_eq!(read(&header_signature, &s), Err(HeaderError::Unsigned));
        let mut zeros = unsigned.clone();
        zeros.0[0].1.extend_from_slice(format!(",{BAGGAGE_SIGNATURE}={}", "0".repeat(64)).as_bytes());
        assert_eq!(read(&zeros, &s), Err(HeaderError::BadSignature));
        let other_secret = written(&[], Carriers::Baggage, Some(&signer("guess", None)));
        assert_eq!(read(&other_secret, &s), Err(HeaderError::BadSignature));
        // The expiry pushed out after signing.
        let mut tampered = signed.clone();
        let text = String::from_utf8(tampered.0[0].1.clone()).unwrap();
        let expires =
            super::super::baggage::members_of(&sample().header_values()).split(',').nth(3).unwrap().to_owned();
        tampered.0[0].1 =
            text.replace(&expires, &format!("{BAGGAGE_EXPIRES}=9999-12-31T23:59:59%2B00:00")).into_bytes();
        assert_ne!(tampered, signed);
        assert_eq!(read(&tampered, &s), Err(HeaderError::BadSignature));
        // Rotation: signed with the previous secret, signed again with the current one.
        let old = written(&[], Carriers::Baggage, Some(&signer("old", None)));
        let read_back = read(&old, &signer("new", Some("old"))).unwrap().unwrap();
        assert_eq!(read_back.signature(), sample().signed_by(Some(&signer("new", None))).signature());
    }

    #[test]
    fn writing_keeps_other_baggage_members_replaces_ours_and_follows_the_carriers() {
        let stale = super::super::baggage::members_of(
            &["old", "c", "2020-01-01T00:00:00+00:00", "2020-01-01T00:00:00+00:00"].map(str::to_owned),
        );
        let existing = format!("userId=alice;p=1, {stale}, tenant = acme;x");
        let headers = written(&[("trace", "t"), (HEADER_BAGGAGE, &existing)], Carriers::Both, None);
        let value = String::from_utf8(headers.get(HEADER_BAGGAGE).unwrap().to_vec()).unwrap();
        assert_eq!(value, format!("userId=alice;p=1,tenant = acme;x,{}", sample().baggage_four()));
        let names: Vec<&str> = headers.iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            ["trace", HEADER_BAGGAGE, HEADER_TEST_ID, HEADER_TEST_NAME, HEADER_TIMESTAMP, HEADER_EXPIRES]
        );
        let mut again = headers.clone();
        sample().append_to(&mut again);
        assert_eq!(again, headers, "never twice");
        let from_baggage: Headers =
            headers.iter().filter(|(n, _)| *n == HEADER_BAGGAGE).map(|(n, v)| (n.to_owned(), v.to_vec())).collect();
        assert_eq!(TestContext::from_headers(&from_baggage), Ok(Some(sample())));

        let headers_only = written(&[(HEADER_BAGGAGE, &existing)], Carriers::Headers, None);
        assert_eq!(headers_only.get(HEADER_BAGGAGE), Some(existing.as_bytes()), "baggage untouched");
        assert_eq!(headers_only.len(), 5);
        let baggage_only = written(&[], Carriers::Baggage, Some(&signer("secret", None)));
        assert_eq!(baggage_only.iter().map(|(n, _)| n).collect::<Vec<_>>(), [HEADER_BAGGAGE]);
        assert!(std::str::from_utf8(baggage_only.get(HEADER_BAGGAGE).unwrap()).unwrap().contains(BAGGAGE_SIGNATURE));
    }

    #[test]
    fn baggage_with_no_room_is_left_as_it_is_and_the_headers_still_go() {
        let full: Vec<String> = (0..61).map(|i| format!("k{i}=v")).collect();
        let full = full.join(",");
        let mut headers: Headers = [(HEADER_BAGGAGE, full.clone())].into_iter().collect();
        assert_eq!(sample().append_with(&mut headers, None, Carriers::Both), Err(BaggageFull));
        assert_eq!(headers.get(HEADER_BAGGAGE), Some(full.as_bytes()));
        assert_eq!(headers.len(), 5);
        assert_eq!(TestContext::from_headers(&headers), Ok(Some(sample())));
        // Sixty members and ours fit.
        let sixty: Vec<String> = (0..60).map(|i| format!("k{i}=v")).collect();
        let mut headers: Headers = [(HEADER_BAGGAGE, sixty.join(","))].into_iter().collect();
        assert_eq!(sample().append_with(&mut headers, None, Carriers::Baggage), Ok(()));
        assert_eq!(TestContext::from_headers(&headers), Ok(Some(sample())));
    }

    #[test]
    fn tricky_baggage_never_panics_nor_makes_a_test_it_does_not_hold() {
        let ours = sample().baggage_four().to_owned();
        let mut inputs: Vec<Vec<u8>> = ["%", "%2", "%zz", "%ff%fe", "=v", ";;", ",;=,", "livecheck.test.id"]
            .iter()
            .flat_map(|t| {
                let t = t.to_string();
                [t.clone(), format!("{ours},{t}"), format!("{BAGGAGE_TEST_ID}={t}"), ours.replace("id-1", &t)]
            })
            .map(String::into_bytes)
            .collect();
        inputs.push(",".repeat(10_000).into_bytes());
        inputs.push(format!("{ours}{}", ",".repeat(10_000)).into_bytes());
        inputs.push(format!("{ours},big={}", "x".repeat(1 << 16)).into_bytes());
        inputs.push([ours.as_bytes(), &[0xff, 0xfe]].concat());
        let s = signer("secret", None);
        for input in inputs {
            let headers: Headers = [(HEADER_BAGGAGE, input.clone())].into_iter().collect();
            if let Ok(Some(test)) = TestContext::from_headers(&headers) {
                let claims =
                    !test.id().is_empty() && test.case_name() == "test_order" && test.expires() >= test.timestamp();
                assert!(claims, "{}", String::from_utf8_lossy(&input));
            }
            assert!(!matches!(read(&headers, &s), Ok(Some(_))), "unsigned: no test");
            let mut appended = headers.clone();
            let _ = sample().append_with(&mut appended, Some(&s), Carriers::Both);
            assert_eq!(read(&appended, &s).unwrap(), Some(sample()));
        }
    }
}
