//! Reports as people read them: one line for `tail`, a verdict with its trace for `trigger` (and the trace id of
//! the request a test was sampled from, when it has one).

use chrono::{DateTime, SecondsFormat, Utc};
use livecheck::{wire::TestReport, State};

use crate::{
    args::seconds_text,
    output::{Paint, Tone},
};

/// One line: when it finished (issued + runtime), case, test id, state, runtime, error (on one line).
pub(crate) fn one_line(report: &TestReport, paint: Paint) -> String {
    let finished = report.test.as_ref().map_or_else(
        || "-".to_owned(),
        |test| {
            let runtime = report.runtime.and_then(|secs| chrono::Duration::from_std(secs_to_std(secs)?).ok());
            time_text(test.timestamp + runtime.unwrap_or_else(chrono::Duration::zero))
        },
    );
    let id = report.test.as_ref().map_or("(suite)", |test| test.id.as_str());
    let runtime = report.runtime.map_or_else(|| "-".to_owned(), seconds_text);
    let mut line = format!(
        "{finished}  {}  {id}  {}  {runtime}",
        report.case_name,
        paint.tone(&format!("{:<7}", report.state.as_str()), Tone::of_state(report.state.as_str())),
    );
    if let Some(trace_id) = report.test.as_ref().and_then(|test| test.trace_id.as_deref()) {
        line.push_str("  trace ");
        line.push_str(trace_id);
    }
    if let Some(error) = &report.error {
        line.push_str("  ");
        line.push_str(&error.lines().collect::<Vec<_>>().join(" | "));
    }
    line
}

/// The verdict of one execution: a headline, then for anything but a PASS the error, where it failed and the
/// steps it took (the report's trace).
pub(crate) fn verdict(report: &TestReport, paint: Paint) -> Vec<String> {
    let id = report.test.as_ref().map_or("(suite)", |test| test.id.as_str());
    let state = paint.bold(&paint.tone(report.state.as_str(), Tone::of_state(report.state.as_str())));
    let mut lines = vec![match report.runtime {
        Some(runtime) => format!("{state}  {}  test {id}  in {}", report.case_name, seconds_text(runtime)),
        None => format!("{state}  {}  test {id}  (not run)", report.case_name),
    }];
    if let Some(trace_id) = report.test.as_ref().and_then(|test| test.trace_id.as_deref()) {
        lines.push(format!("trace: {trace_id}"));
    }
    if !report.signal_latency.0.is_empty() {
        let waits: Vec<String> =
            report.signal_latency.0.iter().map(|(name, secs)| format!("{name} {}", seconds_text(*secs))).collect();
        lines.push(format!("signals waited for: {}", waits.join(", ")));
    }
    if report.state == State::Pass {
        return lines;
    }
    if let Some(error) = &report.error {
        lines.push(format!("error: {error}"));
    }
    if let Some(trace) = &report.traceback {
        // Our trace repeats the error (`assertion failed at LOCATION: ERROR`, or `ERROR` first): not twice.
        let (before, after) =
            match report.error.as_deref().filter(|e| !e.is_empty()).and_then(|e| trace.find(e).map(|at| (e, at))) {
                Some((error, at)) => (trace[..at].trim_end_matches(": "), &trace[at + error.len()..]),
                None => ("", trace.as_str()),
            };
        lines.extend([before].into_iter().filter(|b| !b.is_empty()).map(str::to_owned));
        lines.extend(after.trim_start_matches('\n').lines().map(str::to_owned));
    }
    lines
}

/// `2026-11-25T01:51:06.369Z`.
pub(crate) fn time_text(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn secs_to_std(secs: f64) -> Option<std::time::Duration> {
    (0.0..1e9).contains(&secs).then(|| std::time::Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use livecheck::wire::{SignalLatency, TestExecution};

    use super::*;

    fn report(state: State, error: Option<&str>, traceback: Option<&str>) -> TestReport {
        let issued: DateTime<Utc> = "2026-01-02T03:04:05.100Z".parse().unwrap();
        let execution = TestExecution::new("id-1", "orders", issued, issued, &()).unwrap();
        let mut report = TestReport::new("orders", state, Some(execution));
        report.runtime = Some(0.25);
        report.error = error.map(str::to_owned);
        report.traceback = traceback.map(str::to_owned);
        report.signal_latency = SignalLatency(vec![("order_sent_to_db".into(), 0.02)]);
        report
    }

    #[test]
    fn a_line_has_the_finish_time_case_id_state_runtime_and_error_on_one_line() {
        let line = one_line(&report(State::Fail, Some("side is buy\nexpected sell"), None), Paint::plain());
        assert_eq!(line, "2026-01-02T03:04:05.350Z  orders  id-1  FAIL     250ms  side is buy | expected sell");
        let suite = TestReport::new("orders", State::Stall, None);
        assert_eq!(one_line(&suite, Paint::plain()), "-  orders  (suite)  STALL    -");
    }

    #[test]
    fn the_trace_of_the_sampled_request_is_on_the_line_and_in_the_verdict() {
        let mut traced = report(State::Pass, None, None);
        traced.test.as_mut().unwrap().trace_id = Some("4bf92f3577b34da6a3ce929d0e0e4736".into());
        let line = one_line(&traced, Paint::plain());
        assert!(line.ends_with("250ms  trace 4bf92f3577b34da6a3ce929d0e0e4736"), "{line}");
        assert!(verdict(&traced, Paint::plain()).contains(&"trace: 4bf92f3577b34da6a3ce929d0e0e4736".to_owned()));
    }

    #[test]
    fn a_failing_verdict_shows_error_location_and_steps_once() {
        let trace = "assertion failed at src/case.rs:10:5: side is buy\nsteps:\n  started\n  waiting for x";
        let lines = verdict(&report(State::Fail, Some("side is buy"), Some(trace)), Paint::plain());
        assert_eq!(
            lines,
            [
                "FAIL  orders  test id-1  in 250ms",
                "signals waited for: order_sent_to_db 20ms",
                "error: side is buy",
                "assertion failed at src/case.rs:10:5",
                "steps:",
                "  started",
                "  waiting for x",
            ]
        );
        let timeout = verdict(&report(State::Timeout, Some("no x"), Some("no x\nsteps:\n  a")), Paint::plain());
        assert_eq!(timeout[2..], ["error: no x", "steps:", "  a"]);
        let pass = verdict(&report(State::Pass, None, None), Paint::plain());
        assert_eq!(pass.len(), 2);
    }
}
