//! Exactly one report per execution, whenever its copies arrive (issue 15, item 2): a byte-identical copy of a
//! pending test — written twice by a producer's retry, replayed later by someone with access to the stream, or
//! delivered again after a restart — is never run a second time while its report is remembered (until its expiry
//! and 10 minutes), on one instance and across restarts; after that it is skipped as expired, never run.

mod support;

use std::{sync::Arc, time::Duration};

use livecheck::{
    transport::{MemoryTransport, Message, SqliteTransport, Transport},
    wire::TestReport,
    CaseHandle, CaseSettings, Clock, LiveCheck, LiveCheckBuilder, State, TestContext,
};
use support::{
    faulty::{Fault, Faulty},
    order::{register, Order},
    read_all, until, TempDb,
};

fn on_memory(transport: &MemoryTransport) -> LiveCheckBuilder {
    LiveCheck::builder().transport(transport.clone()).clock(Clock::follow_tokio())
}

/// The order case, its executions expiring after `expires`.
fn order_expiring(app: &LiveCheck, expires: Duration) -> CaseHandle<Order> {
    let settings = CaseSettings::new("order").test_expires(expires);
    app.register(settings, |s| Order { placed: s.declare("placed"), executed: s.declare("executed") }).unwrap()
}

async fn pass(service: &CaseHandle<Order>, test: &TestContext) {
    livecheck::scope(Some(test.clone()), async {
        service.placed.send(&"sell".to_owned()).await?;
        service.executed.notify().await
    })
    .await
    .unwrap();
}

/// Every report of the test `id` on the stream, in order.
async fn reports_of(transport: &dyn Transport, id: &str) -> Vec<TestReport> {
    read_all(transport, "livecheck-report")
        .await
        .into_iter()
        .map(|received| serde_json::from_slice::<TestReport>(&received.message.value).unwrap())
        .filter(|report| report.test.as_ref().is_some_and(|test| test.id == id))
        .collect()
}

/// The pending-test message of the test `id`, exactly as it was published.
async fn pending_message(transport: &dyn Transport, id: &str) -> Message {
    let all = read_all(transport, "livecheck").await;
    let found = all.into_iter().find(|received| received.message.key.as_deref() == Some(id)).expect("published");
    (*found.message).clone()
}

#[tokio::test(start_paused = true)]
async fn copies_of_an_execution_get_no_second_report_while_it_is_remembered_and_a_skip_after() {
    let transport = MemoryTransport::new();
    let expires = Duration::from_secs(3600);
    let service = order_expiring(&on_memory(&transport).build(), expires);
    let instance = on_memory(&transport).build();
    order_expiring(&instance, expires);
    let running = instance.start().await.unwrap();

    let test = service.trigger_with_id("t-1", &"sell".to_owned()).await.unwrap();
    let copy = pending_message(&transport, "t-1").await;
    // A producer's retry: the same message again while the test runs.
    transport.publish("livecheck", copy.clone()).await.unwrap();
    until(Duration::from_secs(1), || instance.metrics().tests_received == 2).await;
    pass(&service, &test).await;
    until(Duration::from_secs(5), || instance.metrics().tests_finished == 1).await;

    // Replayed later, within the execution's life and after it (within the 10 minutes it is still remembered).
    for wait in [Duration::from_secs(1800), Duration::from_secs(1800 + 300)] {
        tokio::time::sleep(wait).await;
        transport.publish("livecheck", copy.clone()).await.unwrap();
    }
    until(Duration::from_secs(5), || instance.metrics().tests_redelivered == 3).await;
    // Long enough for any copy that ran to time out.
    tokio::time::sleep(Duration::from_secs(120)).await;
    let states: Vec<State> = reports_of(&transport, "t-1").await.iter().map(|r| r.state).collect();
    assert_eq!(states, [State::Pass], "one report however many copies arrived");

    // Past its expiry and the 10 minutes after: forgotten, and skipped as expired, never run.
    tokio::time::sleep(Duration::from_secs(900)).await;
    transport.publish("livecheck", copy.clone()).await.unwrap();
    until(Duration::from_secs(5), || instance.metrics().tests_finished == 2).await;
    let reports = reports_of(&transport, "t-1").await;
    assert_eq!(reports.iter().map(|r| r.state).collect::<Vec<_>>(), [State::Pass, State::Skip]);
    assert!(reports[1].error.as_deref().unwrap_or_default().contains("expired"), "{:?}", reports[1].error);
    assert_eq!(instance.metrics().tests_redelivered, 3);
    running.shutdown().await.unwrap();
}

