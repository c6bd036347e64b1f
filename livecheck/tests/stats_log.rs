//! The 10 s stats line: while tests wait out a long timeout, the status still says what the last finished test
//! said, and the line shows the tests in flight and how long the oldest has been waiting.
//!
//! A test binary of its own: it installs the process's global log subscriber (the stats come from a spawned task).

mod support;

use std::time::Duration;

use livecheck::{Case, CaseResult, CaseSettings, LiveCheck, Signal, TestRun};
use support::logs::Captured;

struct Slow {
    done: Signal<()>,
}

impl Case for Slow {
    type Args = ();
    async fn run(&self, _test: &TestRun, _: ()) -> CaseResult {
        self.done.wait(Duration::from_secs(30)).await?;
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn the_stats_line_shows_tests_in_flight_and_the_oldest_ones_age() {
    let logs = Captured::default();
    tracing::subscriber::set_global_default(logs.subscriber()).unwrap();

    let app =
        LiveCheck::builder().clock(livecheck::Clock::follow_tokio()).stats_interval(Duration::from_secs(10)).build();
    let case = app.register(CaseSettings::new("slow"), |s| Slow { done: s.declare("done") }).unwrap();
    let running = app.start().await.unwrap();
    case.trigger(&()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(10_500)).await;
    let text = logs.text();
    let line = text.lines().find(|line| line.contains("case stats")).unwrap_or_else(|| panic!("no stats:\n{text}"));
    assert!(line.contains("case=\"slow\"") && line.contains("status=INIT"), "{line}");
    assert!(line.contains("in_flight=1"), "{line}");
    let oldest: f64 = line
        .split("oldest_in_flight_seconds=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no age of the oldest: {line}"));
    assert!((9.0..=10.5).contains(&oldest), "{line}");
    running.shutdown().await.unwrap();
}
