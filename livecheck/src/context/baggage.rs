//! The test context as W3C Baggage (<https://www.w3.org/TR/baggage/>): five `livecheck.test.*` members of the
//! `baggage` header, so that services instrumented with OpenTelemetry carry the test without knowing LiveCheck.
//!
//! The header is a comma-separated list of `key=value;property…` members, values percent-encoded, optional spaces
//! and tabs around each part. Only our members are decoded; the others are kept as they are.
//!
//! Limits. The W3C text says a platform must pass on at least 64 members and 8192 bytes, and may drop members
//! beyond; OpenTelemetry's SDKs accept up to 180 members in 8192 bytes and drop a header beyond that. So:
//! - **read**: at most [`MAX_BYTES`] over all `baggage` headers of a request or message, and
//!   [`MAX_MEMBERS_READ`] (180) members; beyond, the baggage is ignored — counted as malformed test context when it
//!   names one of our members, none of our business otherwise;
//! - **written**: our members go into a `baggage` header only if the whole stays within [`MAX_BYTES`] and
//!   [`MAX_MEMBERS_WRITTEN`] (64) members, what every conforming hop passes on in full; otherwise they are left
//!   out (the `LiveCheck-*` headers still go).

use std::borrow::Cow;

use super::HeaderError;

/// The W3C Baggage header.
pub const HEADER_BAGGAGE: &str = "baggage";
/// Baggage member carrying the test id: the text of the `LiveCheck-Test-Id` header.
pub const BAGGAGE_TEST_ID: &str = "livecheck.test.id";
/// Baggage member carrying the case name: the text of the `LiveCheck-Test-Name` header.
pub const BAGGAGE_TEST_NAME: &str = "livecheck.test.name";
/// Baggage member carrying the issue time: the text of the `LiveCheck-Test-Timestamp` header.
pub const BAGGAGE_TIMESTAMP: &str = "livecheck.test.timestamp";
/// Baggage member carrying the expiry: the text of the `LiveCheck-Test-Expires` header.
pub const BAGGAGE_EXPIRES: &str = "livecheck.test.expires";
/// Baggage member carrying the signature, when test context is signed: the text of the
/// `LiveCheck-Test-Signature` header.
pub const BAGGAGE_SIGNATURE: &str = "livecheck.test.signature";

/// Our members, in the order of the headers (id, name, timestamp, expiry), then the signature.
pub(super) const MEMBERS: [&str; 5] =
    [BAGGAGE_TEST_ID, BAGGAGE_TEST_NAME, BAGGAGE_TIMESTAMP, BAGGAGE_EXPIRES, BAGGAGE_SIGNATURE];

/// The most bytes of baggage read, and written with our members in it (W3C and OpenTelemetry agree).
pub(super) const MAX_BYTES: usize = 8192;
/// The most members of baggage read (OpenTelemetry's SDKs' limit).
pub(super) const MAX_MEMBERS_READ: usize = 180;
/// The most members of baggage written with ours in it (what W3C says every platform passes on).
pub(super) const MAX_MEMBERS_WRITTEN: usize = 64;

/// Which carriers an app writes the test context in: see [`crate::LiveCheckBuilder::context_carriers`]. Reading
/// always accepts both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Carriers {
    /// The `LiveCheck-*` headers and the `livecheck.test.*` members of `baggage` (the default).
    #[default]
    Both,
    /// Only the `LiveCheck-*` headers (what Faust reads), as before baggage.
    Headers,
    /// Only the `livecheck.test.*` members of `baggage`.
    Baggage,
}

impl Carriers {
    pub(super) fn headers(self) -> bool {
        matches!(self, Carriers::Both | Carriers::Headers)
    }

    pub(super) fn baggage(self) -> bool {
        matches!(self, Carriers::Both | Carriers::Baggage)
    }
}

/// Our members would have taken the baggage over its limits: they were left out.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct BaggageFull;

