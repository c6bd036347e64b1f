use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use serde::{de::DeserializeOwned, Serialize};
use tokio_util::sync::CancellationToken;

use crate::{
    sync::{read, write},
    transport::{Event, Message, Received, Subscription},
    Error, LiveCheck, Result,
};

/// A durable key → value table: every change is published on the changelog stream `{name}-changelog`; opening
/// the table restores it from there, and it keeps following the changelog, so tables of the same name in other
/// processes (a service and a LiveCheck case, say) see each other's changes.
pub struct Table<V> {
    app: LiveCheck,
    changelog: String,
    values: Arc<RwLock<HashMap<String, V>>>,
    following: CancellationToken,
}

impl<V> Drop for Table<V> {
    fn drop(&mut self) {
        self.following.cancel();
    }
}

impl<V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static> Table<V> {
    /// Opens the table `name`, restored from its changelog.
    pub async fn open(app: &LiveCheck, name: &str) -> Result<Self> {
        let transport = &app.shared.transport;
        let changelog = format!("{name}-changelog");
        let ends = transport.end_offsets(&changelog).await?;
        // A group of its own, so this process reads the whole changelog.
        let group = format!("{name}-table-{:032x}", fastrand::u128(..));
        let mut subscription = transport.subscribe(&[&changelog], &group).await?;
        let values = Arc::new(RwLock::new(HashMap::new()));
        let mut read = vec![0; ends.len()];
        while read.iter().zip(&ends).any(|(read, end)| read < end) {
            let event = tokio::time::timeout(Duration::from_secs(30), subscription.recv())
                .await
                .map_err(|e| Error::transport(format!("restoring table `{name}`"), true, e))??;
            let Event::Message(received) = event else { continue };
            if let Some(read) = read.get_mut(received.partition as usize) {
                *read = received.offset + 1;
            }
            apply(&values, &received, &changelog);
        }
        let following = CancellationToken::new();
        tokio::spawn(follow(subscription, values.clone(), changelog.clone(), following.clone()));
        Ok(Table { app: app.clone(), changelog, values, following })
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<V> {
        read(&self.values).get(key).cloned()
    }

    /// Sets `key` to `value`: stored in the changelog (resolves once it is), then visible here at once.
    pub async fn set(&self, key: &str, value: V) -> Result<()> {
        self.publish(key, Some(&value)).await?;
        write(&self.values).insert(key.to_owned(), value);
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

    async fn publish(&self, key: &str, value: Option<&V>) -> Result<()> {
        let message =
            Message { key: Some(key.to_owned()), value: serde_json::to_vec(&value)?, headers: Default::default() };
        self.app.shared.transport.publish(&self.changelog, message).await?;
        Ok(())
    }
}

/// Applies one changelog entry: a value sets the key, `null` removes it; an entry that does not decode is logged
/// and skipped.
fn apply<V: DeserializeOwned>(values: &RwLock<HashMap<String, V>>, received: &Received, changelog: &str) {
    let Some(key) = received.message.key.clone() else {
        return;
    };
    match serde_json::from_slice::<Option<V>>(&received.message.value) {
        Ok(Some(value)) => {
            write(values).insert(key, value);
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
    mut subscription: Box<dyn Subscription>,
    values: Arc<RwLock<HashMap<String, V>>>,
    changelog: String,
    stop: CancellationToken,
) {
    loop {
        let received = tokio::select! {
            _ = stop.cancelled() => return,
            received = subscription.recv() => received,
        };
        match received {
            Ok(Event::Message(received)) => apply(&values, &received, &changelog),
            // The only member of its own group: every partition is its own.
            Ok(Event::Assigned(_) | Event::Revoked(_)) => {}
            Err(error) => {
                tracing::warn!(%changelog, %error, "following the changelog failed; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
