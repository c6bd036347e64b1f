//! The accounting, from the log itself: for every order the worker answered 200, what should be on the log and
//! whether it is.
//!
//! A genuine order (a test) should have: its execution on the pending-tests stream, exactly one report, PASS; the
//! order on `orders`; its four signals on the bus; its hand-over for execution on `order-execution`; its user's
//! entry in the cache's changelog. An order posted without a test should have the three last. Anything missing is
//! a **message lost**; an execution without a report a **report lost**; an order without a hand-over for execution
//! **answered 200 but never executed**.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::traffic::OrderRecord;
use crate::chaos::{read_stream, tally::Tally, StoredMessage, PENDING_STREAM, REPORT_STREAM};

/// The signal stream.
pub(super) const BUS_STREAM: &str = "livecheck-bus";
/// The worker's orders.
pub(super) const ORDERS_STREAM: &str = "orders";
/// Orders handed over for execution.
pub(super) const EXECUTION_STREAM: &str = "order-execution";
/// The users' order sets (the cache table's changelog).
pub(super) const CACHE_CHANGELOG: &str = "user-orders-changelog";
/// The signals every tested order sends.
const SIGNALS: [&str; 4] = ["order_sent_to_db", "order_sent_to_kafka", "order_cache_in_redis", "order_executed"];
/// Examples kept of each kind of loss.
const EXAMPLES: usize = 5;

/// Counts over the orders answered 200 (and, for `refused`, the others).
#[derive(Clone, Debug, Default, Serialize)]
pub(super) struct Figures {
    /// Orders the worker answered 200.
    pub(super) answered_ok: usize,
    /// Orders it refused (an error status, or no answer).
    pub(super) refused: usize,
    /// Messages that should be on the log for those orders and are not.
    pub(super) messages_lost: usize,
    /// Executions of those orders without a report.
    pub(super) reports_lost: usize,
    /// Executions with more than one report.
    pub(super) reports_duplicated: usize,
    /// Executions with a report that is not PASS.
    pub(super) reports_wrong: usize,
    /// Orders answered 200 that were never handed over for execution.
    pub(super) never_executed: usize,
    /// Orders handed over for execution more than once (the worker's agents process at least once: a message
    /// being handled when the worker stops is handled again after the restart). Not a loss.
    pub(super) executed_twice: usize,
}

impl Figures {
    /// Adds `other`'s counts to these.
    pub(super) fn add(&mut self, other: &Figures) {
        self.answered_ok += other.answered_ok;
        self.refused += other.refused;
        self.messages_lost += other.messages_lost;
        self.reports_lost += other.reports_lost;
        self.reports_duplicated += other.reports_duplicated;
        self.reports_wrong += other.reports_wrong;
        self.never_executed += other.never_executed;
        self.executed_twice += other.executed_twice;
    }

    /// A sentence for each kind of loss these figures show.
    pub(super) fn losses(&self) -> Vec<String> {
        let mut losses = Vec::new();
        for (count, what) in [
            (self.messages_lost, "messages lost"),
            (self.reports_lost, "reports lost"),
            (self.reports_duplicated, "executions reported more than once"),
            (self.reports_wrong, "executions reported other than PASS"),
            (self.never_executed, "orders answered 200 but never executed"),
        ] {
            if count > 0 {
                losses.push(format!("{count} {what}"));
            }
        }
        losses
    }
}

/// What the log holds, decoded as far as the accounting needs.
#[derive(Debug, Default)]
pub(super) struct LogContents {
    /// Pending-test messages.
    pub(super) pending: Vec<StoredMessage>,
    /// Report messages.
    pub(super) reports: Vec<StoredMessage>,
    /// `order_id` of each hand-over for execution.
    pub(super) executions: Vec<String>,
    /// Per test id (the key), the names of the signals on the bus.
    pub(super) signals: HashMap<String, HashSet<String>>,
    /// Ids of the orders on `orders`.
    pub(super) orders: HashSet<String>,
    /// Keys (user ids) in the cache's changelog.
    pub(super) cache_keys: HashSet<String>,
}

