//! What an operator reads at `info` while a case keeps failing: one line per finished execution (its steps at
//! `debug`), a suite failure logged when its cause starts and then at most once per `state_transition_delay`, not
//! once per failing test or stall check.
//!
//! Each test captures the logs of its own (current-thread) runtime with a thread-local subscriber.

mod support;

use std::time::Duration;

use livecheck::{Case, CaseResult, CaseSettings, LiveCheck, Signal, TestRun};
use support::logs::Captured;

struct NeverShipped {
    shipped: Signal<()>,
}

impl Case for NeverShipped {
    type Args = ();
    async fn run(&self, test: &TestRun, _: ()) -> CaseResult {
        test.log("waiting for the shipment");
        self.shipped.wait(Duration::from_secs(1)).await?;
        Ok(())
    }
}

/// The lines that mention `text`.
fn lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|line| line.contains(needle)).collect()
}

#[tokio::test(start_paused = true)]
async fn forty_timeouts_are_forty_lines_and_one_suite_failure_with_reminders_at_most_once_per_delay() {
    let logs = Captured::default();
    let _logging = tracing::subscriber::set_default(logs.subscriber());
    let delay = Duration::from_secs(10);

    let app = LiveCheck::builder().clock(livecheck::Clock::follow_tokio()).build();
    let settings = CaseSettings::new("never_shipped").max_consecutive_failures(3).state_transition_delay(delay);
    let case = app.register(settings, |s| NeverShipped { shipped: s.declare("shipped") }).unwrap();
    let running = app.start().await.unwrap();
    let started = tokio::time::Instant::now();
    for _ in 0..40 {
        case.trigger(&()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1_100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let elapsed = started.elapsed();
    running.shutdown().await.unwrap();

    let text = logs.text();
    let timeouts = lines_with(&text, "] TIMEOUT in ");
    assert_eq!(timeouts.len(), 40, "{text}");
    for line in &timeouts {
        assert!(line.contains(" ERROR ") && line.contains("missing signal shipped"), "{line}");
    }
    assert!(!text.contains("waiting for the shipment"), "the steps are at debug:\n{text}");
    assert!(!text.contains("still"), "no line per failing test:\n{text}");
    let suite = lines_with(&text, "never_shipped: suite FAIL (consecutive_failures)");
    let at_most = 1 + (elapsed.as_secs_f64() / delay.as_secs_f64()) as usize;
    assert!(!suite.is_empty() && suite.len() <= at_most, "{} suite lines, at most {at_most}:\n{text}", suite.len());
    assert!(suite.iter().all(|line| line.contains(" ERROR ")), "{suite:?}");
    assert!(suite[0].contains("failed after 3 consecutive failures"), "logged when it starts: {}", suite[0]);
    // A reminder comes `delay` after the last report at the soonest: at least 9 timeouts (1.1 s apart) later.
    let mut timeouts_since_report = None;
    for line in text.lines() {
        if line.contains("] TIMEOUT in ") {
            timeouts_since_report = timeouts_since_report.map(|n: usize| n + 1);
        } else if line.contains("never_shipped: suite ") {
            if let Some(n) = timeouts_since_report {
                assert!(n >= 9, "a reminder {n} timeouts after the last report:\n{text}");
            }
            timeouts_since_report = Some(0);
        }
    }
    // Every line is a timeout, a suite failure or one of the instance's own start and stop lines.
    let others = text.lines().count() - timeouts.len() - suite.len();
    assert!(others < 10, "{others} other lines:\n{text}");
}

struct Idle;

impl Case for Idle {
    type Args = ();
    async fn run(&self, _test: &TestRun, _: ()) -> CaseResult {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_stall_over_two_minutes_is_logged_when_it_starts_and_then_once_per_delay() {
    let logs = Captured::default();
    let _logging = tracing::subscriber::set_default(logs.subscriber());
    let delay = Duration::from_secs(60);

    let app = LiveCheck::builder().clock(livecheck::Clock::follow_tokio()).build();
    let settings = CaseSettings::new("idle").warn_stalled_after(Duration::from_secs(5)).state_transition_delay(delay);
    app.register(settings, |_| Idle).unwrap();
    let running = app.start().await.unwrap();
    tokio::time::sleep(Duration::from_secs(130)).await;
    running.shutdown().await.unwrap();

    let text = logs.text();
    let stalls = lines_with(&text, "idle: STALL: no test received");
    // At 5 s (its start), then at 70 s and 135 s at the soonest: 2 in 130 s, not one per 5 s check.
    assert_eq!(stalls.len(), 2, "{text}");
    assert!(stalls.iter().all(|line| line.contains(" ERROR ")), "{stalls:?}");
    assert!(stalls[0].contains("no test received for 5.0 s"), "{}", stalls[0]);
    let verdicts_and_health = lines_with(&text, "livecheck::app::outcome");
    assert_eq!(verdicts_and_health, stalls, "no other line about the stall:\n{text}");
}
