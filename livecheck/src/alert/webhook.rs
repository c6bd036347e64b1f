//! POSTing alerts to webhooks: on a thread of its own, with retries and backoff, signed with HMAC-SHA256.

use std::{fmt, sync::Arc, time::Duration};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinSet,
};
use tokio_util::sync::CancellationToken;

use super::{Alert, AlertAttempt, AlertEvent, DeliveryLog, Format};
use crate::{backoff::Backoff, error::with_causes, Error, Result};

/// Environment variable with the webhook URLs (separated by commas or whitespace), read by
/// [`crate::LiveCheckBuilder::build`] when none is set on the builder.
pub const ALERT_WEBHOOKS_ENV: &str = "LIVECHECK_ALERT_WEBHOOKS";

/// Environment variable with the secret alerts are signed with, read when none is set on the builder.
pub const ALERT_WEBHOOK_SECRET_ENV: &str = "LIVECHECK_ALERT_WEBHOOK_SECRET";

/// Environment variable with the instance's name in alerts, read when none is set on the builder (default: the
/// host's name).
pub const ALERT_INSTANCE_ENV: &str = "LIVECHECK_ALERT_INSTANCE";

/// Environment variable with the dashboard URL alerts link to, read when none is set on the builder (default: the
/// instance's web server).
pub const DASHBOARD_URL_ENV: &str = "LIVECHECK_DASHBOARD_URL";

/// Header carrying an alert's signature when a secret is configured: `sha256=` and the lowercase hex of
/// HMAC-SHA256(secret, body).
pub const HEADER_WEBHOOK_SIGNATURE: &str = "LiveCheck-Webhook-Signature";

/// Attempts per alert and webhook, the first included.
const MAX_ATTEMPTS: u32 = 5;
/// Delay before the first retry; it doubles after each, up to [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);
/// The longest one POST may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries under way at once; more alerts wait in the queue.
const MAX_IN_FLIGHT: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// Where alerts go, and the secret they are signed with.
pub(crate) struct Webhooks {
    urls: Vec<String>,
    secret: Option<Vec<u8>>,
}

impl fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Neither the URLs (they often hold a token) nor the secret.
        f.debug_struct("Webhooks").field("urls", &self.urls.len()).field("signed", &self.secret.is_some()).finish()
    }
}

impl Webhooks {
    /// The URLs and secret set on the builder, else those in the environment (read through `env`); `None` without
    /// a URL. An empty secret signs nothing.
    pub(crate) fn configure(
        urls: Vec<String>,
        secret: Option<Vec<u8>>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Option<Self> {
        let urls = if urls.is_empty() {
            let listed = env(ALERT_WEBHOOKS_ENV).unwrap_or_default();
            listed.split(|c: char| c == ',' || c.is_whitespace()).filter(|u| !u.is_empty()).map(str::to_owned).collect()
        } else {
            urls
        };
        if urls.is_empty() {
            return None;
        }
        let secret = secret.or_else(|| env(ALERT_WEBHOOK_SECRET_ENV).map(String::into_bytes)).filter(|s| !s.is_empty());
        Some(Webhooks { urls, secret })
    }

    /// Starts the sender thread on `alerts`; the returned channel closes once it stopped: after `shutdown`, once
    /// what was queued or being retried is delivered, or given up at `give_up` (the instance's shutdown timeout).
    /// A URL that is not http(s) is an error.
    pub(crate) fn start(
        &self,
        log: Arc<DeliveryLog>,
        alerts: mpsc::Receiver<Alert>,
        shutdown: CancellationToken,
        give_up: CancellationToken,
    ) -> Result<oneshot::Receiver<()>> {
        let targets: Vec<Target> =
            self.urls.iter().enumerate().map(|(i, url)| Target::parse(i + 1, url)).collect::<Result<_>>()?;
        // Which webhooks alerts go to, once at start, without their secrets.
        let listed: Vec<String> = targets.iter().map(|t| format!("{} {}", t.format.name(), t.shown)).collect();
        tracing::info!(
            webhooks = %listed.join(", "),
            signed = self.secret.is_some(),
            "alerts will be POSTed to {} webhook(s): {}",
            targets.len(),
            listed.join(", ")
        );
        let signer =
            self.secret.as_deref().map(|secret| HmacSha256::new_from_slice(secret).expect("HMAC takes any key"));
        let (stopped, on_stop) = oneshot::channel();
        std::thread::Builder::new()
            .name("livecheck-alerts".into())
            .spawn(move || {
                // A runtime of its own: a slow webhook never takes time from tests, and a loaded instance never
                // delays an alert.
                match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => {
                        runtime.block_on(send_all(targets, signer, log, alerts, shutdown, give_up));
                        // A name lookup still under way (a blocking task) does not hold the stop up.
                        runtime.shutdown_background();
                    }
                    Err(error) => tracing::error!(%error, "the alert sender could not start: alerts are not sent"),
                }
                let _ = stopped.send(());
            })
            .map_err(|error| Error::setup("starting the alert sender thread", error))?;
        Ok(on_stop)
    }
}

