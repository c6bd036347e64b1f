//! Counting the spans and attributes of a protobuf export before decoding it: a walk over the wire format that
//! allocates nothing, so that a small body cannot decode to a huge one.

/// The number of spans and span attributes in an `ExportTraceServiceRequest`; `None` when the body is not
/// well-formed protobuf down to the spans.
pub(super) fn protobuf_items(body: &[u8]) -> Option<usize> {
    let mut count = 0usize;
    // ExportTraceServiceRequest.resource_spans = 1
    for resource_spans in Fields::new(body, 1) {
        // ResourceSpans.scope_spans = 2
        for scope_spans in Fields::new(resource_spans?, 2) {
            // ScopeSpans.spans = 2
            for span in Fields::new(scope_spans?, 2) {
                // Span.attributes = 9
                let mut attributes = 0usize;
                for attribute in Fields::new(span?, 9) {
                    attribute?;
                    attributes += 1;
                }
                count = count.saturating_add(1 + attributes);
            }
        }
    }
    Some(count)
}

/// The length-delimited fields numbered `wanted` of a message, other fields skipped; yields `None` (and stops)
/// where the message is not well-formed.
struct Fields<'a> {
    message: &'a [u8],
    wanted: u64,
    broken: bool,
}

impl<'a> Fields<'a> {
    fn new(message: &'a [u8], wanted: u64) -> Self {
        Fields { message, wanted, broken: false }
    }

    fn next_field(&mut self) -> Option<Option<&'a [u8]>> {
        let key = varint(&mut self.message)?;
        let (field, wire_type) = (key >> 3, key & 7);
        match wire_type {
            0 => {
                varint(&mut self.message)?;
                Some(None)
            }
            1 => {
                self.message = self.message.get(8..)?;
                Some(None)
            }
            5 => {
                self.message = self.message.get(4..)?;
                Some(None)
            }
            2 => {
                let len = usize::try_from(varint(&mut self.message)?).ok()?;
                let value = self.message.get(..len)?;
                self.message = &self.message[len..];
                Some((field == self.wanted).then_some(value))
            }
            _ => None,
        }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Option<&'a [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.broken && !self.message.is_empty() {
            match self.next_field() {
                Some(Some(value)) => return Some(Some(value)),
                Some(None) => {}
                None => {
                    self.broken = true;
                    return Some(None);
                }
            }
        }
        None
    }
}

fn varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_spans_and_attributes_and_refuses_broken_bodies() {
        // resource_spans { scope_spans { spans {} spans { attributes {} attributes {} } } }
        let span_with_two = [0x4a, 0x00, 0x4a, 0x00];
        let mut scope = vec![0x12, 0x00, 0x12, span_with_two.len() as u8];
        scope.extend(span_with_two);
        let mut resource = vec![0x12, scope.len() as u8];
        resource.extend(&scope);
        let mut body = vec![0x0a, resource.len() as u8];
        body.extend(&resource);
        assert_eq!(protobuf_items(&body), Some(4));
        assert_eq!(protobuf_items(&[]), Some(0));
        assert_eq!(protobuf_items(&[0x0a, 0x05, 0x00]), None, "a length past the end");
        assert_eq!(protobuf_items(&[0x0f]), None, "wire type 7");
        // A bomb of empty spans: counted without allocating.
        let mut spans = Vec::new();
        for _ in 0..100_000 {
            spans.extend([0x12, 0x00]);
        }
        let mut resource = vec![0x12];
        push_len(&mut resource, spans.len());
        resource.extend(&spans);
        let mut body = vec![0x0a];
        push_len(&mut body, resource.len());
        body.extend(&resource);
        assert_eq!(protobuf_items(&body), Some(100_000));
    }

    fn push_len(out: &mut Vec<u8>, mut n: usize) {
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }
}
