//! Headers in the `headers` column: a compact binary form, since the column is a BLOB and messages must keep their
//! headers' order, repeated names and binary values.

use crate::context::Headers;

/// Headers as stored: for each, the name's length (u16), the name, the value's length (u32), the value.
pub(super) fn encode_headers(headers: &Headers) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in headers.iter() {
        let name = &name.as_bytes()[..name.len().min(u16::MAX as usize)];
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value);
    }
    out
}

/// The headers [`encode_headers`] stored; `None` for bytes that are not such (truncated, a name not UTF-8).
pub(super) fn decode_headers(mut bytes: &[u8]) -> Option<Headers> {
    let mut headers = Headers::new();
    while !bytes.is_empty() {
        let name_len = u16::from_le_bytes(bytes.get(..2)?.try_into().ok()?) as usize;
        let name = std::str::from_utf8(bytes.get(2..2 + name_len)?).ok()?.to_owned();
        bytes = &bytes[2 + name_len..];
        let value_len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
        let value = bytes.get(4..4 + value_len)?.to_vec();
        bytes = &bytes[4 + value_len..];
        headers.push(name, value);
    }
    Some(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_through_their_stored_form() {
        let mut headers = Headers::new();
        headers.push("a", "1");
        headers.push("", vec![0xff, 0]);
        headers.push("LiveCheck-Test-Id", "x".repeat(1000));
        assert_eq!(decode_headers(&encode_headers(&headers)), Some(headers));
        assert_eq!(decode_headers(&[5, 0, b'a']), None, "truncated");
    }
}
