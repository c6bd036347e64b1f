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
        headers.merge_baggage(ours, count)
    }
}

impl Headers {
    /// Adds our baggage members (`ours`, `count` of them) to the `baggage` headers, or in a new one at the end.
    fn merge_baggage(&mut self, ours: String, count: usize) -> Result<(), BaggageFull> {
        let at: Vec<usize> = (0..self.0.len()).filter(|&i| self.0[i].0.eq_ignore_ascii_case(HEADER_BAGGAGE)).collect();
        if at.is_empty() {
            // The usual case, on every signal: no baggage yet, ours alone.
            if ours.len() > baggage::MAX_BYTES || count > baggage::MAX_MEMBERS_WRITTEN {
                return Err(BaggageFull);
            }
            self.push(HEADER_BAGGAGE, ours);
            return Ok(());
        }
        let existing: Vec<&[u8]> = at.iter().map(|&i| self.0[i].1.as_slice()).collect();
        let (values, merged) = match baggage::merge(&existing, &ours, count) {
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
mod tests;
