//! One view of every instance (issue 18, item 5): two instances of one group on the embedded log, each with its own
//! handle on the log file as two processes would have, see each other's cases and recent failures — in
//! `LiveCheck::group_view` and in `/api/status` — and which instance ran what.

mod support;

use std::{sync::Arc, time::Duration};

use livecheck::{
    transport::{SqliteTransport, Transport},
    Case, CaseHandle, CaseResult, CaseSettings, LiveCheck, Signal, State, TestRun,
};
use support::TempDb;

/// Waits 300 ms for `done`, which never comes: a TIMEOUT.
struct NeverDone {
    done: Signal<()>,
}

impl Case for NeverDone {
    type Args = u32;
    async fn run(&self, _test: &TestRun, _: u32) -> CaseResult {
        self.done.wait(Duration::from_millis(300)).await?;
        Ok(())
    }
}

fn register(app: &LiveCheck) -> CaseHandle<NeverDone> {
    app.register(CaseSettings::new("orders.never_done"), |s| NeverDone { done: s.declare("done") }).unwrap()
}

fn on(db: &TempDb) -> Arc<dyn Transport> {
    Arc::new(SqliteTransport::open(&db.0).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_instance_shows_the_whole_group_with_who_ran_what() {
    let db = TempDb::new("group-view");
    let first = LiveCheck::builder().shared_transport(on(&db)).web_address("127.0.0.1:0").build();
    register(&first);
    let first_running = first.start().await.unwrap();
    let second = LiveCheck::builder().shared_transport(on(&db)).build();
    register(&second);
    let second_running = second.start().await.unwrap();

    // Whatever else is written on the instances stream is passed over: not JSON, not a summary, over the size
    // limit.
    let writer = on(&db);
    for value in [b"not json".to_vec(), br#"{"instance": 7}"#.to_vec(), vec![b' '; 2 * 1024 * 1024]] {
        let message = livecheck::transport::Message { key: None, value, headers: Default::default() };
        writer.publish("livecheck-instances", message).await.unwrap();
    }
    let service = register(&LiveCheck::builder().shared_transport(on(&db)).build());
    for n in 0..8 {
        service.trigger(&n).await.unwrap();
    }
    // Every test times out, on one instance or the other; then both summaries go round (every 5 s).
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    let view = loop {
        let view = first.group_view();
        let failures: usize = view.iter().map(|v| v.recent_failures.len()).sum();
        let (a, b) = (first.metrics().tests_finished as usize, second.metrics().tests_finished as usize);
        // Each summary carries at most 5 failures per case.
        if view.len() == 2 && a + b == 8 && failures == a.min(5) + b.min(5) {
            break view;
        }
        assert!(std::time::Instant::now() < deadline, "the group view did not show both instances: {view:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for instance in &view {
        assert_eq!(instance.cases.len(), 1);
        assert_eq!(instance.cases[0].name, "orders.never_done");
        assert!(instance.recent_failures.iter().all(|r| r.state == Some(State::Timeout)));
    }
    // Which instance ran what: each one's failures are its own executions.
    let (a, b) = (first.metrics().tests_finished as usize, second.metrics().tests_finished as usize);
    let mut counts: Vec<usize> = view.iter().map(|v| v.recent_failures.len()).collect();
    counts.sort();
    let mut expected = vec![a.min(5), b.min(5)];
    expected.sort();
    assert_eq!(counts, expected, "{a} and {b} finished");
    assert!(a > 0 && b > 0, "both ran tests: {a} and {b}");

    // The same in the first instance's API.
    let url = format!("http://{}/api/status", first_running.web_address().unwrap());
    let status: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    let instances = status["instances"].as_array().expect("instances listed");
    assert_eq!(instances.len(), 2, "{status}");
    second_running.shutdown().await.unwrap();
    first_running.shutdown().await.unwrap();
}
