//! Lowercase hex, for signatures and trace and span ids.

/// `bytes` as lowercase hex.
pub(crate) fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        text.push(DIGITS[usize::from(b >> 4)] as char);
        text.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    text
}

/// The bytes of hex `text` (either case); `None` for an odd length or a character that is not a hex digit.
pub(crate) fn decode(text: &[u8]) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    text.chunks_exact(2).map(|pair| Some((digit(pair[0])? << 4) | digit(pair[1])?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_what_is_not_hex() {
        assert_eq!(encode(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(decode(b"00abFF"), Some(vec![0x00, 0xab, 0xff]));
        assert_eq!(decode(b""), Some(Vec::new()));
        for bad in [&b"0"[..], b"zz", b"0g", "é0".as_bytes(), b"+1"] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }
}
