//! Exactly one right verdict per execution across instances, restarts and rebalances (SPEC §6, durable state):
//! a second instance in the group, a restart with tests in flight, a member joining while tests wait, a busy
//! instance. Each test counts what a user sees: one report per execution, and its verdict.

mod support;

use std::{collections::HashMap, sync::Arc, time::Duration};

use livecheck::{
    transport::{MemoryTransport, SqliteTransport, Transport},
    wire::TestReport,
    CaseHandle, Clock, LiveCheck, LiveCheckBuilder, State, TestContext,
};
use support::{
    order::{register, Order},
    read_all, until, TempDb,
};

fn on_memory(transport: &MemoryTransport) -> LiveCheckBuilder {
    LiveCheck::builder().transport(transport.clone()).clock(Clock::follow_tokio())
}

fn on_sqlite(transport: &Arc<dyn Transport>) -> LiveCheckBuilder {
    LiveCheck::builder().shared_transport(transport.clone())
}

fn sqlite(db: &TempDb) -> Arc<dyn Transport> {
    Arc::new(SqliteTransport::open(&db.0).unwrap().with_liveness(Duration::from_millis(800)))
}

async fn trigger(service: &CaseHandle<Order>, id: &str) -> TestContext {
    service.trigger_with_id(id, &"sell".to_owned()).await.unwrap()
}

async fn placed(service: &CaseHandle<Order>, test: &TestContext) {
    livecheck::scope(Some(test.clone()), service.placed.send(&"sell".to_owned())).await.unwrap();
}

async fn executed(service: &CaseHandle<Order>, test: &TestContext) {
    livecheck::scope(Some(test.clone()), service.executed.notify()).await.unwrap();
}

/// Every test report on the stream, by test id.
async fn reports_by_test(transport: &dyn Transport) -> HashMap<String, Vec<State>> {
    let mut by_test: HashMap<String, Vec<State>> = HashMap::new();
    for received in read_all(transport, "livecheck-report").await {
        let report: TestReport = serde_json::from_slice(&received.message.value).unwrap();
        if let Some(test) = report.test {
            by_test.entry(test.id).or_default().push(report.state);
        }
    }
    by_test
}

/// Asserts that each of `ids` got exactly one report, PASS.
async fn assert_one_pass_each(transport: &dyn Transport, ids: &[String]) {
    let reports = reports_by_test(transport).await;
    let wrong: Vec<_> = ids.iter().filter(|id| reports.get(*id) != Some(&vec![State::Pass])).collect();
    let examples: Vec<_> = wrong.iter().take(5).map(|id| (id, reports.get(*id))).collect();
    assert!(wrong.is_empty(), "{} of {} tests did not get exactly one PASS: {examples:?}", wrong.len(), ids.len());
}

/// An instance on `transport` executing 8 tests that got `placed` and wait for `executed`.
async fn eight_tests_waiting(
    transport: &MemoryTransport,
    service: &CaseHandle<Order>,
) -> (LiveCheck, livecheck::Running, Vec<TestContext>) {
    let instance = on_memory(transport).build();
    register(&instance);
    let running = instance.start().await.unwrap();
    let mut tests = Vec::new();
    for i in 0..8 {
        let test = trigger(service, &format!("o-{i}")).await;
        placed(service, &test).await;
        tests.push(test);
    }
    until(Duration::from_secs(1), || instance.metrics().tests_executing == 8).await;
    (instance, running, tests)
}

async fn reports_count(transport: &dyn Transport) -> usize {
    reports_by_test(transport).await.values().map(Vec::len).sum()
}

#[tokio::test(start_paused = true)]
async fn a_signal_consumed_before_a_restart_still_counts_after_it() {
    let transport = MemoryTransport::new();
    let service = register(&on_memory(&transport).build());
    let instance = on_memory(&transport).build();
    register(&instance);
    let running = instance.start().await.unwrap();
    let test = trigger(&service, "o-1").await;
    placed(&service, &test).await;
    until(Duration::from_secs(1), || instance.metrics().signals_received == 1).await;
    running.shutdown().await.unwrap();

    let restarted = on_memory(&transport).build();
    register(&restarted);
    let running = restarted.start().await.unwrap();
    executed(&service, &test).await;
    until(Duration::from_secs(60), || restarted.metrics().tests_finished == 1).await;
    running.shutdown().await.unwrap();
    assert_one_pass_each(&transport, &["o-1".into()]).await;
}

#[tokio::test(start_paused = true)]
async fn a_restart_does_not_run_again_the_tests_that_passed_behind_a_slow_one() {
    // One partition: the slow test holds the commit point of every test behind it.
    let transport = MemoryTransport::with_partitions(1);
    let service = register(&on_memory(&transport).build());
    let instance = on_memory(&transport).build();
    register(&instance);
    let running = instance.start().await.unwrap();
    let slow = trigger(&service, "slow").await;
    let mut ids = vec!["slow".to_owned()];
    for i in 0..29 {
        let id = format!("fast-{i}");
        let test = trigger(&service, &id).await;
        placed(&service, &test).await;
        executed(&service, &test).await;
        ids.push(id);
    }
    until(Duration::from_secs(5), || instance.metrics().tests_finished == 29).await;
    running.shutdown().await.unwrap();

    let restarted = on_memory(&transport).build();
    register(&restarted);
    let running = restarted.start().await.unwrap();
    placed(&service, &slow).await;
    executed(&service, &slow).await;
    until(Duration::from_secs(60), || restarted.metrics().tests_finished >= 1).await;
    tokio::time::sleep(Duration::from_secs(35)).await;
    assert_eq!(restarted.metrics().tests_redelivered, 29, "delivered again, found reported, not run");
    running.shutdown().await.unwrap();
    assert_one_pass_each(&transport, &ids).await;
    assert_eq!(reports_count(&transport).await, 30);
}