/// Our five members' values (id, name, timestamp, expiry, signature) in the `baggage` header(s), percent-decoded
/// and trimmed; `None` for those absent. Members of others are skipped, well-formed or not; one of ours that is
/// malformed is an error, as is baggage over the limits that names one of ours.
pub(super) fn read<'a>(baggage: impl IntoIterator<Item = &'a [u8]>) -> Result<[Option<Cow<'a, str>>; 5], HeaderError> {
    let mut found: [Option<Cow<'a, str>>; 5] = Default::default();
    let mut values = baggage.into_iter().peekable();
    if values.peek().is_none() {
        return Ok(found);
    }
    let values: Vec<&'a [u8]> = values.collect();
    let bytes = values.iter().map(|v| v.len()).sum::<usize>() + values.len() - 1;
    let over = bytes > MAX_BYTES || members(&values).count() > MAX_MEMBERS_READ;
    if over {
        let ours = values.iter().any(|v| v.windows(b"livecheck.test.".len()).any(|w| w == b"livecheck.test."));
        return if ours { Err(HeaderError::BaggageTooLarge) } else { Ok(found) };
    }
    for member in members(&values) {
        let Some(index) = our_member(member) else { continue };
        let name = MEMBERS[index];
        let value = parse_ours(member).map_err(|reason| HeaderError::BadBaggage { member: name, reason })?;
        let value = decode(value).map_err(|error| match error {
            DecodeError::Escape => {
                HeaderError::BadBaggage { member: name, reason: "a `%` not followed by two hex digits" }
            }
            DecodeError::NotUtf8 => HeaderError::NotUtf8 { header: name },
        })?;
        let value = trim(value);
        match &found[index] {
            Some(earlier) if *earlier != value => {
                return Err(HeaderError::BadBaggage { member: name, reason: "given twice with different values" });
            }
            Some(_) => {}
            None => found[index] = Some(value),
        }
    }
    Ok(found)
}

/// The non-empty list-members of baggage header values, spaces and tabs around them trimmed.
fn members<'v, 'a: 'v>(values: &'v [&'a [u8]]) -> impl Iterator<Item = &'a [u8]> + 'v {
    values.iter().copied().flat_map(|v| v.split(|b| *b == b',')).map(trim_ows).filter(|m| !m.is_empty())
}

/// Which of our members `member` is, by its key (the text before `=` or `;`), well-formed or not.
fn our_member(member: &[u8]) -> Option<usize> {
    let end = member.iter().position(|b| *b == b'=' || *b == b';').unwrap_or(member.len());
    let key = trim_ows(&member[..end]);
    MEMBERS.iter().position(|name| name.as_bytes() == key)
}

/// The value (still percent-encoded) of one of our members, checking the member against the W3C grammar: `key OWS
/// "=" OWS value *( OWS ";" OWS property )`, a property being `key OWS [ "=" OWS value ]`.
fn parse_ours(member: &[u8]) -> Result<&[u8], &'static str> {
    let mut parts = member.split(|b| *b == b';');
    let first = parts.next().unwrap_or_default();
    let Some(eq) = first.iter().position(|b| *b == b'=') else {
        return Err("no `=` after the key");
    };
    let value = trim_ows(&first[eq + 1..]);
    if !value.iter().all(|b| is_baggage_octet(*b)) {
        return Err("a character baggage values do not allow (they are percent-encoded)");
    }
    for property in parts {
        let (key, value) = match property.iter().position(|b| *b == b'=') {
            Some(eq) => (trim_ows(&property[..eq]), trim_ows(&property[eq + 1..])),
            None => (trim_ows(property), &b""[..]),
        };
        if key.is_empty() || !key.iter().all(|b| is_token_char(*b)) || !value.iter().all(|b| is_baggage_octet(*b)) {
            return Err("a malformed property");
        }
    }
    Ok(value)
}

enum DecodeError {
    Escape,
    NotUtf8,
}

/// Percent-decodes `value` (already checked to be baggage octets, so ASCII): strict, a `%` must be followed by two
/// hex digits, and the result must be UTF-8. Borrows when there is nothing to decode.
fn decode(value: &[u8]) -> Result<Cow<'_, str>, DecodeError> {
    if !value.contains(&b'%') {
        return std::str::from_utf8(value).map(Cow::Borrowed).map_err(|_| DecodeError::NotUtf8);
    }
    let mut bytes = Vec::with_capacity(value.len());
    let mut rest = value;
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let [high, low, ..] = tail else { return Err(DecodeError::Escape) };
            let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8).ok_or(DecodeError::Escape);
            bytes.push((digit(*high)? << 4) | digit(*low)?);
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    String::from_utf8(bytes).map(Cow::Owned).map_err(|_| DecodeError::NotUtf8)
}

