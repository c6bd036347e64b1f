use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use serde::{de::DeserializeOwned, Serialize};
use tokio_util::sync::CancellationToken;

use super::table_entries::Entries;
use crate::{
    error::with_causes,
    sync::{read, write},
    transport::{Event, Message, Received, Subscription},
    Error, LiveCheck, Result,
};

/// The most bytes (keys and encoded values) a table holds in memory unless told otherwise.
pub const DEFAULT_TABLE_MAX_BYTES: usize = 64 << 20;

/// A durable key → value table: every change is published on the changelog stream `{name}-changelog`; opening
/// the table restores it from there, and it keeps following the changelog, so tables of the same name in other
/// processes (a service and a LiveCheck case, say) see each other's changes.
///
/// What it holds in memory is bounded by bytes ([`DEFAULT_TABLE_MAX_BYTES`], or [`Table::open_with_max_bytes`]):
/// past the bound the least recently changed entries are dropped from memory (they stay on the changelog),
/// counted in `metrics().table_entries_evicted` and logged once — a flood of huge keys from outside cannot take
/// the process's memory.
pub struct Table<V> {
    app: LiveCheck,
    changelog: String,
    values: Arc<RwLock<Entries<V>>>,
    following: CancellationToken,
}

impl<V> Drop for Table<V> {
    fn drop(&mut self) {
        self.following.cancel();
    }
}

impl<V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static> Table<V> {
    /// Opens the table `name`, restored from its changelog, holding at most [`DEFAULT_TABLE_MAX_BYTES`].
    pub async fn open(app: &LiveCheck, name: &str) -> Result<Self> {
        Self::open_with_max_bytes(app, name, DEFAULT_TABLE_MAX_BYTES).await
    }

    /// Opens the table `name`, holding at most `max_bytes` of keys and encoded values in memory.
    pub async fn open_with_max_bytes(app: &LiveCheck, name: &str, max_bytes: usize) -> Result<Self> {
        let transport = &app.shared.transport;
        let changelog = format!("{name}-changelog");
        let ends = transport.end_offsets(&changelog).await?;
        // A group of its own, so this process reads the whole changelog.
        let group = format!("{name}-table-{:032x}", fastrand::u128(..));
        let mut subscription = transport.subscribe(&[&changelog], &group).await?;
        let values = Arc::new(RwLock::new(Entries::new(max_bytes)));
        let mut read = vec![0; ends.len()];
        while read.iter().zip(&ends).any(|(read, end)| read < end) {
            let event = tokio::time::timeout(Duration::from_secs(30), subscription.recv())
                .await
                .map_err(|e| Error::transport(format!("restoring table `{name}`"), true, e))??;
            let Event::Message(received) = event else { continue };
            if let Some(read) = read.get_mut(received.partition as usize) {
                *read = received.offset + 1;
            }
            apply(app, &values, &received, &changelog);
        }
        let following = CancellationToken::new();
        let runs = app.shared.consumers.run(crate::app::Consumer {
            consumer: "table",
            group,
            streams: vec![changelog.clone()],
        });
        tokio::spawn(follow(app.clone(), subscription, values.clone(), changelog.clone(), runs, following.clone()));
        Ok(Table { app: app.clone(), changelog, values, following })
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<V> {
        read(&self.values).get(key).cloned()
    }

    /// Sets `key` to `value`: stored in the changelog (resolves once it is), then visible here at once.
    pub async fn set(&self, key: &str, value: V) -> Result<()> {
        let encoded_len = self.publish(key, Some(&value)).await?;
        let dropped = write(&self.values).insert(key.to_owned(), value, encoded_len);
        evicted(&self.app, dropped, &self.changelog);
        Ok(())
    }

    /// Removes `key`.
    pub async fn remove(&self, key: &str) -> Result<()> {
        self.publish(key, None).await?;
        write(&self.values).remove(key);
        Ok(())
    }

    /// How many keys the table holds.
    pub fn len(&self) -> usize {
        read(&self.values).len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Publishes the change; the bytes of the encoded value.
    async fn publish(&self, key: &str, value: Option<&V>) -> Result<usize> {
        let value = serde_json::to_vec(&value)?;
        let encoded_len = value.len();
        let message = Message { key: Some(key.to_owned()), value, headers: Default::default() };
        self.app.shared.transport.publish(&self.changelog, message).await?;
        Ok(encoded_len)
    }
}

/// Counts entries dropped to stay within a table's bound (logged the first time).
fn evicted(app: &LiveCheck, dropped: usize, changelog: &str) {
    if dropped == 0 {
        return;
    }
    let metrics = &app.shared.metrics;
    metrics.table_entries_evicted.add(dropped as u64);
    if metrics.first_time(&format!("table full {changelog}")) {
        tracing::warn!(%changelog, "a table reached its byte bound; dropping its least recently changed entries from memory (logged once)");
    }
}

/// Applies one changelog entry: a value sets the key, `null` removes it; an entry that does not decode is logged
/// and skipped.
fn apply<V: DeserializeOwned>(app: &LiveCheck, values: &RwLock<Entries<V>>, received: &Received, changelog: &str) {
    let Some(key) = received.message.key.clone() else {
        return;
    };
    match serde_json::from_slice::<Option<V>>(&received.message.value) {
        Ok(Some(value)) => {
            let dropped = write(values).insert(key, value, received.message.value.len());
            evicted(app, dropped, changelog);
        }
        Ok(None) => {
            write(values).remove(&key);
        }
        Err(error) => {
            tracing::warn!(%changelog, %key, %error, "skipping a changelog entry that does not decode")
        }
    }
}

async fn follow<V: DeserializeOwned>(
    app: LiveCheck,
    mut subscription: Box<dyn Subscription>,
    values: Arc<RwLock<Entries<V>>>,
    changelog: String,
    runs: crate::app::ConsumerRuns,
    stop: CancellationToken,
) {
    loop {
        let received = tokio::select! {
            _ = stop.cancelled() => return runs.finished(),
            received = subscription.recv() => received,
        };
        match received {
            Ok(Event::Message(received)) => apply(&app, &values, &received, &changelog),
            // The only member of its own group: every partition is its own.
            Ok(Event::Assigned(_) | Event::Revoked(_)) => {}
            Err(error) => {
                if let Some(cause) = subscription.stopped() {
                    tracing::error!(%changelog, error = %with_causes(&*cause), "stopped following the changelog for good");
                    return runs.stopped(&cause);
                }
                tracing::warn!(%changelog, error = %with_causes(&error), "following the changelog failed; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
