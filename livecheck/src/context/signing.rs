//! The signed test context: an HMAC over the four test headers, so that callers without the shared secret cannot
//! make a request or a message count as a test.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Header carrying the signature of the four others: lowercase hex of
/// HMAC-SHA256(secret, `id \n name \n timestamp \n expires`), over the header values as written (without
/// surrounding whitespace).
pub const HEADER_SIGNATURE: &str = "LiveCheck-Test-Signature";

/// Header of a message on the pending-tests stream carrying the signature of the execution itself: lowercase hex of
/// HMAC-SHA256(secret, `livecheck-execution\n` followed by the message's value, byte for byte). It covers the id,
/// case, issue time, expiry and arguments, so that with signing on nobody without the secret can make an instance
/// run a test, nor change the arguments or the expiry of a genuine one.
pub const HEADER_EXECUTION_SIGNATURE: &str = "LiveCheck-Execution-Signature";

/// What an execution's signature is computed over before the message's value: keeps it apart from the signature
/// of header values, which never contain a line feed after a field of this text.
const EXECUTION_DOMAIN: &[u8] = b"livecheck-execution\n";

/// Environment variable with the secret test context is signed with, read by [`crate::LiveCheckBuilder::build`]
/// when no secret is set on the builder.
pub const SIGNING_SECRET_ENV: &str = "LIVECHECK_SIGNING_SECRET";

/// Environment variable with the secret used before the current one, still accepted while keys are rotated.
pub const SIGNING_SECRET_PREVIOUS_ENV: &str = "LIVECHECK_SIGNING_SECRET_PREVIOUS";

type HmacSha256 = Hmac<Sha256>;

/// The length of a signature in bytes (SHA-256).
const SIGNATURE_LEN: usize = 32;

/// Signs test contexts with the current secret and accepts signatures made with the current or the previous one.
///
/// The key schedule is computed once; each signature clones it.
#[derive(Clone)]
pub(crate) struct Signer {
    current: HmacSha256,
    previous: Option<HmacSha256>,
}

/// Which secret a signature was made with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verified {
    /// The current one.
    Current,
    /// The previous one: valid, but the context should be signed again with the current one.
    Previous,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets.
        f.debug_struct("Signer").field("previous", &self.previous.is_some()).finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer with `current`, also accepting `previous`; `None` when `current` is empty (signing off).
    pub(crate) fn new(current: &[u8], previous: Option<&[u8]>) -> Option<Self> {
        if current.is_empty() {
            return None;
        }
        let key = |secret: &[u8]| HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
        Some(Signer { current: key(current), previous: previous.filter(|p| !p.is_empty()).map(key) })
    }

    /// The signature of the four header values (id, name, timestamp, expiry), as lowercase hex.
    pub(crate) fn sign(&self, values: [&str; 4]) -> String {
        crate::hex::encode(&mac(&self.current, values))
    }

    /// Checks `signature` (hex, either case) against the four header values, in constant time. `None` when it is
    /// not the signature of these values with either secret, or a value contains a line feed (the separator).
    pub(crate) fn verify(&self, values: [&str; 4], signature: &[u8]) -> Option<Verified> {
        if values.iter().any(|v| v.contains('\n')) {
            return None;
        }
        let signature = unhex(signature)?;
        self.which_secret(|key| keyed(key, values).verify_slice(&signature).is_ok())
    }

    /// Which secret `matches`, checking both whatever the first gives, so that the time taken does not tell which
    /// one matched.
    fn which_secret(&self, matches: impl Fn(&HmacSha256) -> bool) -> Option<Verified> {
        let current = matches(&self.current);
        let previous = self.previous.as_ref().is_some_and(matches);
        match (current, previous) {
            (true, _) => Some(Verified::Current),
            (false, true) => Some(Verified::Previous),
            (false, false) => None,
        }
    }
}

impl Signer {
    /// The signature of an execution's encoded message value (see [`HEADER_EXECUTION_SIGNATURE`]), as lowercase
    /// hex.
    pub(crate) fn sign_execution(&self, value: &[u8]) -> String {
        crate::hex::encode(&execution_mac(&self.current, value).finalize().into_bytes())
    }

    /// Checks an execution's signature (hex, either case) against its message value, in constant time, with either
    /// secret; `None` when it matches neither.
    pub(crate) fn verify_execution(&self, value: &[u8], signature: &[u8]) -> Option<Verified> {
        let signature = unhex(signature)?;
        self.which_secret(|key| execution_mac(key, value).verify_slice(&signature).is_ok())
    }
}

fn execution_mac(key: &HmacSha256, value: &[u8]) -> HmacSha256 {
    let mut mac = key.clone();
    mac.update(EXECUTION_DOMAIN);
    mac.update(value);
    mac
}

fn keyed(key: &HmacSha256, values: [&str; 4]) -> HmacSha256 {
    let mut mac = key.clone();
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            mac.update(b"\n");
        }
        mac.update(value.as_bytes());
    }
    mac
}

fn mac(key: &HmacSha256, values: [&str; 4]) -> [u8; SIGNATURE_LEN] {
    keyed(key, values).finalize().into_bytes().into()
}