/// A webhook: its URL, the body it takes, and the URL as shown in logs and deliveries (no user info, no query
/// string; for Slack, whose URL path is the secret, only the host).
#[derive(Clone)]
struct Target {
    url: reqwest::Url,
    format: Format,
    shown: String,
}

impl Target {
    fn parse(position: usize, text: &str) -> Result<Self> {
        let (format, url) = Format::of(position, text)?;
        let shown = match format {
            Format::Slack => format!("{}://{}/…", url.scheme(), url.host_str().unwrap_or_default()),
            _ => crate::shown::url_without_secrets(url.as_str()),
        };
        Ok(Target { url, format, shown })
    }
}

/// `sha256=` and the lowercase hex of the HMAC of `body`.
fn signature(signer: &HmacSha256, body: &[u8]) -> String {
    let mac = signer.clone().chain_update(body).finalize().into_bytes();
    format!("sha256={}", crate::hex::encode(&mac))
}

/// Sends every alert that comes to every webhook until `shutdown`; then what is queued, until `give_up`.
async fn send_all(
    targets: Vec<Target>,
    signer: Option<HmacSha256>,
    log: Arc<DeliveryLog>,
    mut alerts: mpsc::Receiver<Alert>,
    shutdown: CancellationToken,
    give_up: CancellationToken,
) {
    let client =
        match reqwest::Client::builder().timeout(ATTEMPT_TIMEOUT).redirect(reqwest::redirect::Policy::none()).build() {
            Ok(client) => client,
            Err(error) => {
                tracing::error!(%error, "the alert sender has no HTTP client: alerts are not sent");
                return;
            }
        };
    let sender = Sender { client, targets, signer, log, give_up };
    let mut deliveries = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(_) = deliveries.join_next() => {}
            alert = alerts.recv(), if deliveries.len() < MAX_IN_FLIGHT => match alert {
                Some(alert) => sender.spawn(&mut deliveries, alert),
                None => break,
            },
        }
    }
    alerts.close();
    while let Ok(alert) = alerts.try_recv() {
        sender.spawn(&mut deliveries, alert);
    }
    // Each delivery ends by `give_up` at the latest.
    while deliveries.join_next().await.is_some() {}
}

/// What every delivery shares.
struct Sender {
    client: reqwest::Client,
    targets: Vec<Target>,
    signer: Option<HmacSha256>,
    log: Arc<DeliveryLog>,
    /// Cancelled when a stopping instance's shutdown timeout is over.
    give_up: CancellationToken,
}

impl Sender {
    fn spawn(&self, deliveries: &mut JoinSet<()>, alert: Alert) {
        for target in &self.targets {
            let body = match target.format.body(&alert) {
                Ok(body) => body,
                Err(error) => {
                    tracing::error!(%error, case = %alert.case, "an alert could not be encoded");
                    continue;
                }
            };
            let signature = self.signer.as_ref().map(|signer| signature(signer, &body));
            let delivery = Delivery {
                id: self.log.begin(&alert, &target.shown),
                client: self.client.clone(),
                target: target.clone(),
                body,
                signature,
                event: alert.event,
                case: alert.case.clone(),
                log: self.log.clone(),
                give_up: self.give_up.clone(),
            };
            deliveries.spawn(delivery.run());
        }
    }
}

/// One alert to one webhook.
struct Delivery {
    id: u64,
    client: reqwest::Client,
    target: Target,
    body: Vec<u8>,
    signature: Option<String>,
    event: AlertEvent,
    case: String,
    log: Arc<DeliveryLog>,
    give_up: CancellationToken,
}

