//! The router's commit and eviction core: what it holds, what it hands over, and which bus offsets stay needed.

use std::time::Duration;

use chrono::TimeZone;

use super::*;
use crate::{case::CaseCore, wire::RawExecution, Case, CaseResult, CaseSettings, LiveCheck, Signal};

struct OneSignal {
    _done: Signal<u32>,
}

impl Case for OneSignal {
    type Args = ();
    async fn run(&self, _: &TestRun, _: ()) -> CaseResult {
        Ok(())
    }
}

/// Case `c`, with one signal, registered on an app of its own.
fn case_c() -> Arc<CaseCore> {
    let app = LiveCheck::builder().build();
    app.register(CaseSettings::new("c"), |signals| OneSignal { _done: signals.declare("done") }).unwrap().core
}

/// `secs` seconds after a fixed moment.
fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
}

/// The execution `id` of case `c` issued at `issued`, as it starts executing.
fn run(core: &Arc<CaseCore>, id: &str, issued: DateTime<Utc>) -> Arc<TestRun> {
    let execution = RawExecution {
        id: id.to_owned(),
        case_name: "c".to_owned(),
        timestamp: issued,
        expires: issued + chrono::Duration::hours(1),
        test_args: None,
        test_kwargs: None,
        trace_id: None,
        by_hand: false,
        service_version: None,
    };
    Arc::new(TestRun::new(execution, core.clone()))
}

/// Signal 0 of `case` for test `key` issued at `issued`, read at `offset` of bus partition 0 (its mark ten times
/// the offset), kept early for an hour at most.
fn signal<'a>(key: &'a str, issued: Option<DateTime<Utc>>, case: &'a Arc<str>, offset: u64) -> Arrival<'a> {
    Arrival {
        key,
        timestamp: issued,
        case,
        index: 0,
        value: RawValue::from_string(offset.to_string()).unwrap(),
        expires: Instant::now() + Duration::from_secs(3600),
        position: BusPosition { partition: 0, offset, mark: offset * 10 },
        version: None,
    }
}

#[test]
fn early_signals_are_evicted_oldest_first_at_the_count_limit() {
    let c: Arc<str> = "c".into();
    let router = SignalRouter::new(2, usize::MAX);
    assert_eq!(router.route(signal("a", None, &c, 1)), Routed::Early { evicted: 0 });
    assert_eq!(router.route(signal("b", None, &c, 2)), Routed::Early { evicted: 0 });
    assert_eq!(router.lowest_needed(0), Some((1, 10)));
    assert_eq!(router.route(signal("c", None, &c, 3)), Routed::Early { evicted: 1 });
    assert_eq!(router.sizes(), (0, 2));
    assert_eq!(router.lowest_needed(0), Some((2, 20)), "the evicted signal's message is no longer needed");
}

#[test]
fn early_signals_are_evicted_at_the_byte_limit_and_one_bigger_than_all_the_room_is_not_held() {
    let c: Arc<str> = "c".into();
    let one = {
        let router = SignalRouter::new(100, usize::MAX);
        router.route(signal("a", None, &c, 1));
        router.early_bytes()
    };
    let router = SignalRouter::new(100, 2 * one + one / 2);
    assert_eq!(router.route(signal("a", None, &c, 1)), Routed::Early { evicted: 0 });
    assert_eq!(router.route(signal("b", None, &c, 2)), Routed::Early { evicted: 0 });
    assert_eq!(router.route(signal("d", None, &c, 3)), Routed::Early { evicted: 1 }, "two fit, not three");
    assert_eq!((router.sizes().1, router.early_bytes()), (2, 2 * one));
    assert_eq!(router.lowest_needed(0), Some((2, 20)));

    let mut big = signal("e", None, &c, 4);
    big.value = RawValue::from_string(format!("\"{}\"", "x".repeat(3 * one))).unwrap();
    assert_eq!(router.route(big), Routed::Early { evicted: 1 }, "counted as dropped");
    assert_eq!((router.sizes().1, router.early_bytes()), (2, 2 * one), "nothing else made room for it");
    assert_eq!(router.lowest_needed(0), Some((2, 20)));
}

