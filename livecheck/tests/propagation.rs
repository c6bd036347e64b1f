//! The current test travelling in message headers (SPEC appendix 1–4, 6; SPEC §5 items 9, 10).

mod support;

use std::time::Duration;

use livecheck::{
    context::{append_current_test, Headers, HEADER_EXPIRES, HEADER_TEST_ID, HEADER_TEST_NAME, HEADER_TIMESTAMP},
    current_test,
    transport::{MemoryTransport, Message, Transport},
    Case, CaseResult, CaseSettings, LiveCheck, Signal, TestContext, TestRun,
};
use support::{builder, signals};

struct Noop {
    stage: Signal<()>,
}

impl Case for Noop {
    type Args = ();
    async fn run(&self, _test: &TestRun, _args: ()) -> CaseResult {
        Ok(())
    }
}

fn test(id: &str) -> TestContext {
    let now = chrono::Utc::now();
    TestContext::new(id, "orders", now, now + chrono::Duration::hours(3))
}

/// A consumer as a service would write it: each message is handled with its own test current, if any.
async fn consume(app: &LiveCheck, transport: &MemoryTransport, n: usize) -> Vec<Option<String>> {
    let mut sub = transport.subscribe(&["orders"], "service").await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..n {
        let received = tokio::time::timeout(Duration::from_secs(1), support::next_message(&mut sub)).await.unwrap();
        let test = app.test_from_headers(&received.message.headers);
        let handled = livecheck::scope(test, async { current_test().map(|t| t.id().to_owned()) }).await;
        seen.push(handled);
    }
    seen
}

async fn produce(transport: &MemoryTransport, mut headers: Headers) {
    append_current_test(&mut headers);
    let message = Message { key: Some("k".into()), value: b"{}".to_vec(), headers };
    transport.publish("orders", message).await.unwrap();
}

#[tokio::test]
async fn a_message_without_test_headers_is_handled_with_no_test() {
    let transport = MemoryTransport::with_partitions(1);
    let app = builder(&transport).build();
    produce(&transport, Headers::new()).await;
    assert_eq!(consume(&app, &transport, 1).await, vec![None]);
}

#[tokio::test]
async fn a_message_with_test_headers_is_handled_with_that_test_and_the_next_one_is_not() {
    let transport = MemoryTransport::with_partitions(1);
    let app = builder(&transport).build();
    livecheck::scope(Some(test("t-1")), produce(&transport, Headers::new())).await;
    produce(&transport, Headers::new()).await;
    livecheck::scope(Some(test("t-2")), produce(&transport, Headers::new())).await;
    // Even inside a scope of its own, a message without headers sees no test.
    let seen = livecheck::scope(Some(test("outer")), consume(&app, &transport, 3)).await;
    assert_eq!(seen, vec![Some("t-1".to_owned()), None, Some("t-2".to_owned())]);
}

#[tokio::test]
async fn producing_in_a_test_appends_the_four_headers_once_after_the_existing_ones() {
    let transport = MemoryTransport::with_partitions(1);
    let existing: Headers = [("trace-id", "abc")].into_iter().collect();
    let t = test("t-1");
    livecheck::scope(Some(t.clone()), async {
        let mut headers = existing.clone();
        append_current_test(&mut headers);
        // A second producer layer in the same process (another app) must not add them again.
        produce(&transport, headers).await;
    })
    .await;
    let message = &transport.messages("orders")[0].message;
    let names: Vec<&str> = message.headers.iter().map(|(n, _)| n).collect();
    // The four, then the same in W3C baggage (see tests/baggage.rs).
    assert_eq!(names, vec!["trace-id", HEADER_TEST_ID, HEADER_TEST_NAME, HEADER_TIMESTAMP, HEADER_EXPIRES, "baggage"]);
    assert_eq!(TestContext::from_headers(&message.headers).unwrap(), Some(t));
}

#[tokio::test]
async fn producing_with_no_current_test_leaves_headers_untouched() {
    let transport = MemoryTransport::with_partitions(1);
    let existing: Headers = [("trace-id", "abc"), ("other", "x")].into_iter().collect();
    produce(&transport, existing.clone()).await;
    assert_eq!(transport.messages("orders")[0].message.headers, existing);
}

#[tokio::test]
async fn partial_malformed_or_non_utf8_headers_mean_no_test_and_are_counted() {
    let transport = MemoryTransport::with_partitions(1);
    let app = builder(&transport).build();
    let good = test("t-1").header_pairs();
    let partial: Headers = good[..1].iter().cloned().collect();
    let mut no_expiry: Headers = good[..3].iter().cloned().collect();
    no_expiry.push("unrelated", "x");
    let mut bad_time: Headers = good[..2].iter().cloned().collect();
    bad_time.push(HEADER_TIMESTAMP, "25/11/2026 01:51");
    bad_time.push(HEADER_EXPIRES, good[3].1.clone());
    let mut not_utf8: Headers = good[1..].iter().cloned().collect();
    not_utf8.push(HEADER_TEST_ID, vec![0xc3, 0x28]);
    for headers in [partial, no_expiry, bad_time, not_utf8] {
        produce(&transport, headers).await;
    }
    let seen = consume(&app, &transport, 4).await;
    assert_eq!(seen, vec![None, None, None, None]);
    assert_eq!(app.metrics().headers_malformed, 4);
}

#[tokio::test]
async fn header_names_are_matched_case_insensitively() {
    let transport = MemoryTransport::with_partitions(1);
    let app = builder(&transport).build();
    let headers: Headers = test("t-1").header_pairs().into_iter().map(|(n, v)| (n.to_uppercase(), v)).collect();
    produce(&transport, headers).await;
    assert_eq!(consume(&app, &transport, 1).await, vec![Some("t-1".to_owned())]);
}

#[tokio::test]
async fn two_apps_in_one_process_put_each_header_on_a_signal_once() {
    let transport = MemoryTransport::with_partitions(1);
    let first = builder(&transport).build();
    let second = builder(&transport).build();
    let a = first.register(CaseSettings::new("orders"), |s| Noop { stage: s.declare("stage") }).unwrap();
    let _b = second.register(CaseSettings::new("orders"), |s| Noop { stage: s.declare("stage") }).unwrap();
    livecheck::scope(Some(test("t-1")), a.stage.notify()).await.unwrap();
    let (message, _) = &signals(&transport)[0];
    for name in [HEADER_TEST_ID, HEADER_TEST_NAME, HEADER_TIMESTAMP, HEADER_EXPIRES] {
        let count = message.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).count();
        assert_eq!(count, 1, "{name}");
    }
}

#[tokio::test]
async fn expiry_is_computed_each_time_not_cached() {
    let now = chrono::Utc::now();
    let t = TestContext::new("t", "c", now, now + chrono::Duration::seconds(10));
    assert!(!t.is_expired(now));
    assert!(t.is_expired(now + chrono::Duration::seconds(10)));
    assert!(!t.is_expired(now), "asking again with an earlier time gives the earlier answer");
}

#[tokio::test]
async fn a_carried_test_follows_into_spawned_tasks_and_nothing_leaks_between_tasks() {
    let t = test("t-1");
    let (carried, plain) = livecheck::scope(Some(t), async {
        let carried = tokio::spawn(livecheck::context::carry_current_test(async { current_test() }));
        let plain = tokio::spawn(async { current_test() });
        (carried.await.unwrap(), plain.await.unwrap())
    })
    .await;
    assert_eq!(carried.unwrap().id(), "t-1");
    assert_eq!(plain, None);
    assert_eq!(current_test(), None);
}
