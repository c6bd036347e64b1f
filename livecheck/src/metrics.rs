//! Counters of what the instance did and what it dropped.

use std::{
    collections::HashSet,
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
};

/// One monotonically increasing counter.
#[derive(Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    pub(crate) fn inc(&self) {
        self.add(1);
    }

    pub(crate) fn add(&self, n: u64) {
        if n > 0 {
            self.0.fetch_add(n, Ordering::Relaxed);
        }
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

macro_rules! metrics {
    ($($(#[doc = $doc:literal])* $name:ident),* $(,)?) => {
        /// The counters of one LiveCheck instance.
        #[derive(Default)]
        pub(crate) struct Metrics {
            $(pub(crate) $name: Counter,)*
            warned: Mutex<HashSet<String>>,
        }

        /// A copy of the counters of one LiveCheck instance (see [`crate::LiveCheck::metrics`]).
        #[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
        #[non_exhaustive]
        pub struct MetricsSnapshot {
            $($(#[doc = $doc])* pub $name: u64,)*
            /// Tests executing now.
            pub tests_executing: u64,
            /// Signals held now for tests that have not started executing.
            pub signals_held: u64,
            /// The bytes those signals take (bounded by `early_signal_bytes`).
            pub signals_held_bytes: u64,
            /// Reported executions remembered now, so that copies of them are not run again (at most
            /// `remembered_reports`).
            pub reports_remembered: u64,
            /// Alerts a webhook answered with 2xx (one per alert and webhook).
            pub alerts_delivered: u64,
            /// Alerts not delivered to a webhook: attempts used up, an answer not worth retrying, or the instance
            /// stopped.
            pub alerts_failed: u64,
            /// Alerts dropped before delivery because the queue to the webhooks was full.
            pub alerts_dropped: u64,
            /// Partitions of the instance's group with tests or signals waiting and no member consuming them, as
            /// this instance sees them now (see [`crate::LiveCheck::group_health`]).
            pub unowned_partitions: u64,
            /// Times this instance left its group and joined again to have such partitions assigned.
            pub group_rejoins: u64,
        }

        impl Metrics {
            pub(crate) fn snapshot(&self) -> MetricsSnapshot {
                MetricsSnapshot {
                    $($name: self.$name.get(),)*
                    tests_executing: 0,
                    signals_held: 0,
                    signals_held_bytes: 0,
                    reports_remembered: 0,
                    alerts_delivered: 0,
                    alerts_failed: 0,
                    alerts_dropped: 0,
                    unowned_partitions: 0,
                    group_rejoins: 0,
                }
            }
        }

        impl MetricsSnapshot {
            /// Every counter: its name, what it counts (its doc comment) and its value.
            #[cfg_attr(not(feature = "web"), allow(dead_code))]
            pub(crate) fn counters(&self) -> [(&'static str, &'static str, u64); [$(stringify!($name)),*].len()] {
                [$((stringify!($name), concat!($($doc),*), self.$name)),*]
            }
        }
    };
}

metrics! {
    /// Pending-test messages received.
    tests_received,
    /// Pending-test messages that were not a valid TestExecution (dropped).
    tests_malformed,
    /// Executions for a case this instance does not have (dropped).
    tests_unknown_case,
    /// With signing on: pending tests without an execution signature (refused, never run).
    tests_unsigned,
    /// With signing on: pending tests whose execution signature matched neither secret (refused, never run).
    tests_bad_signature,
    /// Executions that reached a verdict, skipped ones included.
    tests_finished,
    /// Copies of an execution that already had a report or was running (delivered again after a restart or a
    /// rebalance, replayed, or written twice by a producer's retry): not run again.
    tests_redelivered,
    /// Reported executions forgotten before their time to stay within `remembered_reports` (a copy of one arriving
    /// later would run again).
    reports_forgotten,
    /// Bus messages received.
    signals_received,
    /// Signals a service sent whose publish was not confirmed within `signal_send_timeout` (left queued).
    signals_unconfirmed,
    /// Test executions a service triggered whose publish was not confirmed within `signal_send_timeout` (left
    /// queued).
    tests_unconfirmed,
    /// Signals and test executions sent without confirmation whose publish failed later.
    unconfirmed_failed,
    /// Signals and test executions dropped at once because 10 000 others already waited for the broker.
    unconfirmed_dropped,
    /// Pending-test and bus messages bigger than `max_message_bytes` (dropped without decoding).
    messages_too_large,
    /// Bus messages that were not a valid SignalEvent (dropped).
    signals_malformed,
    /// Signals for a case this instance does not have (dropped).
    signals_unknown_case,
    /// Signals with a name their case does not declare (dropped).
    signals_unknown_name,
    /// Signals of an earlier execution of a reused test id (dropped).
    signals_stale,
    /// Signals that came after their test had finished (dropped).
    signals_late,
    /// Signals a test had received already: sent twice for one test (the later value replaces the first).
    signals_duplicate,
    /// Signals held for a test that never started, dropped at the limit of held signals.
    signals_evicted,
    /// Signals held for a test that never started, dropped when their time was up.
    signals_expired,
    /// Times a test waiting for a signal was woken (once per signal it waited for, when only its own wake it).
    signal_wakeups,
    /// Stream messages retried after their agent's handler failed on a transient error.
    stream_messages_retried,
    /// Stream messages left uncommitted after their handler kept failing on a transient error.
    stream_messages_failed,
    /// Stream messages an agent could not decode (dropped).
    stream_messages_malformed,
    /// Messages whose LiveCheck headers were partial or malformed (handled as no test).
    headers_malformed,
    /// With test context signing on: messages whose LiveCheck headers had no signature (handled as no test).
    headers_unsigned,
    /// With test context signing on: messages whose LiveCheck signature matched neither secret (handled as no
    /// test).
    headers_bad_signature,
    /// Test contexts written without their `livecheck.test.*` baggage members because the message's `baggage`
    /// would have gone over 8192 bytes or 64 members (the `LiveCheck-*` headers were written, if asked for).
    baggage_over_limits,
    /// Poison messages copied to the dead-letter stream.
    dead_letters_published,
    /// Poison messages that could not be copied to the dead-letter stream (it failed, or too many were on their
    /// way).
    dead_letters_failed,
    /// Entries a table dropped from memory to stay within its byte bound (they stay on its changelog).
    table_entries_evicted,
    /// Reports published.
    reports_published,
    /// Reports not published because `send_reports` is off.
    reports_suppressed,
    /// Report publishes retried after a transient error.
    reports_retried,
    /// Reports that failed to publish.
    reports_failed,
    /// Suite failures (reported or not).
    suite_failures,
    /// Fake requests made.
    fake_requests,
    /// Fake requests that failed.
    fake_requests_failed,
    /// Spans received over OTLP.
    spans_received,
    /// Spans of no test (no `livecheck.test.id` attribute): dropped.
    spans_without_test,
    /// Spans whose test context was partial, malformed, or — with signing on — unsigned or badly signed: dropped,
    /// never a signal.
    spans_refused,
    /// Spans of a test whose case this instance does not have, or that no span selector of the case picks.
    spans_unmatched,
    /// Signals made of spans (one span may be several signals when several selectors pick it).
    span_signals,
    /// OTLP requests refused: a body that is too large, compressed otherwise than gzip, or does not decode.
    otlp_requests_refused,
    /// Executions started through the web API (`POST /api/tests`).
    api_tests,
    /// Signals sent through the web API (`POST /api/signals`).
    api_signals,
    /// Requests to the web API's publishing routes refused: no token, bad body, over the rate limit, unpublished.
    api_requests_refused,
    /// Finished executions exported as spans to `otlp_endpoint`.
    verdict_spans_exported,
    /// Finished executions that could not be exported as spans (the endpoint failed, or 2 048 already waited).
    verdict_spans_failed,
}

impl Metrics {
    /// Whether `cause` is seen for the first time: log the first occurrence loudly, the rest quietly.
    pub(crate) fn first_time(&self, cause: &str) -> bool {
        let mut warned = crate::sync::lock(&self.warned);
        if warned.len() >= 1024 || warned.contains(cause) {
            return false;
        }
        warned.insert(cause.to_owned())
    }
}
