//! Starting and stopping an instance: what is allowed once, and what a stop reports.

mod support;

use std::time::Duration;

use livecheck::{transport::MemoryTransport, Case, CaseResult, CaseSettings, Error, TestRun};
use support::builder;

struct Quiet;

impl Case for Quiet {
    type Args = ();
    async fn run(&self, _: &TestRun, _: ()) -> CaseResult {
        Ok(())
    }
}

struct PanickyFakeRequests;

impl Case for PanickyFakeRequests {
    type Args = ();
    async fn run(&self, _: &TestRun, _: ()) -> CaseResult {
        Ok(())
    }
    async fn make_fake_request(&self) -> CaseResult {
        panic!("the fake request hook blew up");
    }
}

#[tokio::test]
async fn an_app_starts_once_and_takes_no_case_after_it_started() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    app.register(CaseSettings::new("first"), |_| Quiet).unwrap();
    let running = app.start().await.unwrap();
    let again = app.start().await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(again.contains("started already"), "a second start is an error: {again}");
    let late = app.register(CaseSettings::new("late"), |_| Quiet).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(late.contains("registered after start()"), "{late}");
    assert!(app.case_health("late").is_none());
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_reports_a_task_that_panicked() {
    let transport = MemoryTransport::new();
    let app = builder(&transport).build();
    let settings = CaseSettings::new("panicky").frequency(Duration::from_millis(10));
    app.register(settings, |_| PanickyFakeRequests).unwrap();
    let running = app.start().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    match running.shutdown().await {
        Err(Error::TasksPanicked(panics)) => {
            assert!(panics.iter().any(|p| p.contains("the fake request hook blew up")), "{panics:?}")
        }
        other => panic!("expected the panic reported, got {other:?}"),
    }
}
