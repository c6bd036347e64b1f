//! Forged test context with signing on: both processes share `LIVECHECK_SIGNING_SECRET`; while genuine orders
//! come in, an outsider without the secret
//!
//! - posts orders to the worker's `POST /order/create/` with forged `LiveCheck-*` headers of every kind (unsigned,
//!   random or non-hex signature, signed with another secret, expiring in 9999): each must be taken as an
//!   ordinary order — answered 200 and executed — and none may become a test: no execution, no signal, no report
//!   under its id;
//! - writes signals with such headers straight onto the bus: the instance must count each (unsigned or badly
//!   signed) and none may become a test.
//!
//! Every genuine order must still be tested and PASS.

use std::time::Duration;

use livecheck::{context::Headers, transport::Message, wire::SignalEvent};

use super::{
    forgery::{Forgery, CASE},
    ledger::{LogContents, BUS_STREAM},
    outcome::ScenarioOutcome,
    stage::{drain_timeout, random_hex, Stage},
    traffic::OrderRecord,
    Context, Scenario,
};

pub(super) async fn run(context: &Context) -> anyhow::Result<ScenarioOutcome> {
    let (count, rate, per_kind) = context.pick((80, 15.0, 5), (400, 20.0, 25));
    let secret = random_hex(32);
    let stage = Stage::start(context, &context.dir, |setup| {
        setup.env.push((livecheck::context::SIGNING_SECRET_ENV.to_owned(), secret.clone()));
    })
    .await?;
    let traffic = stage.traffic();
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    stage.timeline.note(format!(
        "placing {count} genuine orders at {rate}/s; meanwhile {per_kind} forged orders and {per_kind} forged bus \
         signals of each of {} kinds",
        Forgery::ALL.len()
    ));
    let forge = async {
        let mut forged_orders = Vec::new();
        let mut bus_ids = Vec::new();
        let (mut unsigned, mut badly_signed) = (0, 0);
        let bus = livecheck::transport::from_url(&stage.broker)?;
        for round in 0..per_kind {
            for forgery in Forgery::ALL {
                let id = format!("forged-{}-{round}-{}", forgery.name().replace([' ', ','], "-"), random_hex(4));
                let order = serde_json::json!({
                    "id": id, "user_id": format!("forger-{}", random_hex(8)), "side": "sell",
                    "quantity": 1.0, "price": 3.33, "fake": false,
                });
                forged_orders.push(traffic.post(&order, &forgery.headers(&id).await?).await);

                let bus_id = format!("forged-signal-{}", random_hex(8));
                let headers: Headers = forgery.headers(&bus_id).await?.into_iter().collect();
                let value = serde_json::value::to_raw_value(&serde_json::json!({"id": bus_id}))?;
                let event = SignalEvent::new("order_sent_to_db", CASE, &*bus_id, value);
                let message = Message { key: Some(bus_id.clone()), value: serde_json::to_vec(&event)?, headers };
                bus.publish(BUS_STREAM, message).await?;
                bus_ids.push(bus_id);
                if forgery.is_unsigned() {
                    unsigned += 1;
                } else {
                    badly_signed += 1;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        anyhow::Ok((forged_orders, bus_ids, unsigned, badly_signed))
    };
    let (genuine, forged) = tokio::join!(traffic.place(count, rate), forge);
    let (forged_orders, bus_ids, unsigned, badly_signed) = forged?;
    let mut orders: Vec<OrderRecord> = genuine;
    orders.extend(forged_orders.iter().cloned());
    if !stage.drain(&orders, drain_timeout(context)).await? {
        problems.push("not every order answered 200 was executed and reported in time".into());
    }
    let (figures, examples) = stage.account(&orders).await?;
    if !figures.losses().is_empty() {
        problems.extend(examples);
    }

    // None of the forged context became a test.
    let contents = LogContents::read(&stage.broker, true).await?;
    let forged_ids: Vec<&str> = forged_orders.iter().filter_map(|o| o.id.as_deref()).collect();
    let refused = forged_orders.iter().filter(|o| !o.answered_ok()).count();
    notes.push(format!(
        "{} forged orders posted: {} answered 200 as ordinary orders, {refused} refused",
        forged_orders.len(),
        forged_orders.len() - refused
    ));
    if refused > 0 {
        problems.push(format!("{refused} forged orders were refused: they should be taken as ordinary orders"));
    }
    let tested = contents.tested_ids(forged_ids.iter().copied().chain(bus_ids.iter().map(String::as_str)));
    let signalled: Vec<&&str> = forged_ids.iter().filter(|id| contents.signals.contains_key(**id)).collect();
    if !tested.is_empty() {
        problems.push(format!("forged context became tests (executions or reports): {}", tested.join(", ")));
    }
    if !signalled.is_empty() {
        problems.push(format!("the worker sent signals for {} forged orders (it took their context)", signalled.len()));
    }
    let metric = |name| stage.instance_metric(name);
    let (counted_unsigned, counted_bad) = (metric("headers_unsigned").await, metric("headers_bad_signature").await);
    notes.push(format!(
        "{} forged bus signals written; the instance counted {} unsigned (of {unsigned}) and {} badly signed \
         (of {badly_signed}); 0 became tests",
        bus_ids.len(),
        counted_unsigned.map_or("?".to_owned(), |n| n.to_string()),
        counted_bad.map_or("?".to_owned(), |n| n.to_string()),
    ));
    if counted_unsigned != Some(unsigned) || counted_bad != Some(badly_signed) {
        problems.push(format!(
            "the instance counted {counted_unsigned:?} unsigned and {counted_bad:?} badly signed headers; expected \
             {unsigned} and {badly_signed}"
        ));
    }
    Ok(ScenarioOutcome::ran(Scenario::ForgedHeaders, figures, None, problems, notes))
}
