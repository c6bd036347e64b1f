use std::io::Write;

use super::*;

fn kv(key: &str, value: &str) -> proto::KeyValue {
    let value = proto::AnyValue { value: Some(proto::any_value::Value::StringValue(value.to_owned())) };
    proto::KeyValue { key: key.to_owned(), value: Some(value) }
}

fn export(spans: Vec<proto::Span>) -> proto::ExportTraceServiceRequest {
    proto::ExportTraceServiceRequest {
        resource_spans: vec![proto::ResourceSpans {
            resource: Some(proto::Resource { attributes: vec![kv("service.name", "execution")] }),
            scope_spans: vec![proto::ScopeSpans { spans }],
        }],
    }
}

fn span(name: &str, attributes: Vec<proto::KeyValue>) -> proto::Span {
    proto::Span {
        trace_id: vec![0xab; 16],
        span_id: vec![0xcd; 8],
        parent_span_id: Vec::new(),
        name: name.to_owned(),
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_250_000_000,
        attributes,
        status: Some(proto::Status { message: "side changed".into(), code: 2 }),
    }
}

fn test_attributes() -> Vec<proto::KeyValue> {
    vec![
        kv("livecheck.test.id", "t-1"),
        kv("livecheck.test.name", "orders.test_order"),
        kv("livecheck.test.timestamp", "2026-12-02T10:00:00.000000Z"),
        kv("livecheck.test.expires", "2026-12-02T13:00:00.000000Z"),
        kv("order.side", "sell"),
    ]
}

#[test]
fn protobuf_exports_give_only_the_spans_of_tests_made_into_span_values() {
    let request =
        export(vec![span("GET /health", vec![kv("http.route", "/health")]), span("execute", test_attributes())]);
    let body = request.encode_to_vec();
    let decoded = decode(&body, Encoding::Protobuf, None).unwrap();
    let (total, found) = test_spans(decoded, |_| None);
    assert_eq!(total, 2);
    assert_eq!(found.len(), 1);
    let TestSpan { context, span } = &found[0];
    assert_eq!(context[0].as_deref(), Some("t-1"));
    assert_eq!(context[1].as_deref(), Some("orders.test_order"));
    assert_eq!(context[4], None, "no signature");
    assert_eq!(span.name, "execute");
    assert_eq!(span.service.as_deref(), Some("execution"));
    assert_eq!(span.trace_id, "ab".repeat(16));
    assert_eq!(span.span_id, "cd".repeat(8));
    assert_eq!(span.attribute_str("order.side"), Some("sell"));
    assert!(span.attributes.keys().all(|k| !k.starts_with("livecheck.test.")), "the context is not an attribute");
    assert!(span.status.is_error());
    assert_eq!(span.status.message.as_deref(), Some("side changed"));
    assert!((span.duration_seconds - 0.25).abs() < 1e-9);
}

#[test]
fn json_exports_read_hex_ids_and_integers_as_text_or_numbers() {
    let body = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"node-svc"}}]},
      "scopeSpans":[{"scope":{"name":"x"},"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
      "parentSpanId":"eee19b7ec3c1b173","name":"GET /quote","kind":2,"startTimeUnixNano":"1544712660000000000",
      "endTimeUnixNano":1544712661000000000,"attributes":[{"key":"livecheck.test.id","value":{"stringValue":"t-2"}},
      {"key":"http.status_code","value":{"intValue":"200"}},{"key":"ok","value":{"boolValue":true}},
      {"key":"ratio","value":{"doubleValue":0.5}},{"key":"tags","value":{"arrayValue":{"values":[{"stringValue":"a"}]}}}],
      "status":{"code":1},"events":[],"links":[]}]}]}]}"#;
    let (total, found) = test_spans(decode(body, Encoding::Json, None).unwrap(), |_| None);
    assert_eq!((total, found.len()), (1, 1));
    let span = &found[0].span;
    assert_eq!(span.trace_id, "5b8efff798038103d269b633813fc60c");
    assert_eq!(span.parent_span_id.as_deref(), Some("eee19b7ec3c1b173"));
    assert_eq!(span.attributes["http.status_code"], 200);
    assert_eq!(span.attributes["ok"], true);
    assert_eq!(span.attributes["ratio"], 0.5);
    assert_eq!(span.attributes["tags"], serde_json::json!(["a"]));
    assert_eq!(span.status.code, "OK");
    assert_eq!(span.duration_seconds, 1.0);
}

#[test]
fn gzip_bodies_are_inflated_within_the_limit() {
    let body = export(vec![span("execute", test_attributes())]).encode_to_vec();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&body).unwrap();
    let zipped = gz.finish().unwrap();
    assert_eq!(test_spans(decode(&zipped, Encoding::Protobuf, Some("gzip")).unwrap(), |_| None).1.len(), 1);
    // A bomb: 64 MiB of zeros in a few kilobytes.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![0u8; 64 * 1024 * 1024]).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < MAX_BODY_BYTES);
    assert!(matches!(decode(&bomb, Encoding::Protobuf, Some("gzip")), Err(BodyError::TooLarge)));
    assert!(matches!(decode(&body, Encoding::Protobuf, Some("gzip")), Err(BodyError::Gzip(_))));
    assert!(matches!(decode(&body, Encoding::Protobuf, Some("br")), Err(BodyError::ContentEncoding(_))));
}

#[test]
fn content_types_are_read_by_their_essence() {
    assert_eq!(Encoding::of_content_type("application/x-protobuf").unwrap(), Encoding::Protobuf);
    assert_eq!(Encoding::of_content_type("Application/JSON; charset=utf-8").unwrap(), Encoding::Json);
    assert!(Encoding::of_content_type("text/plain").is_err());
}

#[test]
fn malformed_bodies_are_errors_never_panics() {
    let good = export(vec![span("execute", test_attributes())]).encode_to_vec();
    let mut rng = fastrand::Rng::with_seed(7);
    for round in 0..2_000 {
        let mut body = good.clone();
        for _ in 0..1 + round % 8 {
            let i = rng.usize(..body.len());
            body[i] = rng.u8(..);
        }
        body.truncate(rng.usize(..=body.len()));
        if let Ok(request) = decode(&body, Encoding::Protobuf, None) {
            let _ = test_spans(request, |_| None);
        }
    }
    for body in
        [&b"{"[..], b"[1]", b"{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"zz\"}]}]}]}", b"\xff\xfe"]
    {
        assert!(decode(body, Encoding::Json, None).is_err());
    }
    // Deep nesting is refused by the decoders' recursion limits, not by the stack.
    let deep = format!("{}{}", "{\"arrayValue\":{\"values\":[".repeat(500), "]}}".repeat(500));
    let body = format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"attributes":[{{"key":"k","value":{deep}}}]}}]}}]}}]}}"#
    );
    assert!(decode(body.as_bytes(), Encoding::Json, None).is_err());
}
