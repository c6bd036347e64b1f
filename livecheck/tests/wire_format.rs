//! The wire format: every message recorded from the Python implementation decodes, and what we write has the
//! shape the Python side reads.

use livecheck::{
    wire::{SignalEvent, TestExecution, TestReport},
    State,
};
use serde_json::Value;

const SAMPLES: &str = include_str!("data/faust-wire-samples.jsonl");

#[derive(serde::Deserialize)]
struct Line<'a> {
    topic: String,
    #[serde(borrow)]
    value: &'a serde_json::value::RawValue,
}

/// (topic, the value's JSON text exactly as recorded)
fn samples() -> Vec<(String, String)> {
    SAMPLES
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let l: Line<'_> = serde_json::from_str(line).expect("sample line is JSON");
            (l.topic, l.value.get().to_owned())
        })
        .collect()
}

#[test]
fn every_recorded_python_message_decodes() {
    let samples = samples();
    assert_eq!(samples.len(), 9);
    let (mut executions, mut signals, mut reports) = (0, 0, 0);
    for (topic, text) in samples {
        match topic.as_str() {
            "livecheck" => {
                let e: TestExecution = serde_json::from_str(&text).unwrap();
                assert_eq!(e.case_name, "examples.livecheck.test_order");
                assert_eq!(e.test_kwargs["side"], "sell");
                assert!(e.expires > e.timestamp);
                executions += 1;
            }
            "livecheck-bus" => {
                let s: SignalEvent = serde_json::from_str(&text).unwrap();
                assert_eq!(s.case_name, "examples.livecheck.test_order");
                assert!(!s.key.is_empty());
                signals += 1;
            }
            "livecheck-report" => {
                let r: TestReport = serde_json::from_str(&text).unwrap();
                assert_eq!(r.state, State::Pass, "`111/***/111` is PASS");
                assert_eq!(r.signal_latency.0.len(), 4);
                assert_eq!(r.signal_latency.0[0].0, "order_sent_to_db", "latency keeps its order");
                assert!(r.runtime.unwrap() > 2.0);
                assert_eq!(r.error, None);
                assert_eq!(r.test.unwrap().test_kwargs["side"], "sell");
                reports += 1;
            }
            other => panic!("unexpected topic {other}"),
        }
    }
    assert_eq!((executions, signals, reports), (3, 3, 3));
}

#[test]
fn signal_values_stay_raw_until_decoded_into_the_signals_type() {
    #[derive(serde::Deserialize, Debug)]
    struct Order {
        id: String,
        side: String,
        price: f64,
    }
    let samples = samples();
    let (_, value) = samples.iter().find(|(_, v)| v.contains(r#""signal_name":"order_sent_to_db""#)).unwrap();
    let s: SignalEvent = serde_json::from_str(value).unwrap();
    let order: Order = serde_json::from_str(s.value.get()).unwrap();
    assert_eq!(order.id, s.key);
    assert_eq!(order.side, "sell");
    assert_eq!(order.price, 3.33);
    let (_, null) = samples.iter().find(|(_, v)| v.contains(r#""signal_name":"order_cache_in_redis""#)).unwrap();
    let s: SignalEvent = serde_json::from_str(null).unwrap();
    let () = serde_json::from_str(s.value.get()).unwrap();
}

#[test]
fn what_we_write_has_the_python_shape_and_round_trips() {
    let t = chrono::DateTime::parse_from_rfc3339("2026-11-25T01:51:06.369766Z").unwrap().to_utc();
    #[derive(serde::Serialize)]
    struct Args {
        side: &'static str,
    }
    let execution =
        TestExecution::new("id-1", "test_order", t, t + chrono::Duration::hours(3), &Args { side: "sell" }).unwrap();
    let json: Value = serde_json::to_value(&execution).unwrap();
    assert_eq!(json["id"], "id-1");
    assert_eq!(json["timestamp"], "2026-11-25T01:51:06.369766Z");
    assert_eq!(json["expires"], "2026-11-25T04:51:06.369766Z");
    assert_eq!(json["test_args"], serde_json::json!([]));
    assert_eq!(json["test_kwargs"], serde_json::json!({"side": "sell"}));
    assert_eq!(json["__faust"]["ns"], "faust.livecheck.models.TestExecution");
    assert_eq!(serde_json::from_value::<TestExecution>(json).unwrap(), execution);

    let mut report = TestReport::new("test_order", State::Pass, Some(execution));
    report.runtime = Some(0.5);
    report.signal_latency.0.push(("b_second".into(), 0.1));
    report.signal_latency.0.push(("a_first".into(), 0.2));
    let text = serde_json::to_string(&report).unwrap();
    assert!(text.contains(r#""state":"PASS""#), "{text}");
    assert!(text.find("b_second").unwrap() < text.find("a_first").unwrap(), "latency order kept: {text}");
    let json: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["error"], Value::Null);
    assert_eq!(json["traceback"], Value::Null);
    assert_eq!(json["__faust"]["ns"], "faust.livecheck.models.TestReport");
    assert_eq!(serde_json::from_str::<TestReport>(&text).unwrap(), report);

    let suite = TestReport::new("test_order", State::Stall, None);
    let json = serde_json::to_value(&suite).unwrap();
    assert_eq!(json["test"], Value::Null);
    assert_eq!(json["state"], "STALL");
}

#[test]
fn bad_values_are_errors_not_panics() {
    for bad in [
        "",
        "{",
        "[]",
        r#"{"id": 1}"#,
        r#"{"id":"x","case_name":"c","timestamp":"yesterday","expires":"2026-11-25T01:51:06Z"}"#,
    ] {
        assert!(serde_json::from_str::<TestExecution>(bad).is_err(), "{bad}");
    }
    assert!(serde_json::from_str::<TestReport>(
        r#"{"case_name":"c","state":"GREAT","test":null,"runtime":null,"error":null,"traceback":null}"#
    )
    .is_err());
    assert!(serde_json::from_str::<SignalEvent>(r#"{"signal_name":"s"}"#).is_err());
}

#[test]
fn arguments_decode_from_named_or_positional_form() {
    let t = chrono::Utc::now();
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Args {
        side: String,
        quantity: u32,
    }
    let named = TestExecution::new("a", "c", t, t, &serde_json::json!({"side": "buy", "quantity": 2})).unwrap();
    assert_eq!(named.args::<Args>().unwrap(), Args { side: "buy".into(), quantity: 2 });
    let positional = TestExecution::new("a", "c", t, t, &("buy", 2)).unwrap();
    assert_eq!(positional.test_args.len(), 2);
    assert_eq!(positional.args::<(String, u32)>().unwrap(), ("buy".to_owned(), 2));
    let single = TestExecution::new("a", "c", t, t, &"sell").unwrap();
    assert_eq!(single.args::<String>().unwrap(), "sell");
    let none = TestExecution::new("a", "c", t, t, &()).unwrap();
    assert!(none.test_args.is_empty() && none.test_kwargs.is_empty());
    none.args::<()>().unwrap();
    assert!(named.args::<(String, u32)>().is_err(), "named arguments do not decode into a tuple");
}