impl LogContents {
    /// Reads the streams the accounting looks at from `broker`; with `everything` false only the small ones
    /// (pending tests, reports, hand-overs), enough to know whether the run is drained.
    pub(super) async fn read(broker: &str, everything: bool) -> anyhow::Result<Self> {
        let mut contents = LogContents {
            pending: read_stream(broker, PENDING_STREAM).await?,
            reports: read_stream(broker, REPORT_STREAM).await?,
            ..LogContents::default()
        };
        for message in read_stream(broker, EXECUTION_STREAM).await? {
            let execution: serde_json::Value = serde_json::from_slice(&message.value).unwrap_or_default();
            if let Some(order_id) = execution["order_id"].as_str() {
                contents.executions.push(order_id.to_owned());
            }
        }
        if !everything {
            return Ok(contents);
        }
        for message in read_stream(broker, BUS_STREAM).await? {
            let (Some(key), Ok(event)) =
                (message.key, serde_json::from_slice::<livecheck::wire::SignalEvent>(&message.value))
            else {
                continue;
            };
            contents.signals.entry(key).or_default().insert(event.signal_name);
        }
        for message in read_stream(broker, ORDERS_STREAM).await? {
            let order: serde_json::Value = serde_json::from_slice(&message.value).unwrap_or_default();
            if let Some(id) = order["id"].as_str() {
                contents.orders.insert(id.to_owned());
            }
        }
        contents.cache_keys = read_stream(broker, CACHE_CHANGELOG).await?.into_iter().filter_map(|m| m.key).collect();
        Ok(contents)
    }

