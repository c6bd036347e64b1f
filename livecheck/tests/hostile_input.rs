//! Randomised hostile input, a few thousand cases per run with a seed printed on failure: malformed headers never
//! panic and never make a test; malformed pending-test and signal messages are dropped and the instance goes on
//! with the next valid one.

mod support;

use std::time::Duration;

use livecheck::{context::Headers, transport::MemoryTransport, CaseSettings, LiveCheck, State, TestContext};
use support::{
    builder,
    hostile::{corpus, mutate, seeded},
    one_signal::OneSignal,
    ReportReader,
};

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

#[test]
fn malformed_baggage_never_panics_and_a_changed_member_is_no_valid_test_or_a_checked_one() {
    let mut rng = seeded();
    let members = [
        "userId=alice;src=web",
        "livecheck.test.id=order-1",
        "livecheck.test.name=orders.test_order",
        "livecheck.test.timestamp=2026-11-25T22:00:00.000000%2B00:00",
        "livecheck.test.expires=2026-11-26T01:00:00.000000%2B00:00",
        "livecheck.test.signature=0000000000000000000000000000000000000000000000000000000000000000",
    ];
    let signing = LiveCheck::builder().signing_secret("s3cret").build();
    for _ in 0..5000 {
        let mut baggage: Vec<Vec<u8>> = Vec::new();
        for member in members {
            match rng.u8(0..6) {
                0 => {}
                1 => baggage.push(mutate(&mut rng, member.as_bytes())),
                _ => baggage.push(member.as_bytes().to_vec()),
            }
        }
        // One header, or one per member.
        let mut headers = Headers::new();
        if rng.bool() {
            headers.push("baggage", baggage.join(&b","[..]));
        } else {
            for member in baggage {
                headers.push("baggage", member);
            }
        }
        if let Ok(Some(context)) = TestContext::from_headers(&headers) {
            assert!(!context.id().is_empty() && !context.case_name().is_empty());
            assert!(context.expires() >= context.timestamp(), "{context:?}");
        }
        assert_eq!(signing.test_from_headers(&headers), None, "no valid signature: {headers:?}");
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
    // Seeds: the committed corpus (the Python implementation's messages, and odd ones), mutated or as they are.
    let (tests, signals) = (corpus("execution"), corpus("signal"));
    for n in 0..200u32 {
        let (stream, seeds) = if n % 2 == 0 { ("livecheck", &tests) } else { ("livecheck-bus", &signals) };
        let (name, seed) = &seeds[rng.usize(0..seeds.len())];
        let hostile = if rng.u8(0..4) == 0 { seed.clone() } else { mutate(&mut rng, seed) };
        support::publish_raw(&transport, stream, &format!("junk-{n}"), &hostile).await;
        // An id no corpus message can name (a mutated signal once carried `t-1`, the next test's id, so that test
        // ended ERROR: right behaviour, wrong expectation).
        let id = format!("valid-{n}-{:016x}", rng.u64(..));
        let test = case.trigger_with_id(&id, &n).await.unwrap();
        livecheck::scope(Some(test), case.done.send(&n)).await.unwrap();
        // A hostile message that is still a valid execution of this case runs too (and times out): skip its
        // report; ours must come, and pass.
        let mut others = 0;
        loop {
            let report = reader.next(Duration::from_secs(10)).await;
            if report.test.as_ref().is_some_and(|t| t.id == id) {
                assert_eq!(report.state, State::Pass, "after {name} (mutated or not): {report:?}");
                break;
            }
            others += 1;
            assert!(others < 5, "after {name}: our test's report never came");
        }
    }
    running.shutdown().await.unwrap();
}