impl Delivery {
    /// POSTs the alert until a 2xx answer, retrying connection errors, timeouts, 5xx, 408 and 429 with backoff,
    /// [`MAX_ATTEMPTS`] times at most; another answer is not retried.
    async fn run(self) {
        let target = &self.target;
        let (url, case, event) = (&target.shown, &self.case, self.event);
        let mut backoff = Backoff::new(FIRST_RETRY_DELAY, MAX_RETRY_DELAY);
        for attempt in 1..=MAX_ATTEMPTS {
            let mut request = self
                .client
                .post(target.url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(self.body.clone());
            if let Some(signature) = &self.signature {
                request = request.header(HEADER_WEBHOOK_SIGNATURE, signature);
            }
            let answer = tokio::select! {
                biased;
                _ = self.give_up.cancelled() => return self.stopped(),
                answer = request.send() => answer,
            };
            let (status, failure) = match answer {
                Ok(response) if response.status().is_success() => (Some(response.status().as_u16()), None),
                Ok(response) => (Some(response.status().as_u16()), Some(AttemptFailure::Status(response.status()))),
                Err(error) => (None, Some(AttemptFailure::Request(error))),
            };
            let Some(failure) = failure else {
                self.log.attempt(self.id, AlertAttempt::new(status, None));
                if attempt > 1 {
                    tracing::info!(%url, %case, %event, attempts = attempt, "alert delivered after retries");
                } else {
                    tracing::debug!(%url, %case, %event, "alert delivered");
                }
                return;
            };
            // The attempt's record (`/api/alerts`: data) and the log tell the failure with its causes.
            let error = with_causes(&failure);
            self.log.attempt(self.id, AlertAttempt::new(status, Some(error.clone())));
            if !failure.is_retriable() || attempt == MAX_ATTEMPTS {
                self.log.gave_up();
                tracing::error!(%url, %case, %event, attempts = attempt, %error, "alert not delivered");
                return;
            }
            let delay = backoff.next();
            if attempt == 1 {
                tracing::warn!(%url, %case, %event, %error, "alert delivery failed; retrying with backoff");
            }
            tokio::select! {
                _ = self.give_up.cancelled() => return self.stopped(),
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    fn stopped(&self) {
        self.log.gave_up();
        let url = &self.target.shown;
        // The stopping instance sums these up in one line.
        self.log.not_delivered_at_stop(&self.case, self.event, url);
        tracing::debug!(%url, case = %self.case, event = %self.event, "alert not delivered: the instance stopped");
    }
}

/// Why one attempt to deliver an alert failed.
#[derive(Debug, thiserror::Error)]
enum AttemptFailure {
    /// The webhook answered, but not with a 2xx.
    #[error("HTTP {0}")]
    Status(reqwest::StatusCode),
    /// No answer: connection errors, timeouts.
    #[error(transparent)]
    Request(reqwest::Error),
}

impl AttemptFailure {
    /// Whether another attempt may succeed: no answer, a 5xx, 408 or 429.
    fn is_retriable(&self) -> bool {
        match self {
            AttemptFailure::Status(status) => {
                status.is_server_error()
                    || *status == reqwest::StatusCode::TOO_MANY_REQUESTS
                    || *status == reqwest::StatusCode::REQUEST_TIMEOUT
            }
            AttemptFailure::Request(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn webhooks_come_from_the_builder_else_the_environment() {
        assert!(Webhooks::configure(Vec::new(), None, env(&[])).is_none());
        let vars =
            env(&[(ALERT_WEBHOOKS_ENV, "http://a/hook, http://b/hook\nhttp://c/"), (ALERT_WEBHOOK_SECRET_ENV, "s")]);
        let from_env = Webhooks::configure(Vec::new(), None, &vars).unwrap();
        assert_eq!(from_env.urls, ["http://a/hook", "http://b/hook", "http://c/"]);
        assert_eq!(from_env.secret.as_deref(), Some(&b"s"[..]));
        let explicit = Webhooks::configure(vec!["http://x/".into()], Some(Vec::new()), &vars).unwrap();
        assert_eq!(explicit.urls, ["http://x/"]);
        assert!(explicit.secret.is_none(), "an empty secret on the builder: unsigned, whatever the environment says");
        assert!(!format!("{explicit:?}").contains("http://x/"), "URLs may hold tokens: not in Debug");
    }

    #[test]
    fn urls_are_checked_and_shown_without_credentials() {
        let target = Target::parse(1, "https://user:pw@hooks.example.com/services/T1?token=abc#x").unwrap();
        assert_eq!(target.shown, "https://hooks.example.com/services/T1");
        let error = Target::parse(2, "ftp://example.com/").err().unwrap().to_string();
        assert!(error.contains("alert webhook #2") && error.contains("ftp"), "{error}");
        let error = Target::parse(3, "not a url").err().unwrap();
        assert_eq!(error.to_string(), "configuration: alert webhook #3: not a URL");
        let source = std::error::Error::source(&error).expect("the parser's error is kept");
        assert_eq!(source.to_string(), "relative URL without a base");
        assert_eq!(with_causes(&error), "configuration: alert webhook #3: not a URL: relative URL without a base");
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body_in_hex() {
        // RFC 4231, test case 2.
        let signer = HmacSha256::new_from_slice(b"Jefe").unwrap();
        assert_eq!(
            signature(&signer, b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
