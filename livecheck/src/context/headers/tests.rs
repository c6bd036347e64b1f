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
        ["trace", HEADER_TEST_ID, HEADER_TEST_NAME, HEADER_TIMESTAMP, HEADER_EXPIRES, HEADER_SIGNATURE, HEADER_BAGGAGE]
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
    assert_eq!(TestContext::from_headers(&baggage(&no_expiry)), Err(HeaderError::Partial { missing: BAGGAGE_EXPIRES }));
    let empty_id = members(["", &name, &issued, &expires]);
    assert_eq!(TestContext::from_headers(&baggage(&empty_id)), Err(HeaderError::Partial { missing: BAGGAGE_TEST_ID }));
    let bad_time = members([&id, &name, "last tuesday", &expires]);
    let error = TestContext::from_headers(&baggage(&bad_time)).unwrap_err();
    assert_eq!(error, HeaderError::BadTimestamp { header: BAGGAGE_TIMESTAMP, value: "last tuesday".into() });
    let backwards = members([&id, &name, &expires, &issued]);
    assert_eq!(TestContext::from_headers(&baggage(&backwards)).unwrap_err().cause(), "bad_timestamp");
    let not_utf8 = format!("{},{BAGGAGE_TEST_NAME}=%ff", members([&id, "x", &issued, &expires]));
    assert_eq!(TestContext::from_headers(&baggage(&not_utf8)), Err(HeaderError::NotUtf8 { header: BAGGAGE_TEST_NAME }));
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
    let expires = super::super::baggage::members_of(&sample().header_values()).split(',').nth(3).unwrap().to_owned();
    tampered.0[0].1 = text.replace(&expires, &format!("{BAGGAGE_EXPIRES}=9999-12-31T23:59:59%2B00:00")).into_bytes();
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
    assert_eq!(names, ["trace", HEADER_BAGGAGE, HEADER_TEST_ID, HEADER_TEST_NAME, HEADER_TIMESTAMP, HEADER_EXPIRES]);
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
