//! Poison messages go to the dead-letter stream when one is configured: the bytes as they came (cut at the size
//! limit), why, and where from; the instance goes on with the next message.

mod support;

use std::time::Duration;

use livecheck::{transport::MemoryTransport, CaseSettings, State};
use support::{builder, one_signal::OneSignal, publish_raw, read_all, until, ReportReader};

fn header<'a>(received: &'a livecheck::transport::Received, name: &str) -> &'a str {
    let value = received.message.headers.get(name).unwrap_or_else(|| panic!("no {name} header"));
    std::str::from_utf8(value).unwrap()
}

#[tokio::test]
async fn unreadable_pending_tests_signals_and_agent_messages_are_copied_with_why_and_where_from() {
    let transport = MemoryTransport::with_partitions(1);
    let app = builder(&transport).dead_letter_stream("dead").max_message_bytes(1000).build();
    let case = app.register(CaseSettings::new("c"), |s| OneSignal { done: s.declare("done") }).unwrap();
    let agent =
        livecheck::stream::Topic::<u32>::new(&app, "numbers").agent("numbers", 1, |_| async { Ok(()) }).await.unwrap();
    let mut reports = ReportReader::new(&transport).await;
    let running = app.start().await.unwrap();

    publish_raw(&transport, "livecheck", "bad-test", b"{not json").await;
    publish_raw(&transport, "livecheck-bus", "big-signal", &vec![b'x'; 5000]).await;
    publish_raw(&transport, "numbers", "not-a-number", b"\"seven\"").await;
    // The instance goes on.
    let test = case.trigger_with_id("t", &1).await.unwrap();
    livecheck::scope(Some(test), case.done.send(&1)).await.unwrap();
    assert_eq!(reports.next(Duration::from_secs(10)).await.state, State::Pass);

    until(Duration::from_secs(10), || app.metrics().dead_letters_published == 3).await;
    let dead = read_all(&transport, "dead").await;
    assert_eq!(dead.len(), 3);
    let by_key = |key: &str| dead.iter().find(|d| d.message.key.as_deref() == Some(key)).unwrap();

    let test = by_key("bad-test");
    assert_eq!(test.message.value, b"{not json");
    assert_eq!(header(test, "LiveCheck-Dead-Letter-Cause"), "malformed");
    assert_eq!(header(test, "LiveCheck-Dead-Letter-Stream"), "livecheck");
    assert_eq!(
        (header(test, "LiveCheck-Dead-Letter-Partition"), header(test, "LiveCheck-Dead-Letter-Offset")),
        ("0", "0")
    );
    assert!(!header(test, "LiveCheck-Dead-Letter-Error").is_empty());

    let signal = by_key("big-signal");
    assert_eq!(header(signal, "LiveCheck-Dead-Letter-Cause"), "too_large");
    assert_eq!(header(signal, "LiveCheck-Dead-Letter-Stream"), "livecheck-bus");
    assert_eq!(header(signal, "LiveCheck-Dead-Letter-Truncated-From"), "5000");
    assert_eq!(signal.message.value.len(), 1000, "cut at max_message_bytes");

    let number = by_key("not-a-number");
    assert_eq!(
        (header(number, "LiveCheck-Dead-Letter-Cause"), header(number, "LiveCheck-Dead-Letter-Stream")),
        ("malformed", "numbers")
    );

    running.shutdown().await.unwrap();
    agent.shutdown().await;
}

#[tokio::test]
async fn without_a_dead_letter_stream_poison_is_only_counted() {
    let transport = MemoryTransport::with_partitions(1);
    let app = builder(&transport).build();
    app.register(CaseSettings::new("c"), |s| OneSignal { done: s.declare("done") }).unwrap();
    let running = app.start().await.unwrap();
    publish_raw(&transport, "livecheck", "bad-test", b"{not json").await;
    until(Duration::from_secs(10), || app.metrics().tests_malformed == 1).await;
    let (published, failed) = (app.metrics().dead_letters_published, app.metrics().dead_letters_failed);
    assert_eq!((published, failed), (0, 0));
    running.shutdown().await.unwrap();
}
