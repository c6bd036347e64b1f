//! A LiveCheck instance whose web server cannot listen does not say it started (feature `web`).
//!
//! A test binary of its own: the log capture uses a scoped subscriber, and tracing caches per call site whether
//! anyone listens, which races with call sites first reached by other tests running in parallel.

mod support;

use livecheck::{Case, CaseResult, CaseSettings, LiveCheck, TestRun};
use support::logs::Captured;
use tracing::instrument::WithSubscriber;

struct Audit;

impl Case for Audit {
    type Args = ();
    async fn run(&self, _test: &TestRun, _: ()) -> CaseResult {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_that_cannot_listen_logs_no_start() {
    let logs = Captured::default();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let app = LiveCheck::builder().web_address(address.clone()).build();
    app.register(CaseSettings::new("audit"), |_| Audit).unwrap();

    let error = app.start().with_subscriber(logs.subscriber()).await.err().expect("the start fails");
    assert_eq!(error.to_string(), format!("LiveCheck web server: cannot listen on {address}"));
    let source = std::error::Error::source(&error).and_then(|s| s.downcast_ref::<std::io::Error>());
    assert_eq!(source.map(std::io::Error::kind), Some(std::io::ErrorKind::AddrInUse), "the cause is kept: {error:?}");
    assert!(!logs.text().contains("started"), "nothing says it started:\n{}", logs.text());

    // Once the port is free, the same app starts and says so: the capture does see these lines.
    drop(taken);
    let running = app.start().with_subscriber(logs.subscriber()).await.unwrap();
    let text = logs.text();
    assert!(text.contains("LiveCheck instance started"), "{text}");
    assert!(
        text.contains("LiveCheck web server listening") && text.contains(&format!("url=http://{address}/")),
        "{text}"
    );
    running.shutdown().await.unwrap();
}
