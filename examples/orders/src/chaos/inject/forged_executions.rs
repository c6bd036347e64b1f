//! Forged executions with signing on: both processes share `LIVECHECK_SIGNING_SECRET`; while genuine orders come
//! in, an outsider with access to the broker but not the secret writes executions of `orders.test_order` straight
//! onto the pending-tests stream, of every kind in [`Forged::ALL`]: with no headers, with a random execution
//! signature, a genuine message with its arguments changed (or its id and arguments), a genuine message's signed
//! test-context headers without the execution signature, and executions triggered by LiveCheck apps with another
//! secret and with none.
//!
//! None may run: no report under a forged id, no second report for a genuine id a forgery copied, no suite report,
//! no failure in the case's health; the instance counts each in `tests_unsigned` or `tests_bad_signature`, exactly;
//! every genuine order is tested and PASS, once.

use std::{collections::HashSet, sync::Arc, time::Duration};

use chrono::Utc;
use livecheck::{
    context::{Headers, HEADER_EXECUTION_SIGNATURE},
    transport::{Message, Transport},
    wire::TestExecution,
    Clock, LiveCheck,
};

use super::{
    forgery::CASE,
    ledger::LogContents,
    outcome::ScenarioOutcome,
    pending::{outsider, read_whole},
    stage::{drain_timeout, random_hex, Stage},
    Context, Scenario,
};
use crate::chaos::PENDING_STREAM;

/// How long forged executions claim to be valid.
const EXPIRES_AFTER: Duration = Duration::from_secs(3 * 3600);
/// How long to wait for the first genuine execution on the log (a forgery copies one).
const GENUINE_WITHIN: Duration = Duration::from_secs(20);

/// One way to forge an execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Forged {
    /// A well-formed execution with no headers at all.
    NoHeaders,
    /// An execution signature of the right shape that signs nothing (random hex).
    RandomSignature,
    /// A genuine message with its arguments changed (the side), its id, headers and signature kept.
    TamperedArgs,
    /// A genuine message with a new id (and key) and its arguments changed, its headers and signature kept.
    TamperedId,
    /// A genuine message's headers — its test context signed with the secret — without the execution signature,
    /// on a new execution.
    WithoutExecutionSignature,
    /// Triggered by a LiveCheck app signing with another secret.
    OtherSecret,
    /// Triggered by a LiveCheck app with no secret.
    NoSecret,
}

impl Forged {
    const ALL: [Forged; 7] = [
        Forged::NoHeaders,
        Forged::RandomSignature,
        Forged::TamperedArgs,
        Forged::TamperedId,
        Forged::WithoutExecutionSignature,
        Forged::OtherSecret,
        Forged::NoSecret,
    ];

    fn name(self) -> &'static str {
        match self {
            Forged::NoHeaders => "no-headers",
            Forged::RandomSignature => "random-signature",
            Forged::TamperedArgs => "tampered-args",
            Forged::TamperedId => "tampered-id",
            Forged::WithoutExecutionSignature => "no-execution-signature",
            Forged::OtherSecret => "other-secret",
            Forged::NoSecret => "no-secret",
        }
    }

    /// Whether the instance counts it in `tests_unsigned` (else in `tests_bad_signature`).
    fn is_unsigned(self) -> bool {
        matches!(self, Forged::NoHeaders | Forged::WithoutExecutionSignature | Forged::NoSecret)
    }
}

/// A forged execution written onto the pending-tests stream.
struct Written {
    kind: Forged,
    /// Its test id: a new one, or (tampered arguments) the genuine execution's.
    id: String,
}

/// What the outsider forges with: the broker, and its two LiveCheck apps.
struct Outsider {
    transport: Arc<dyn Transport>,
    other_secret: LiveCheck,
    no_secret: LiveCheck,
    /// The values it wrote itself, never taken for genuine ones.
    forged_values: HashSet<Vec<u8>>,
}