fn trim(value: Cow<'_, str>) -> Cow<'_, str> {
    match value {
        Cow::Borrowed(text) => Cow::Borrowed(text.trim()),
        Cow::Owned(text) if text.trim().len() == text.len() => Cow::Owned(text),
        Cow::Owned(text) => Cow::Owned(text.trim().to_owned()),
    }
}

/// `value` percent-encoded for a baggage value, appended to `out`: every byte that is not a baggage octet, `%`,
/// and `+` too (some OpenTelemetry SDKs, Python's among them, decode a literal `+` as a space).
pub(super) fn encode_into(out: &mut String, value: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in value.as_bytes() {
        if is_baggage_octet(b) && b != b'%' && b != b'+' {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        }
    }
}

/// `livecheck.test.id=…,livecheck.test.name=…,livecheck.test.timestamp=…,livecheck.test.expires=…` for the four
/// header values.
pub(super) fn members_of(values: &[String; 4]) -> String {
    let mut out = String::with_capacity(values.iter().map(|v| v.len() + 32).sum());
    for (i, (name, value)) in MEMBERS.iter().zip(values).enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_member(&mut out, name, value);
    }
    out
}

/// Appends `name=encoded value` to `out`.
pub(super) fn push_member(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push('=');
    encode_into(out, value);
}

/// New values of the `baggage` headers of a message, in place of the old ones: `None` where a header is to go.
pub(super) type NewValues = Vec<Option<Vec<u8>>>;

/// What becomes of the `baggage` header values of a message when our members (`ours`, `count` of them) are added
/// to them: the other members kept as they are, ours replacing any of ours there. `Ok` with the new values, or
/// `Err` with the values without any of ours when the result would be over the limits.
pub(super) fn merge(existing: &[&[u8]], ours: &str, count: usize) -> Result<NewValues, NewValues> {
    let mut kept: Vec<Vec<&[u8]>> = existing
        .iter()
        .map(|v| v.split(|b| *b == b',').map(trim_ows).filter(|m| !m.is_empty() && our_member(m).is_none()).collect())
        .collect();
    let others: usize = kept.iter().map(Vec::len).sum();
    let join = |members: &[&[u8]]| members.join(&b","[..]);
    let without_ours: NewValues = kept.iter().map(|members| (!members.is_empty()).then(|| join(members))).collect();
    let into = kept.iter().position(|members| !members.is_empty()).unwrap_or(0);
    if kept.is_empty() {
        kept.push(Vec::new());
    }
    kept[into].push(ours.as_bytes());
    let with_ours: NewValues = kept.iter().map(|members| (!members.is_empty()).then(|| join(members))).collect();
    let present: Vec<usize> = with_ours.iter().flatten().map(Vec::len).collect();
    let bytes = present.iter().sum::<usize>() + present.len().saturating_sub(1);
    if bytes > MAX_BYTES || others + count > MAX_MEMBERS_WRITTEN {
        return Err(without_ours);
    }
    Ok(with_ours)
}

