//! Every wire decoder and the header parser against the committed corpus (`tests/corpus/`) and thousands of
//! mutations of it per run (seeded; `HOSTILE_SEED=…` replays a run): any outcome but a panic, and what decodes
//! holds together. Runs in CI with the rest of the tests; a new odd input that mattered goes into the corpus.

mod support;

use livecheck::{
    context::Headers,
    wire::{SignalEvent, TestExecution, TestReport},
    TestContext,
};
use support::hostile::{corpus, mutate, seeded};

const MUTATIONS_PER_FILE: usize = 300;

/// Every input, and mutations of it, through every message decoder (whichever stream it came from).
fn decode_everything(input: &[u8]) {
    if let Ok(execution) = serde_json::from_slice::<TestExecution>(input) {
        // Re-encoding what was decoded works, and decodes to the same.
        let again: TestExecution = serde_json::from_slice(&serde_json::to_vec(&execution).unwrap()).unwrap();
        assert_eq!(again, execution);
    }
    if let Ok(signal) = serde_json::from_slice::<SignalEvent>(input) {
        let again: SignalEvent = serde_json::from_slice(&serde_json::to_vec(&signal).unwrap()).unwrap();
        assert_eq!(again.key, signal.key);
    }
    if let Ok(report) = serde_json::from_slice::<TestReport>(input) {
        let again: TestReport = serde_json::from_slice(&serde_json::to_vec(&report).unwrap()).unwrap();
        assert_eq!(again.state, report.state);
    }
}

/// `Name: value` lines as headers (values may be any bytes).
fn headers(input: &[u8]) -> Headers {
    let mut headers = Headers::new();
    for line in input.split(|b| *b == b'\n') {
        if let Some(colon) = line.iter().position(|b| *b == b':') {
            let name = String::from_utf8_lossy(&line[..colon]).trim().to_owned();
            let value = line[colon + 1..].strip_prefix(b" ").unwrap_or(&line[colon + 1..]);
            headers.push(name, value.to_vec());
        }
    }
    headers
}

#[test]
fn every_wire_decoder_survives_the_corpus_and_its_mutations() {
    let mut rng = seeded();
    for kind in ["execution", "signal", "report"] {
        for (name, input) in corpus(kind) {
            println!("{kind}/{name}");
            decode_everything(&input);
            for _ in 0..MUTATIONS_PER_FILE {
                decode_everything(&mutate(&mut rng, &input));
            }
        }
    }
}

#[test]
fn the_recorded_samples_of_the_python_implementation_decode() {
    let execution: TestExecution = serde_json::from_slice(&corpus_file("execution", "faust-sample.json")).unwrap();
    assert_eq!(execution.case_name, "examples.livecheck.test_order");
    let signal: SignalEvent = serde_json::from_slice(&corpus_file("signal", "faust-sample.json")).unwrap();
    assert_eq!(signal.signal_name, "order_executed");
    serde_json::from_slice::<TestReport>(&corpus_file("report", "faust-sample.json")).unwrap();
}

fn corpus_file(kind: &str, name: &str) -> Vec<u8> {
    corpus(kind).into_iter().find(|(n, _)| n == name).map(|(_, bytes)| bytes).unwrap()
}

#[test]
fn the_header_parser_survives_the_corpus_and_its_mutations() {
    let mut rng = seeded();
    for (name, input) in corpus("headers") {
        for round in 0..=MUTATIONS_PER_FILE {
            let input = if round == 0 { input.clone() } else { mutate(&mut rng, &input) };
            if let Ok(Some(test)) = TestContext::from_headers(&headers(&input)) {
                assert!(!test.id().is_empty() && !test.case_name().is_empty(), "{name}: {test:?}");
                assert!(test.expires() >= test.timestamp(), "{name}: {test:?}");
            }
        }
    }
    // The valid one is a test; the odd ones that must not be, are not.
    let parse = |name: &str| TestContext::from_headers(&headers(&corpus_file("headers", name)));
    for valid in ["valid.txt", "baggage-valid.txt", "baggage-split.txt"] {
        let test = parse(valid).unwrap().unwrap_or_else(|| panic!("{valid} is no test"));
        assert_eq!((test.id(), test.case_name()), ("order-1", "orders.test_order"), "{valid}");
    }
    for odd in [
        "partial-no-expiry.txt",
        "expiry-before-issue.txt",
        "not-iso-timestamp.txt",
        "empty-id.txt",
        "not-utf8.txt",
        "baggage-bad-escape.txt",
        "baggage-not-utf8.txt",
        "baggage-partial.txt",
        "baggage-with-partial-headers.txt",
        "baggage-conflicting-ids.txt",
    ] {
        assert!(!matches!(parse(odd), Ok(Some(_))), "{odd} was taken for a test");
    }
}
