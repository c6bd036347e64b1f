//! `#[derive(SignalSet)]` and `CaseSender`: signals named after their fields, and services that trigger and signal
//! without building the case the LiveCheck instance runs.

mod support;

use std::time::Duration;

use livecheck::{
    transport::MemoryTransport, Case, CaseResult, CaseSettings, Error, Signal, SignalSet, Signals, State, TestRun,
};
use serde::{Deserialize, Serialize};
use support::{builder, executions, signals, ReportReader};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Order {
    id: String,
    side: String,
}

#[derive(Serialize, Deserialize)]
struct OrderArgs {
    side: String,
}

#[derive(SignalSet)]
struct OrderSignals {
    order_sent_to_db: Signal<Order>,
    /// Named as an existing (Python) case names it on the wire.
    #[signal(name = "order_executed")]
    executed: Signal<String>,
    r#type: Signal<()>,
}

/// The case: its signals plus state of its own that no service has.
struct TestOrder {
    signals: OrderSignals,
    expected_execution: String,
}

impl Case for TestOrder {
    type Args = OrderArgs;

    async fn run(&self, test: &TestRun, args: OrderArgs) -> CaseResult {
        let order = self.signals.order_sent_to_db.wait(Duration::from_secs(30)).await?;
        assert_eq!(order.id, test.id());
        assert_eq!(order.side, args.side);
        let execution = self.signals.executed.wait(Duration::from_secs(30)).await?;
        assert_eq!(execution, self.expected_execution);
        self.signals.r#type.wait(Duration::from_secs(30)).await?;
        Ok(())
    }
}

fn settings() -> CaseSettings {
    CaseSettings::new("test_order").probability(1.0)
}

#[test]
fn the_derive_names_each_signal_after_its_field_unless_renamed() {
    assert_eq!(OrderSignals::NAMES, ["order_sent_to_db", "order_executed", "type"]);
    let app = livecheck::LiveCheck::builder().build();
    let sender = app.sender::<OrderArgs, OrderSignals>(settings()).unwrap();
    assert_eq!(sender.name(), "test_order");
    assert_eq!(sender.order_sent_to_db.name(), "order_sent_to_db");
    assert_eq!(sender.executed.name(), "order_executed");
    assert_eq!(sender.r#type.name(), "type");
}

/// A service's app holds only a sender; the instance's app registers the case with its own state. The test passes
/// through the wire, and a wrong value from the sender fails it.
#[tokio::test(start_paused = true)]
async fn a_sender_drives_the_case_registered_by_another_app() {
    let transport = MemoryTransport::new();
    let instance = builder(&transport).build();
    let case = instance
        .register(settings(), |signals| TestOrder {
            signals: OrderSignals::declare(signals),
            expected_execution: "execution-1".into(),
        })
        .unwrap();
    let running = instance.start().await.unwrap();
    let mut reports = ReportReader::new(&transport).await;

    let service = builder(&transport).build();
    let test_order = service.sender::<OrderArgs, OrderSignals>(settings()).unwrap();
    for (id, execution) in [("order-1", "execution-1"), ("order-2", "execution-2")] {
        let test = test_order.maybe_trigger_with_id(id, &OrderArgs { side: "sell".into() }).await.unwrap();
        assert!(test.is_some(), "probability 1 always triggers");
        livecheck::scope(test, async {
            test_order.order_sent_to_db.send(&Order { id: id.into(), side: "sell".into() }).await?;
            test_order.executed.send(&execution.to_owned()).await?;
            test_order.r#type.notify().await
        })
        .await
        .unwrap();
        let report = reports.next(Duration::from_secs(5)).await;
        assert_eq!(report.test.as_ref().map(|t| t.id.as_str()), Some(id));
        let expected = if execution == "execution-1" { State::Pass } else { State::Fail };
        assert_eq!(report.state, expected, "{report:?}");
    }
    assert_eq!(case.health().count(State::Pass), 1);
    assert_eq!(case.health().count(State::Fail), 1);

    let published: Vec<_> = signals(&transport).into_iter().map(|(_, event)| event.signal_name).collect();
    assert_eq!(published[..3], ["order_sent_to_db", "order_executed", "type"]);
    assert_eq!(executions(&transport).len(), 2);
    running.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn trigger_publishes_whatever_the_probability_and_maybe_trigger_respects_it() {
    let transport = MemoryTransport::new();
    let service = builder(&transport).draw(|| 0.7).build();
    let test_order =
        service.sender::<OrderArgs, OrderSignals>(CaseSettings::new("test_order").probability(0.5)).unwrap();
    let args = OrderArgs { side: "buy".into() };
    assert!(test_order.maybe_trigger(&args).await.unwrap().is_none());
    assert!(test_order.maybe_trigger_with_id("x", &args).await.unwrap().is_none());
    assert!(executions(&transport).is_empty());
    let test = test_order.trigger_with_id("order-9", &args).await.unwrap();
    assert_eq!(test.id(), "order-9");
    let random = test_order.trigger(&args).await.unwrap();
    assert_ne!(random.id(), "order-9");
    let published = executions(&transport);
    assert_eq!(published.len(), 2);
    assert_eq!(published.iter().filter(|(key, _)| key == "order-9").count(), 1);
}

#[test]
fn a_sender_refuses_what_register_refuses() {
    let app = livecheck::LiveCheck::builder().build();
    let bad_probability = app.sender::<OrderArgs, OrderSignals>(CaseSettings::new("x").probability(1.5));
    assert!(matches!(bad_probability, Err(Error::Config(m)) if m.contains("probability")));
    let no_name = app.sender::<OrderArgs, OrderSignals>(CaseSettings::new(""));
    assert!(matches!(no_name, Err(Error::Config(m)) if m.contains("needs a name")));
}

/// A hand-written set whose `NAMES` do not say what it declares.
struct Mislabelled {
    _a: Signal<()>,
}

impl SignalSet for Mislabelled {
    const NAMES: &'static [&'static str] = &["b"];

    fn declare(signals: &mut Signals) -> Self {
        Mislabelled { _a: signals.declare("a") }
    }
}

/// A hand-written set declaring one name twice.
struct Twice {
    _a: Signal<()>,
    _b: Signal<()>,
}

impl SignalSet for Twice {
    const NAMES: &'static [&'static str] = &["a", "a"];

    fn declare(signals: &mut Signals) -> Self {
        Twice { _a: signals.declare("a"), _b: signals.declare("a") }
    }
}

#[test]
fn a_hand_written_set_must_declare_its_names_once_each() {
    let app = livecheck::LiveCheck::builder().build();
    let mislabelled = app.sender::<(), Mislabelled>(CaseSettings::new("x"));
    assert!(matches!(mislabelled, Err(Error::Config(m)) if m.contains("NAMES")));
    let twice = app.sender::<(), Twice>(CaseSettings::new("x"));
    assert!(matches!(twice, Err(Error::Config(m)) if m.contains("declared twice")));
    // No signals at all: the unit set.
    assert!(app.sender::<(), ()>(CaseSettings::new("x")).is_ok());
}