/// The moment between a verdict and its report being out (a slow broker makes it long): a copy arriving then is
/// recognised — the execution is remembered as reported before it stops counting as running.
#[tokio::test(start_paused = true)]
async fn a_copy_arriving_while_the_report_is_being_published_gets_no_second_report() {
    let transport = MemoryTransport::new();
    let slow_reports = Faulty::new(transport.clone())
        .on_publish(|stream| (stream == "livecheck-report").then_some(Fault::Delay(Duration::from_secs(10))));
    let service = order_expiring(&on_memory(&transport).build(), Duration::from_secs(3600));
    let instance = LiveCheck::builder().transport(slow_reports).clock(Clock::follow_tokio()).build();
    order_expiring(&instance, Duration::from_secs(3600));
    let running = instance.start().await.unwrap();

    let test = service.trigger_with_id("t-1", &"sell".to_owned()).await.unwrap();
    pass(&service, &test).await;
    // The verdict is in; its report is on its way for 10 s.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(instance.metrics().tests_finished, 1, "the verdict is in");
    assert!(reports_of(&transport, "t-1").await.is_empty(), "the report is still being published");
    transport.publish("livecheck", pending_message(&transport, "t-1").await).await.unwrap();
    until(Duration::from_secs(5), || instance.metrics().tests_redelivered == 1).await;
    // Long enough for a copy that ran to time out and its report to be out.
    tokio::time::sleep(Duration::from_secs(300)).await;
    running.shutdown().await.unwrap();
    let states: Vec<State> = reports_of(&transport, "t-1").await.iter().map(|r| r.state).collect();
    assert_eq!(states, [State::Pass], "one report, the copy not run");
}

#[tokio::test(start_paused = true)]
async fn a_copy_replayed_after_a_restart_is_recognised_from_the_report_stream() {
    let transport = MemoryTransport::with_partitions(1);
    let service = register(&on_memory(&transport).build());
    let instance = on_memory(&transport).build();
    register(&instance);
    let running = instance.start().await.unwrap();
    let test = service.trigger_with_id("t-1", &"sell".to_owned()).await.unwrap();
    pass(&service, &test).await;
    // More tests after it, so that the committed mark moves past its report.
    for i in 0..20 {
        let test = service.trigger_with_id(&format!("later-{i}"), &"sell".to_owned()).await.unwrap();
        pass(&service, &test).await;
    }
    until(Duration::from_secs(5), || instance.metrics().tests_finished == 21).await;
    tokio::time::sleep(Duration::from_secs(120)).await;
    running.shutdown().await.unwrap();

    let restarted = on_memory(&transport).build();
    register(&restarted);
    let running = restarted.start().await.unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    transport.publish("livecheck", pending_message(&transport, "t-1").await).await.unwrap();
    until(Duration::from_secs(5), || restarted.metrics().tests_redelivered == 1).await;
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(restarted.metrics().tests_finished, 0, "nothing ran again");
    running.shutdown().await.unwrap();
    let states: Vec<State> = reports_of(&transport, "t-1").await.iter().map(|r| r.state).collect();
    assert_eq!(states, [State::Pass]);
}

/// On the embedded log, with the instance made anew as a restarted process would be: the replayed copy, appended
/// after the restart, finds its report through the horizon committed with the group's offsets.
#[tokio::test]
async fn on_the_embedded_log_a_replay_after_a_restart_gets_no_second_report() {
    let db = TempDb::new("replays");
    let transport: Arc<dyn Transport> = Arc::new(SqliteTransport::open(&db.0).unwrap());
    let builder = || LiveCheck::builder().shared_transport(transport.clone());
    let service = register(&builder().build());

    let instance = builder().build();
    register(&instance);
    let running = instance.start().await.unwrap();
    let test = service.trigger_with_id("t-1", &"sell".to_owned()).await.unwrap();
    pass(&service, &test).await;
    for i in 0..5 {
        let test = service.trigger_with_id(&format!("later-{i}"), &"sell".to_owned()).await.unwrap();
        pass(&service, &test).await;
    }
    until_real(|| instance.metrics().tests_finished == 6).await;
    // Commits are written every 100 ms.
    tokio::time::sleep(Duration::from_millis(500)).await;
    running.shutdown().await.unwrap();

    let restarted = builder().build();
    register(&restarted);
    let running = restarted.start().await.unwrap();
    transport.publish("livecheck", pending_message(transport.as_ref(), "t-1").await).await.unwrap();
    until_real(|| restarted.metrics().tests_redelivered == 1).await;
    running.shutdown().await.unwrap();
    assert_eq!(restarted.metrics().tests_finished, 0, "nothing ran again");
    let states: Vec<State> = reports_of(transport.as_ref(), "t-1").await.iter().map(|r| r.state).collect();
    assert_eq!(states, [State::Pass]);
}

/// Polls `cond` in real time; panics after 20 s.
async fn until_real(mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "condition not reached within 20 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
