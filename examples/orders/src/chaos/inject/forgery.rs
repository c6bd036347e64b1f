//! Forged test context: the `LiveCheck-*` headers an outsider without the signing secret can send, each kind with
//! the counter a signing instance puts it in.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use livecheck::{context::HEADER_SIGNATURE, LiveCheck, TestContext};

use super::stage::random_hex;

/// The tutorial's case, as the headers name it.
pub(super) const CASE: &str = "orders.test_order";

/// One way to forge test context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Forgery {
    /// The four headers, no signature.
    Unsigned,
    /// A signature of the right shape that signs nothing (random hex).
    RandomSignature,
    /// A signature that is not hex at all.
    NotHex,
    /// Signed properly, with a secret that is not the services' one.
    OtherSecret,
    /// Expiring in the year 9999, no signature.
    AbsurdExpiryUnsigned,
    /// Expiring in the year 9999, signed with another secret.
    AbsurdExpiryOtherSecret,
}

impl Forgery {
    pub(super) const ALL: [Forgery; 6] = [
        Forgery::Unsigned,
        Forgery::RandomSignature,
        Forgery::NotHex,
        Forgery::OtherSecret,
        Forgery::AbsurdExpiryUnsigned,
        Forgery::AbsurdExpiryOtherSecret,
    ];

    /// Whether a signing reader counts it as unsigned (else as badly signed).
    pub(super) fn is_unsigned(self) -> bool {
        matches!(self, Forgery::Unsigned | Forgery::AbsurdExpiryUnsigned)
    }

    /// A short name.
    pub(super) fn name(self) -> &'static str {
        match self {
            Forgery::Unsigned => "unsigned",
            Forgery::RandomSignature => "random signature",
            Forgery::NotHex => "signature not hex",
            Forgery::OtherSecret => "signed with another secret",
            Forgery::AbsurdExpiryUnsigned => "expiring in 9999, unsigned",
            Forgery::AbsurdExpiryOtherSecret => "expiring in 9999, signed with another secret",
        }
    }

    /// The headers claiming that test `id` of the tutorial's case is under way.
    pub(super) async fn headers(self, id: &str) -> anyhow::Result<Vec<(String, String)>> {
        let now = Utc::now();
        let year_9999 = Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).single().unwrap_or(now);
        let context = match self {
            Forgery::Unsigned | Forgery::RandomSignature | Forgery::NotHex => {
                TestContext::new(id, CASE, now, now + chrono::Duration::hours(3))
            }
            Forgery::AbsurdExpiryUnsigned => TestContext::new(id, CASE, now, year_9999),
            Forgery::OtherSecret => signed_elsewhere(id, Duration::from_secs(3 * 3600)).await?,
            Forgery::AbsurdExpiryOtherSecret => {
                signed_elsewhere(id, (year_9999 - now).to_std().unwrap_or(Duration::MAX)).await?
            }
        };
        let mut headers: Vec<(String, String)> =
            context.header_pairs().into_iter().map(|(name, value)| (name.to_owned(), value)).collect();
        match self {
            Forgery::RandomSignature => headers.push((HEADER_SIGNATURE.to_owned(), random_hex(32))),
            Forgery::NotHex => headers.push((HEADER_SIGNATURE.to_owned(), "not-a-signature".to_owned())),
            _ => {}
        }
        Ok(headers)
    }
}

/// A context for test `id` expiring after `expires_after`, signed as a LiveCheck app with another secret signs
/// it.
async fn signed_elsewhere(id: &str, expires_after: Duration) -> anyhow::Result<TestContext> {
    let outsider = LiveCheck::builder().signing_secret(format!("not-the-secret-{}", random_hex(8))).build();
    let args = serde_json::json!({"side": "sell"});
    Ok(outsider.trigger_by_name(CASE, Some(id), &args, expires_after).await?)
}
