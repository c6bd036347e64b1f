//! Rows of the `messages` table as messages, whatever wrote them. Another program (a producer in another language,
//! a hand-made `INSERT`) may store a value as TEXT, a key as BLOB or a number: what has an obvious meaning is read
//! as such, and a row that cannot be a message — a key that is not UTF-8 — is a poison message: skipped and counted
//! by cause, so the partition, and the partitions read after it, go on.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use rusqlite::{types::ValueRef, Row};

use super::headers::decode_headers;
use crate::{context::Headers, sync::lock, transport::Message};

/// The columns the readers select, in this order, and the filter on rows whose offset can be one.
pub(super) const SELECT_MESSAGES: &str = "SELECT offset, key, value, headers FROM messages
     WHERE stream = ?1 AND partition = ?2 AND offset >= ?3 AND typeof(offset) = 'integer'
     ORDER BY offset LIMIT ?4";

/// Why a stored row is not a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PoisonCause {
    /// The key is a BLOB or TEXT that is not UTF-8.
    KeyNotUtf8,
    /// The value is NULL.
    ValueMissing,
}

impl PoisonCause {
    /// A short name, for logs and counters.
    pub fn as_str(self) -> &'static str {
        match self {
            PoisonCause::KeyNotUtf8 => "key_not_utf8",
            PoisonCause::ValueMissing => "value_missing",
        }
    }
}

/// Poison messages skipped by this transport's readers, by cause.
#[derive(Clone, Default)]
pub(super) struct PoisonCounts(Arc<Mutex<BTreeMap<PoisonCause, u64>>>);

impl PoisonCounts {
    pub(super) fn count(&self, cause: PoisonCause) {
        *lock(&self.0).entry(cause).or_default() += 1;
    }

    pub(super) fn snapshot(&self) -> BTreeMap<PoisonCause, u64> {
        lock(&self.0).clone()
    }
}

/// The row's offset (the query guarantees an integer) and its message, or why it is not one.
pub(super) fn message(row: &Row<'_>) -> rusqlite::Result<(u64, Result<Message, PoisonCause>)> {
    let offset = row.get::<_, i64>(0)?.max(0) as u64;
    let key = match row.get_ref(1)? {
        ValueRef::Null => Ok(None),
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => {
            std::str::from_utf8(bytes).map(|key| Some(key.to_owned())).map_err(|_| PoisonCause::KeyNotUtf8)
        }
        ValueRef::Integer(n) => Ok(Some(n.to_string())),
        ValueRef::Real(x) => Ok(Some(x.to_string())),
    };
    let value = match row.get_ref(2)? {
        ValueRef::Null => Err(PoisonCause::ValueMissing),
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => Ok(bytes.to_vec()),
        ValueRef::Integer(n) => Ok(n.to_string().into_bytes()),
        ValueRef::Real(x) => Ok(x.to_string().into_bytes()),
    };
    let headers = match row.get_ref(3)? {
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => decode_headers(bytes).unwrap_or_else(|| {
            tracing::warn!(offset, "stored headers do not decode; the message is read without them");
            Headers::new()
        }),
        _ => Headers::new(),
    };
    Ok((offset, key.and_then(|key| value.map(|value| Message { key, value, headers }))))
}