/// The bytes of a signature in hex (surrounding whitespace allowed); `None` unless it is exactly 32 bytes.
fn unhex(text: &[u8]) -> Option<[u8; SIGNATURE_LEN]> {
    crate::hex::decode(text.trim_ascii())?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUES: [&str; 4] = ["id-1", "test_order", "2026-11-25T01:51:06+00:00", "2026-11-25T04:51:06+00:00"];

    fn signer(current: &str, previous: Option<&str>) -> Signer {
        Signer::new(current.as_bytes(), previous.map(str::as_bytes)).unwrap()
    }

    #[test]
    fn the_signature_is_hmac_sha256_over_the_values_joined_by_line_feeds() {
        // RFC 4231, test case 2, through the same MAC.
        let jefe = HmacSha256::new_from_slice(b"Jefe").unwrap();
        let mut rfc = jefe.clone();
        rfc.update(b"what do ya want for nothing?");
        assert_eq!(
            crate::hex::encode(&rfc.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Computed independently: python3 -c "import hmac, hashlib; print(hmac.new(b'current-secret',
        // b'id-1\ntest_order\n2026-11-25T01:51:06+00:00\n2026-11-25T04:51:06+00:00', hashlib.sha256).hexdigest())"
        assert_eq!(
            signer("current-secret", None).sign(VALUES),
            "44f8d0ecbc3c51c0f57919e52af421b27951beed7dc8cff6fc41b36e0eafce6a"
        );
    }

    #[test]
    fn a_signature_verifies_in_either_case_and_with_surrounding_spaces() {
        let s = signer("current-secret", None);
        let signature = s.sign(VALUES);
        assert_eq!(s.verify(VALUES, signature.as_bytes()), Some(Verified::Current));
        assert_eq!(s.verify(VALUES, signature.to_uppercase().as_bytes()), Some(Verified::Current));
        assert_eq!(s.verify(VALUES, format!(" {signature} ").as_bytes()), Some(Verified::Current));
    }

    #[test]
    fn a_tampered_field_fails_verification() {
        let s = signer("current-secret", None);
        let signature = s.sign(VALUES);
        for i in 0..4 {
            let mut tampered = VALUES;
            let changed = format!("{}x", VALUES[i]);
            tampered[i] = &changed;
            assert_eq!(s.verify(tampered, signature.as_bytes()), None, "field {i}");
        }
        // The expiry pushed to year 9999, as a forger would.
        let mut later = VALUES;
        later[3] = "9999-12-31T23:59:59+00:00";
        assert_eq!(s.verify(later, signature.as_bytes()), None);
        // Moving the separator between fields.
        let moved = ["id-1\ntest_order", "2026-11-25T01:51:06+00:00", "2026-11-25T04:51:06+00:00", ""];
        assert_eq!(s.verify(moved, s.sign(moved).as_bytes()), None, "a line feed in a value is never accepted");
    }

    #[test]
    fn malformed_signatures_fail_verification() {
        let s = signer("current-secret", None);
        let signature = s.sign(VALUES);
        for bad in [String::new(), signature[..62].to_owned(), format!("{signature}00"), signature.replace('4', "g")] {
            assert_eq!(s.verify(VALUES, bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(s.verify(VALUES, &[0xff; 64]), None);
    }

    #[test]
    fn rotation_accepts_the_previous_secret_and_rejects_an_unknown_one() {
        let old = signer("old", None);
        let rotated = signer("new", Some("old"));
        let stranger = signer("guess", None);
        assert_eq!(rotated.verify(VALUES, old.sign(VALUES).as_bytes()), Some(Verified::Previous));
        assert_eq!(rotated.verify(VALUES, rotated.sign(VALUES).as_bytes()), Some(Verified::Current));
        assert_eq!(rotated.sign(VALUES), signer("new", None).sign(VALUES), "signs with the current secret");
        assert_eq!(rotated.verify(VALUES, stranger.sign(VALUES).as_bytes()), None);
        assert_eq!(old.verify(VALUES, rotated.sign(VALUES).as_bytes()), None, "old alone does not know new");
    }

    #[test]
    fn an_execution_signature_covers_every_byte_of_the_value_and_differs_from_a_header_signature() {
        let s = signer("current-secret", None);
        let value = br#"{"id":"id-1","case_name":"test_order","test_args":[],"test_kwargs":{"side":"sell"}}"#;
        let signature = s.sign_execution(value);
        // Computed independently: python3 -c "import hmac, hashlib; print(hmac.new(b'current-secret',
        // b'livecheck-execution\n' + VALUE, hashlib.sha256).hexdigest())"
        let expected = {
            let mut mac = HmacSha256::new_from_slice(b"current-secret").unwrap();
            mac.update(b"livecheck-execution\n");
            mac.update(value);
            crate::hex::encode(&mac.finalize().into_bytes())
        };
        assert_eq!(signature, expected);
        assert_eq!(s.verify_execution(value, signature.as_bytes()), Some(Verified::Current));
        for i in 0..value.len() {
            let mut changed = value.to_vec();
            changed[i] ^= 1;
            assert_eq!(s.verify_execution(&changed, signature.as_bytes()), None, "byte {i}");
        }
        assert_eq!(s.verify_execution(value, signer("guess", None).sign_execution(value).as_bytes()), None);
        let rotated = signer("new", Some("current-secret"));
        assert_eq!(rotated.verify_execution(value, signature.as_bytes()), Some(Verified::Previous));
        assert_ne!(s.sign_execution(VALUES.join("\n").as_bytes()), s.sign(VALUES));
    }

    #[test]
    fn an_empty_secret_turns_signing_off_and_debug_shows_no_secret() {
        assert!(Signer::new(b"", Some(b"old")).is_none());
        let s = Signer::new(b"hunter2", Some(b"")).unwrap();
        assert!(s.previous.is_none(), "an empty previous secret accepts nothing");
        let debug = format!("{s:?}");
        assert!(!debug.contains("hunter2") && debug.starts_with("Signer"), "{debug}");
    }
}