impl Outsider {
    fn new(broker: &str) -> anyhow::Result<Self> {
        let transport = livecheck::transport::from_url(broker)?;
        let other_secret = outsider(&transport, &format!("not-the-secret-{}", random_hex(8)), Clock::System);
        let no_secret = outsider(&transport, "", Clock::System);
        Ok(Outsider { transport, other_secret, no_secret, forged_values: HashSet::new() })
    }

    /// A genuine execution on the log (signed by the worker, not written here), waiting for one to be there.
    async fn genuine(&self) -> anyhow::Result<Message> {
        let deadline = tokio::time::Instant::now() + GENUINE_WITHIN;
        loop {
            let signed: Vec<Message> = read_whole(self.transport.as_ref())
                .await?
                .into_iter()
                .filter(|m| {
                    m.headers.get(HEADER_EXECUTION_SIGNATURE).is_some() && !self.forged_values.contains(&m.value)
                })
                .collect();
            if !signed.is_empty() {
                return Ok(signed[fastrand::usize(..signed.len())].clone());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "no signed execution on the log within {GENUINE_WITHIN:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Writes one forged execution of `kind`, with test id `id` unless it keeps a genuine one's.
    async fn forge(&mut self, kind: Forged, id: &str) -> anyhow::Result<Written> {
        let args = serde_json::json!({"side": "sell"});
        let mut written = Written { kind, id: id.to_owned() };
        let message = match kind {
            Forged::OtherSecret | Forged::NoSecret => {
                let app = if kind == Forged::OtherSecret { &self.other_secret } else { &self.no_secret };
                app.trigger_by_name(CASE, Some(id), &args, EXPIRES_AFTER).await?;
                return Ok(written);
            }
            Forged::NoHeaders | Forged::RandomSignature => {
                let now = Utc::now();
                let expires = now + chrono::Duration::from_std(EXPIRES_AFTER)?;
                let value = serde_json::to_vec(&TestExecution::new(id, CASE, now, expires, &args)?)?;
                let mut headers = Headers::new();
                if kind == Forged::RandomSignature {
                    headers.push(HEADER_EXECUTION_SIGNATURE, random_hex(32));
                }
                Message { key: Some(id.to_owned()), value, headers }
            }
            Forged::TamperedArgs | Forged::TamperedId | Forged::WithoutExecutionSignature => {
                let mut message = self.genuine().await?;
                let mut execution: serde_json::Value = serde_json::from_slice(&message.value)?;
                if kind == Forged::WithoutExecutionSignature {
                    message.headers = message
                        .headers
                        .iter()
                        .filter(|(name, _)| *name != HEADER_EXECUTION_SIGNATURE)
                        .map(|(name, value)| (name.to_owned(), value.to_vec()))
                        .collect();
                } else {
                    let side = if execution["test_kwargs"]["side"] == "buy" { "sell" } else { "buy" };
                    execution["test_kwargs"]["side"] = side.into();
                }
                if kind == Forged::TamperedArgs {
                    written.id = execution["id"].as_str().unwrap_or_default().to_owned();
                } else {
                    execution["id"] = id.into();
                    message.key = Some(id.to_owned());
                }
                message.value = serde_json::to_vec(&execution)?;
                message
            }
        };
        self.forged_values.insert(message.value.clone());
        self.transport.publish(PENDING_STREAM, message).await?;
        Ok(written)
    }
}

pub(super) async fn run(context: &Context) -> anyhow::Result<ScenarioOutcome> {
    let (count, rate, per_kind) = context.pick((80, 15.0, 4), (400, 20.0, 20));
    let secret = random_hex(32);
    let stage = Stage::start(context, &context.dir, |setup| {
        setup.env.push((livecheck::context::SIGNING_SECRET_ENV.to_owned(), secret.clone()));
    })
    .await?;
    let traffic = stage.traffic();
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    stage.timeline.note(format!(
        "placing {count} genuine orders at {rate}/s; meanwhile {per_kind} forged executions of each of {} kinds \
         written onto {PENDING_STREAM}",
        Forged::ALL.len()
    ));
    let forge = async {
        let mut outsider = Outsider::new(&stage.broker)?;
        let mut written = Vec::new();
        for round in 0..per_kind {
            for kind in Forged::ALL {
                let id = format!("forged-{}-{round}-{}", kind.name(), random_hex(4));
                written.push(outsider.forge(kind, &id).await?);
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        anyhow::Ok(written)
    };
    let (orders, written) = tokio::join!(traffic.place(count, rate), forge);
    let written = written?;
    if !stage.drain(&orders, drain_timeout(context)).await? {
        problems.push("not every order answered 200 was executed and reported in time".into());
    }

    // The instance refused and counted each one.
    let unsigned = written.iter().filter(|w| w.kind.is_unsigned()).count() as u64;
    let badly_signed = written.len() as u64 - unsigned;
    let within = Duration::from_secs(30);
    stage.wait_for_metric("tests_unsigned", unsigned, within).await;
    stage.wait_for_metric("tests_bad_signature", badly_signed, within).await;
    // Anything counted twice would show by now.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (counted_unsigned, counted_bad) =
        (stage.instance_metric("tests_unsigned").await, stage.instance_metric("tests_bad_signature").await);
    let shown = |n: Option<u64>| n.map_or("?".to_owned(), |n| n.to_string());
    notes.push(format!(
        "{} forged executions written ({per_kind} of each kind: {}); the instance counted {} unsigned (of \
         {unsigned}) and {} badly signed (of {badly_signed})",
        written.len(),
        Forged::ALL.map(Forged::name).join(", "),
        shown(counted_unsigned),
        shown(counted_bad),
    ));
    if counted_unsigned != Some(unsigned) || counted_bad != Some(badly_signed) {
        problems.push(format!(
            "the instance counted {} unsigned and {} badly signed pending tests; expected {unsigned} and \
             {badly_signed}",
            shown(counted_unsigned),
            shown(counted_bad)
        ));
    }

    // None ran: no verdict under a forged id, no second one for a genuine execution a forgery kept the id of.
    let contents = LogContents::read(&stage.broker, true).await?;
    let reports = contents.reports_by_id();
    let ran: Vec<String> = written
        .iter()
        .filter(|w| {
            let verdicts = reports.get(&w.id).map_or(0, Vec::len);
            verdicts > usize::from(w.kind == Forged::TamperedArgs)
        })
        .map(|w| format!("{} ({})", w.id, w.kind.name()))
        .collect();
    notes.push(format!("forged executions run: {} of {}", ran.len(), written.len()));
    if !ran.is_empty() {
        problems.push(format!("forged executions were run and reported: {}", ran.join(", ")));
    }

    // Nor did they count in the case's health.
    let suite_reports = contents.suite_report_list();
    if !suite_reports.is_empty() {
        problems.push(format!("{} suite reports for the case: {suite_reports:?}", suite_reports.len()));
    }
    let case = stage.cluster.instance_api(0, &format!("/api/cases/{CASE}")).await;
    let failures = case.as_ref().and_then(|case| case["total_failures"].as_u64());
    let last_suite_failure = case.as_ref().map(|case| case["last_suite_failure"].clone());
    notes.push(format!("suite reports: {}; failures in the case's health: {}", suite_reports.len(), shown(failures)));
    if failures != Some(0) || last_suite_failure != Some(serde_json::Value::Null) {
        problems.push(format!(
            "the case's health shows {} failures and last suite failure {last_suite_failure:?}; expected 0 and none",
            shown(failures)
        ));
    }

    let (figures, examples) = stage.account(&orders).await?;
    if !figures.losses().is_empty() {
        problems.extend(examples);
    }
    Ok(ScenarioOutcome::ran(Scenario::ForgedExecutions, figures, None, problems, notes))
}