fn trim_ows(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

/// `baggage-octet = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E`: printable ASCII but space, `"`, `,`, `;`, `\`.
fn is_baggage_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

/// A `tchar` of an RFC 7230 token.
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXTS: [&str; 4] = ["id-1", "test_order", "2026-11-25T01:51:06.000000+00:00", "2026-11-25T04:51:06+00:00"];

    fn values() -> [String; 4] {
        TEXTS.map(str::to_owned)
    }

    fn found(headers: &[&str]) -> Result<[Option<String>; 5], HeaderError> {
        Ok(read(headers.iter().map(|h| h.as_bytes()))?.map(|v| v.map(Cow::into_owned)))
    }

    fn nothing() -> [Option<String>; 5] {
        Default::default()
    }

    fn all_four() -> [Option<String>; 5] {
        [Some(TEXTS[0]), Some(TEXTS[1]), Some(TEXTS[2]), Some(TEXTS[3]), None].map(|v| v.map(str::to_owned))
    }

    #[test]
    fn members_round_trip_with_plus_and_non_ascii_percent_encoded() {
        let written = members_of(&values());
        assert_eq!(
            written,
            "livecheck.test.id=id-1,livecheck.test.name=test_order,\
             livecheck.test.timestamp=2026-11-25T01:51:06.000000%2B00:00,\
             livecheck.test.expires=2026-11-25T04:51:06%2B00:00"
        );
        assert_eq!(found(&[&written]).unwrap(), all_four());
        let odd = ["a b,c;d=e%f+g\\\"h", "zoë ✓", "\u{7f}\t", "100%"];
        let written = members_of(&odd.map(str::to_owned));
        assert!(written.bytes().all(|b| b == b',' || b == b'=' || is_baggage_octet(b)), "{written}");
        let read_back = found(&[&written]).unwrap();
        // Values are trimmed on reading, as header values are.
        assert_eq!(read_back[..4], odd.map(|v| Some(v.trim().to_owned())));
    }

    #[test]
    fn other_members_their_properties_spaces_and_several_headers_are_read_around_ours() {
        let ours = members_of(&values());
        let header = format!(" userId = alice ; p1 ; p2=v , {ours} ;prop=1,  tenant=acme ");
        assert_eq!(found(&[&header]).unwrap(), all_four());
        // Our members spread over several headers, and a header lookup that joined them with commas.
        let split: Vec<&str> = ours.split(',').collect();
        assert_eq!(found(&["x=1", split[0], &split[1..].join(",")]).unwrap(), all_four());
        assert_eq!(found(&[&format!("x=1,{ours},y=2")]).unwrap(), all_four());
        // Identical copies are fine; no member of ours is no test context at all.
        assert_eq!(found(&[&ours, &ours]).unwrap(), all_four());
        assert_eq!(found(&["userId=alice,other.livecheck.test.id=x"]).unwrap(), nothing());
        assert_eq!(found(&[]).unwrap(), nothing());
        // Malformed members of others are skipped.
        assert_eq!(found(&[&format!("=x,;;,k,%zz=1,a=\"q\",{ours}")]).unwrap(), all_four());
    }

    #[test]
    fn a_malformed_member_of_ours_is_an_error_and_never_a_panic() {
        let cause = |member: &str| found(&[&format!("a=1,{member}")]).unwrap_err().cause();
        for bad in [
            "livecheck.test.id",
            "livecheck.test.id;p=1",
            "livecheck.test.id=a b",
            "livecheck.test.id=\"quoted\"",
            "livecheck.test.id=%",
            "livecheck.test.id=%2",
            "livecheck.test.id=%zz",
            "livecheck.test.id=%%41",
            "livecheck.test.id=x;=v",
            "livecheck.test.id=x;a b",
            "livecheck.test.id=x;k=\\",
            "livecheck.test.id=é",
        ] {
            assert_eq!(cause(bad), "bad_baggage", "{bad}");
        }
        assert_eq!(cause("livecheck.test.id=%ff%fe"), "not_utf8");
        assert_eq!(cause("livecheck.test.id=%C3%28"), "not_utf8");
        assert_eq!(cause("livecheck.test.id=a,livecheck.test.id=b"), "bad_baggage");
        // A property on our member is fine.
        assert_eq!(found(&["livecheck.test.id = x ; meta ; k = v"]).unwrap()[0].as_deref(), Some("x"));
    }

    #[test]
    fn baggage_over_the_limits_is_an_error_only_when_it_names_one_of_ours() {
        let ours = members_of(&values());
        let big = format!("pad={}", "x".repeat(MAX_BYTES));
        assert_eq!(found(&[&big]).unwrap(), nothing());
        assert_eq!(found(&[&big, &ours]), Err(HeaderError::BaggageTooLarge));
        let many: Vec<String> = (0..MAX_MEMBERS_READ).map(|i| format!("k{i}=v")).collect();
        assert_eq!(found(&[&many.join(",")]).unwrap(), nothing());
        assert_eq!(found(&[&many[4..].join(","), &ours]).unwrap(), all_four(), "180 members in all are read");
        assert_eq!(found(&[&many[3..].join(","), &ours]), Err(HeaderError::BaggageTooLarge));
        // 8192 bytes in all are read, one more is not.
        let fill = |n: usize| format!("pad={}", "x".repeat(n - 4));
        let exact = MAX_BYTES - ours.len() - 1;
        assert_eq!(found(&[&fill(exact), &ours]).unwrap(), all_four());
        assert_eq!(found(&[&fill(exact + 1), &ours]), Err(HeaderError::BaggageTooLarge));
    }

    #[test]
    fn tricky_inputs_never_panic() {
        let ours = members_of(&values());
        let mut inputs: Vec<Vec<u8>> = [
            "",
            " ",
            ",",
            ";;",
            "=",
            "%",
            "%2",
            "%zz",
            "%ff%fe",
            "==",
            "=;=",
            ",,,;;;===",
            "\t,\t",
            "livecheck.test.",
            "livecheck.test.id=",
            "livecheck.test.id==",
            "livecheck.test.id=%",
            "livecheck.test.id=;",
            "livecheck.test.id=%2",
            "livecheck.test.expires=%ff%fe",
            "livecheck.test.name;;",
            "livecheck.test.id= ;=",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        inputs.push(",".repeat(10_000).into_bytes());
        inputs.push(format!("{ours}{}", ",".repeat(10_000)).into_bytes());
        inputs.push(format!("livecheck.test.id={}", "%41".repeat(100_000)).into_bytes());
        inputs.push(format!("livecheck.test.id={}", "x".repeat(1 << 20)).into_bytes());
        inputs.push(vec![0xff; 100]);
        inputs.push([b"livecheck.test.id=".as_slice(), &[0xc3, 0x28]].concat());
        for i in 0..=255u8 {
            inputs.push([b"livecheck.test.id=a".as_slice(), &[i], b"b"].concat());
            inputs.push([b"livecheck.test.id".as_slice(), &[i], b"=b"].concat());
            inputs.push([ours.as_bytes(), &[i]].concat());
        }
        for input in &inputs {
            let _ = read([input.as_slice()]);
            let _ = read([input.as_slice(), ours.as_bytes()]);
            let _ = merge(&[input.as_slice()], &ours, 4);
            let mut encoded = String::new();
            encode_into(&mut encoded, &String::from_utf8_lossy(input));
            assert!(encoded.bytes().all(is_baggage_octet), "{encoded}");
        }
    }

    #[test]
    fn merging_keeps_other_members_with_their_properties_and_replaces_only_ours() {
        let ours = members_of(&values());
        let stale = members_of(&["old", "other_case", TEXTS[2], TEXTS[3]].map(str::to_owned));
        let existing = format!("userId=alice;p=1 , {stale} ,livecheck.test.signature=abc, tenant=acme");
        let merged = merge(&[existing.as_bytes()], &ours, 4).unwrap();
        assert_eq!(merged, [Some(format!("userId=alice;p=1,tenant=acme,{ours}").into_bytes())]);
        // Ours go in the first header with others; headers holding only ours go.
        let merged = merge(&[stale.as_bytes(), b"a=1", b"b=2"], &ours, 4).unwrap();
        assert_eq!(merged, [None, Some(format!("a=1,{ours}").into_bytes()), Some(b"b=2".to_vec())]);
        assert_eq!(merge(&[], &ours, 4).unwrap(), [Some(ours.clone().into_bytes())]);
    }

    #[test]
    fn merging_over_the_limits_leaves_ours_out_and_drops_stale_ones() {
        let ours = members_of(&values());
        let sixty: Vec<String> = (0..60).map(|i| format!("k{i}=v")).collect();
        assert!(merge(&[sixty.join(",").as_bytes()], &ours, 4).is_ok(), "64 members in all");
        let sixty_one = format!("{},x=1", sixty.join(","));
        assert_eq!(merge(&[sixty_one.as_bytes()], &ours, 4), Err(vec![Some(sixty_one.clone().into_bytes())]));
        let with_stale = format!("{sixty_one},{ours}");
        assert_eq!(merge(&[with_stale.as_bytes()], &ours, 4), Err(vec![Some(sixty_one.into_bytes())]));
        let fill = |n: usize| format!("pad={}", "x".repeat(n - 4));
        let exact = MAX_BYTES - ours.len() - 1;
        assert!(merge(&[fill(exact).as_bytes()], &ours, 4).is_ok(), "8192 bytes in all");
        assert!(merge(&[fill(exact + 1).as_bytes()], &ours, 4).is_err());
        assert!(merge(&[fill(exact - 10).as_bytes(), b"y=1234567890"], &ours, 4).is_err(), "counted over headers");
    }
}