#[tokio::test(start_paused = true)]
async fn a_member_joining_while_tests_wait_causes_no_second_report() {
    let transport = MemoryTransport::new();
    let service = register(&on_memory(&transport).build());
    let (first, running_first, tests) = eight_tests_waiting(&transport, &service).await;

    let second = on_memory(&transport).build();
    register(&second);
    let running_second = second.start().await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    for test in &tests {
        executed(&service, test).await;
    }
    until(Duration::from_secs(60), || first.metrics().tests_finished + second.metrics().tests_finished >= 8).await;
    tokio::time::sleep(Duration::from_secs(35)).await;
    running_first.shutdown().await.unwrap();
    running_second.shutdown().await.unwrap();
    let ids: Vec<String> = tests.iter().map(|t| t.id().to_owned()).collect();
    assert_one_pass_each(&transport, &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_in_one_group_on_the_embedded_log_pass_every_test() {
    let db = TempDb::new("two-instances");
    let transport = sqlite(&db);
    let service = register(&on_sqlite(&transport).build());
    let (a, b) = (on_sqlite(&sqlite(&db)).build(), on_sqlite(&sqlite(&db)).build());
    register(&a);
    register(&b);
    let (running_a, running_b) = (a.start().await.unwrap(), b.start().await.unwrap());
    // Both members see each other (a few heartbeats), then the tests are issued.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut ids = Vec::new();
    for i in 0..40 {
        let test = trigger(&service, &format!("o-{i}")).await;
        placed(&service, &test).await;
        executed(&service, &test).await;
        ids.push(test.id().to_owned());
    }
    let finished = || a.metrics().tests_finished + b.metrics().tests_finished;
    tokio::time::timeout(Duration::from_secs(40), async {
        while finished() < 40 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .ok();
    assert!(a.metrics().tests_finished > 0 && b.metrics().tests_finished > 0, "both instances run tests");
    running_a.shutdown().await.unwrap();
    running_b.shutdown().await.unwrap();
    assert_one_pass_each(transport.as_ref(), &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_instance_keeps_its_partitions_and_a_joining_one_causes_no_second_report() {
    let db = TempDb::new("busy");
    let transport = sqlite(&db);
    let service = register(&on_sqlite(&transport).build());
    // At its limit of 2 tests for longer than the liveness timeout (0.8 s).
    let busy = on_sqlite(&sqlite(&db)).max_concurrent_tests(2).build();
    register(&busy);
    let running_busy = busy.start().await.unwrap();
    let mut tests = Vec::new();
    for i in 0..12 {
        tests.push(trigger(&service, &format!("o-{i}")).await);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let joining = on_sqlite(&sqlite(&db)).max_concurrent_tests(2).build();
    register(&joining);
    let running_joining = joining.start().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    for test in &tests {
        placed(&service, test).await;
        executed(&service, test).await;
    }
    let finished = || busy.metrics().tests_finished + joining.metrics().tests_finished;
    tokio::time::timeout(Duration::from_secs(30), async {
        while finished() < 12 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .ok();
    tokio::time::sleep(Duration::from_secs(1)).await;
    running_busy.shutdown().await.unwrap();
    running_joining.shutdown().await.unwrap();
    let ids: Vec<String> = tests.iter().map(|t| t.id().to_owned()).collect();
    assert_one_pass_each(transport.as_ref(), &ids).await;
}

#[tokio::test]
async fn streams_with_different_partition_counts_are_a_start_up_error_naming_both() {
    let transport = MemoryTransport::new();
    transport.create_stream("livecheck", 4).await.unwrap();
    transport.create_stream("livecheck-bus", 8).await.unwrap();
    let app = on_memory(&transport).build();
    register(&app);
    let error = app.start().await.err().expect("the instance does not start").to_string();
    assert!(
        error.contains("`livecheck` (4 partitions)") && error.contains("`livecheck-bus` (8 partitions)"),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn tests_interrupted_by_a_rebalance_pass_when_their_partition_comes_back() {
    let transport = MemoryTransport::new();
    let service = register(&on_memory(&transport).build());
    let (first, running_first, tests) = eight_tests_waiting(&transport, &service).await;
    // A second instance takes half the partitions (their tests stop here without a verdict), then leaves, and
    // they come back: their tests run again here, and their first signal, read again, still counts.
    let second = on_memory(&transport).build();
    register(&second);
    let running_second = second.start().await.unwrap();
    until(Duration::from_secs(5), || second.metrics().tests_received > 0).await;
    running_second.shutdown().await.unwrap();
    until(Duration::from_secs(5), || first.metrics().tests_executing == 8).await;
    for test in &tests {
        executed(&service, test).await;
    }
    until(Duration::from_secs(60), || first.metrics().tests_finished >= 8).await;
    tokio::time::sleep(Duration::from_secs(35)).await;
    running_first.shutdown().await.unwrap();
    let ids: Vec<String> = tests.iter().map(|t| t.id().to_owned()).collect();
    assert_one_pass_each(&transport, &ids).await;
}