#[tokio::test]
async fn the_lowest_needed_offset_moves_only_once_a_finished_tests_report_is_out() {
    let core = case_c();
    let router = SignalRouter::new(100, usize::MAX);
    let (first, second) = (run(&core, "t1", at(0)), run(&core, "t2", at(0)));
    assert_eq!(router.register(&first), Ok(0));
    assert_eq!(router.register(&second), Ok(0));
    assert_eq!(router.route(signal("t1", Some(at(0)), &core.name, 5)), Routed::Delivered { duplicate: false });
    assert_eq!(router.route(signal("t2", Some(at(0)), &core.name, 7)), Routed::Delivered { duplicate: false });
    assert_eq!(router.route(signal("t3", Some(at(0)), &core.name, 9)), Routed::Early { evicted: 0 });
    assert!(first.signals.arrivals()[0].is_some(), "delivered to its test");
    assert_eq!(router.lowest_needed(0), Some((5, 50)));

    let positions = router.release(&first, true);
    assert_eq!(positions, [BusPosition { partition: 0, offset: 5, mark: 50 }]);
    assert_eq!(router.lowest_needed(0), Some((5, 50)), "needed until the report is out");
    router.settle(&positions);
    assert_eq!(router.lowest_needed(0), Some((7, 70)));
    assert_eq!(router.route(signal("t1", Some(at(0)), &core.name, 11)), Routed::Late);
    assert_eq!(router.lowest_needed(0), Some((7, 70)), "a late signal is not needed");

    // An interrupted test runs again (here or on the partition's next owner): its signals stay needed for good,
    // and a later copy of one is held for it, not late.
    let interrupted = router.release(&second, false);
    assert_eq!(interrupted.len(), 1);
    assert_eq!(router.route(signal("t2", Some(at(0)), &core.name, 12)), Routed::Early { evicted: 0 });
    assert_eq!(router.lowest_needed(0), Some((7, 70)));

    router.forget_partition(0);
    assert_eq!((router.lowest_needed(0), router.sizes()), (None, (0, 0)), "another member has the partition");
}

#[tokio::test]
async fn a_signal_a_test_has_already_is_a_duplicate() {
    let core = case_c();
    let router = SignalRouter::new(100, usize::MAX);
    let test = run(&core, "t1", at(0));
    assert_eq!(router.register(&test), Ok(0));
    assert_eq!(router.route(signal("t1", Some(at(0)), &core.name, 5)), Routed::Delivered { duplicate: false });
    assert_eq!(router.route(signal("t1", Some(at(0)), &core.name, 6)), Routed::Delivered { duplicate: true });
    assert!(test.signals.arrivals()[0].is_some());
}

#[tokio::test]
async fn a_starting_test_takes_its_early_signals_drops_stale_ones_and_leaves_a_later_executions() {
    let core = case_c();
    let router = SignalRouter::new(100, usize::MAX);
    router.route(signal("t", Some(at(0)), &core.name, 1));
    router.route(signal("t", Some(at(60)), &core.name, 2));
    router.route(signal("t", Some(at(120)), &core.name, 3));
    let test = run(&core, "t", at(60));
    assert_eq!(router.register(&test), Ok(1), "one stale signal, of the execution before");
    assert!(test.signals.arrivals()[0].is_some_and(|arrived| arrived <= 0.0), "arrived before the test started");
    assert_eq!(router.sizes(), (1, 1), "the later execution's signal is still held");
    assert_eq!(router.lowest_needed(0), Some((2, 20)), "the stale signal's message is no longer needed");
    let held_for_later = router.release(&test, true);
    router.settle(&held_for_later);
    assert_eq!(router.lowest_needed(0), Some((3, 30)));
    assert_eq!(router.register(&run(&core, "t", at(60))), Ok(0));
    assert_eq!(router.register(&run(&core, "t", at(60))), Err(Occupied::SameExecution));
    assert_eq!(router.register(&run(&core, "t", at(120))), Err(Occupied::OtherExecution));
}

#[test]
fn an_execution_reported_already_drops_the_signals_held_for_it_and_makes_later_ones_late() {
    let c: Arc<str> = "c".into();
    let router = SignalRouter::new(100, usize::MAX);
    router.route(signal("t", Some(at(0)), &c, 1));
    router.route(signal("t", Some(at(60)), &c, 2));
    router.route(signal("u", Some(at(0)), &c, 3));
    router.already_reported("t", at(0));
    assert_eq!(router.sizes(), (0, 2), "the other execution of `t` and `u` are still held");
    assert_eq!(router.lowest_needed(0), Some((2, 20)));
    assert_eq!(router.route(signal("t", Some(at(0)), &c, 4)), Routed::Late);
    assert_eq!(router.route(signal("t", Some(at(60)), &c, 5)), Routed::Early { evicted: 0 });
}

#[test]
fn expired_early_signals_are_swept_and_no_longer_needed() {
    let c: Arc<str> = "c".into();
    let router = SignalRouter::new(100, usize::MAX);
    let mut soon = signal("a", None, &c, 1);
    soon.expires = Instant::now() + Duration::from_secs(1);
    router.route(soon);
    router.route(signal("b", None, &c, 2));
    assert_eq!(router.sweep(Instant::now()), 0);
    assert_eq!(router.sweep(Instant::now() + Duration::from_secs(2)), 1);
    assert_eq!((router.sizes().1, router.lowest_needed(0)), (1, Some((2, 20))));
}
