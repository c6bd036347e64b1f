//! Randomised hostile input, a few thousand cases per run with a seed printed on failure: malformed headers never
//! panic and never make a test; malformed pending-test and signal messages are dropped and the instance goes on
//! with the next valid one.

mod support;

use std::time::Duration;

use livecheck::{
    transport::MemoryTransport, Case, CaseResult, CaseSettings, Headers, LiveCheck, Signal, State, TestContext, TestRun,
};
use support::{builder, ReportReader};

/// Mutations of a valid value: truncated, bytes flipped, inserted or replaced by JSON-ish noise.
fn mutate(rng: &mut fastrand::Rng, valid: &[u8]) -> Vec<u8> {
    let mut bytes = valid.to_vec();
    for _ in 0..rng.usize(1..4) {
        match rng.u8(0..5) {
            0 => bytes.truncate(rng.usize(0..=bytes.len())),
            1 if !bytes.is_empty() => {
                let i = rng.usize(0..bytes.len());
                bytes[i] = rng.u8(..);
            }
            2 => {
                let i = rng.usize(0..=bytes.len());
                let noise = [&b"{"[..], b"}", b"\"", b"null", b"\xff\xfe", b"9999-99-99", b"[", b",", b"\n"];
                let piece = noise[rng.usize(0..noise.len())];
                bytes.splice(i..i, piece.iter().copied());
            }
            3 => bytes = (0..rng.usize(0..64)).map(|_| rng.u8(..)).collect(),
            _ => bytes.reverse(),
        }
    }
    bytes
}

fn seeded() -> fastrand::Rng {
    let seed = std::env::var("HOSTILE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| fastrand::u64(..));
    println!("HOSTILE_SEED={seed}");
    fastrand::Rng::with_seed(seed)
}

#[test]
fn malformed_test_headers_never_panic_and_a_changed_header_is_no_valid_test_or_a_checked_one() {
    let mut rng = seeded();
    let valid = [
        ("LiveCheck-Test-Id", &b"order-1"[..]),
        ("LiveCheck-Test-Name", b"orders.test_order"),
        ("LiveCheck-Test-Timestamp", b"2026-11-25T22:00:00.000000+00:00"),
        ("LiveCheck-Test-Expires", b"2026-11-26T01:00:00.000000+00:00"),
    ];
    for _ in 0..5000 {
        let mut headers = Headers::new();
        for (name, value) in valid {
            match rng.u8(0..6) {
                0 => {}
                1 => headers.push(name, mutate(&mut rng, value)),
                _ => headers.push(name, value),
            }
        }
        // Any outcome but a panic; a context that comes out has the fields it claims.
        if let Ok(Some(context)) = TestContext::from_headers(&headers) {
            assert!(!context.id().is_empty() && !context.case_name().is_empty());
            assert!(context.expires() >= context.timestamp(), "{context:?}");
        }
    }
}

struct OneSignal {
    done: Signal<u32>,
}

impl Case for OneSignal {
    type Args = u32;
    async fn run(&self, _test: &TestRun, n: u32) -> CaseResult {
        assert_eq!(self.done.wait(Duration::from_secs(5)).await?, n);
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn after_any_malformed_pending_test_or_signal_the_instance_runs_the_next_valid_test() {
    let mut rng = seeded();
    let transport = MemoryTransport::with_partitions(1);
    let app: LiveCheck = builder(&transport).build();
    let case = app.register(CaseSettings::new("c"), |s| OneSignal { done: s.declare("done") }).unwrap();
    let mut reader = ReportReader::new(&transport).await;
    let running = app.start().await.unwrap();
    let valid_test = br#"{"id":"x","case_name":"c","timestamp":"2026-11-25T22:00:00+00:00","test_args":[],"test_kwargs":{"n":1},"signal_latency":{}}"#;
    let valid_signal = br#"{"signal_name":"done","case_name":"c","key":"x","value":1}"#;
    for n in 0..200u32 {
        let (stream, valid) =
            if n % 2 == 0 { ("livecheck", &valid_test[..]) } else { ("livecheck-bus", &valid_signal[..]) };
        support::publish_raw(&transport, stream, &format!("junk-{n}"), &mutate(&mut rng, valid)).await;
        let test = case.trigger_with_id(&format!("t-{n}"), &n).await.unwrap();
        livecheck::scope(Some(test), case.done.send(&n)).await.unwrap();
        let report = reader.next(Duration::from_secs(10)).await;
        if report.test.as_ref().is_some_and(|t| t.id == format!("t-{n}")) {
            assert_eq!(report.state, State::Pass, "{report:?}");
        } else {
            // A mutation that is still a valid execution runs too; ours comes next.
            let report = reader.next(Duration::from_secs(10)).await;
            assert_eq!((report.test.unwrap().id, report.state), (format!("t-{n}"), State::Pass));
        }
    }
    running.shutdown().await.unwrap();
}