    /// Those of `ids` with an execution on the pending-tests stream or a report: ids that became tests.
    pub(super) fn tested_ids<'a>(&self, ids: impl Iterator<Item = &'a str>) -> Vec<String> {
        let mut tested: HashSet<String> = HashSet::new();
        for message in &self.pending {
            if let Ok(execution) = serde_json::from_slice::<livecheck::wire::TestExecution>(&message.value) {
                tested.insert(execution.id);
            }
        }
        for message in &self.reports {
            if let Ok(livecheck::wire::TestReport { test: Some(execution), .. }) =
                serde_json::from_slice(&message.value)
            {
                tested.insert(execution.id);
            }
        }
        ids.filter(|id| tested.contains(*id)).map(str::to_owned).collect()
    }

    /// Per test id, the states of the reports on the report stream (suite reports left out). Unlike
    /// [`Self::tested_ids`], an execution on the pending-tests stream alone is not in it: only verdicts are.
    pub(super) fn reports_by_id(&self) -> HashMap<String, Vec<livecheck::State>> {
        let mut by_id: HashMap<String, Vec<livecheck::State>> = HashMap::new();
        for message in &self.reports {
            if let Ok(livecheck::wire::TestReport { test: Some(execution), state, .. }) =
                serde_json::from_slice(&message.value)
            {
                by_id.entry(execution.id).or_default().push(state);
            }
        }
        by_id
    }

    /// The suite reports (`test: null`) on the report stream: each one's state and error.
    pub(super) fn suite_report_list(&self) -> Vec<(livecheck::State, Option<String>)> {
        self.reports
            .iter()
            .filter_map(|message| serde_json::from_slice::<livecheck::wire::TestReport>(&message.value).ok())
            .filter(|report| report.test.is_none())
            .map(|report| (report.state, report.error))
            .collect()
    }

    /// Suite reports (`test: null`) on the report stream, per state.
    pub(super) fn suite_reports(&self) -> std::collections::BTreeMap<&'static str, usize> {
        let mut states = std::collections::BTreeMap::new();
        for message in &self.reports {
            if let Ok(report @ livecheck::wire::TestReport { test: None, .. }) = serde_json::from_slice(&message.value)
            {
                *states.entry(report.state.as_str()).or_default() += 1;
            }
        }
        states
    }

    /// Whether every order answered 200 was handed over for execution, and every tested one has a report.
    pub(super) fn drained(&self, orders: &[OrderRecord]) -> bool {
        let tally = Tally::count(&tested_ids(orders), &self.pending, &self.reports);
        let executed: HashSet<&str> = self.executions.iter().map(String::as_str).collect();
        tally.all_reported() && tally.unpublished.is_empty() && ok_ids(orders).all(|id| executed.contains(id))
    }

    /// The figures for `orders`, and examples of what was lost.
    pub(super) fn account(&self, orders: &[OrderRecord]) -> (Figures, Vec<String>) {
        let tested = tested_ids(orders);
        let tally = Tally::count(&tested, &self.pending, &self.reports);
        let mut examples = Vec::new();
        let mut figures = Figures {
            answered_ok: orders.iter().filter(|o| o.answered_ok()).count(),
            refused: orders.iter().filter(|o| !o.answered_ok()).count(),
            reports_lost: tally.lost().len(),
            reports_duplicated: tally.duplicated().len(),
            reports_wrong: tally.wrong().len(),
            messages_lost: tally.unpublished.len(),
            ..Figures::default()
        };
        note(&mut examples, "execution not on the pending-tests stream", tally.unpublished.iter());
        note(&mut examples, "no report", tally.lost().into_iter().map(|key| &key.id));
        note(
            &mut examples,
            "reported more than once",
            tally.duplicated().into_iter().map(|(key, said)| format!("{} ({said})", key.id)),
        );
        note(&mut examples, "not PASS", tally.wrong().into_iter().map(|(key, said)| format!("{} ({said})", key.id)));
        let mut executions: HashMap<&str, usize> = HashMap::new();
        for order_id in &self.executions {
            *executions.entry(order_id.as_str()).or_default() += 1;
        }
        let mut missing: Vec<String> = Vec::new();
        for order in orders.iter().filter(|o| o.answered_ok()) {
            let id = order.id.as_deref().unwrap_or_default();
            match executions.get(id).copied().unwrap_or(0) {
                0 => {
                    figures.never_executed += 1;
                    figures.messages_lost += 1;
                    missing.push(format!("{id}: hand-over for execution"));
                }
                1 => {}
                _ => figures.executed_twice += 1,
            }
            if !self.orders.contains(id) {
                figures.messages_lost += 1;
                missing.push(format!("{id}: the order"));
            }
            let user = order.user_id.as_deref().unwrap_or_default();
            if !self.cache_keys.contains(user) {
                figures.messages_lost += 1;
                missing.push(format!("{id}: the cache entry of user {user}"));
            }
            if order.tested {
                let sent = self.signals.get(id);
                for signal in SIGNALS {
                    if !sent.is_some_and(|names| names.contains(signal)) {
                        figures.messages_lost += 1;
                        missing.push(format!("{id}: signal {signal}"));
                    }
                }
            }
        }
        note(&mut examples, "missing", missing.iter());
        (figures, examples)
    }
}

/// Ids of the orders answered 200.
fn ok_ids(orders: &[OrderRecord]) -> impl Iterator<Item = &str> {
    orders.iter().filter(|o| o.answered_ok()).filter_map(|o| o.id.as_deref())
}

/// Ids of the tested orders answered 200.
fn tested_ids(orders: &[OrderRecord]) -> HashSet<String> {
    orders.iter().filter(|o| o.answered_ok() && o.tested).filter_map(|o| o.id.clone()).collect()
}

/// Adds "`what`: a, b, c (and N more)" to `examples` when there are any.
fn note<T: std::fmt::Display>(examples: &mut Vec<String>, what: &str, items: impl Iterator<Item = T>) {
    let items: Vec<String> = items.map(|item| item.to_string()).collect();
    if items.is_empty() {
        return;
    }
    let more = items.len().saturating_sub(EXAMPLES);
    let shown = items[..items.len().min(EXAMPLES)].join(", ");
    let more = if more > 0 { format!(" (and {more} more)") } else { String::new() };
    examples.push(format!("{what}: {shown}{more}"));
}
