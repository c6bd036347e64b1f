//! The users' order sets: an embedded table on the broker by default, Redis when given a `redis://` URL.

use anyhow::Context;
use livecheck::{stream::Table, LiveCheck};
use redis::AsyncCommands;

/// The most the embedded cache holds in memory in each process (least recently changed users dropped past it).
const CACHE_MAX_BYTES: usize = 16 << 20;

/// Where the worker caches each user's orders, and LiveCheck checks them.
#[derive(Clone)]
pub(crate) enum Cache {
    /// A changelog-backed table on the app's transport (followed by every process that opens it).
    Embedded(std::sync::Arc<Table<Vec<String>>>),
    /// Sets `orders:user:{id}` in Redis at `url`.
    Redis { url: String, connection: redis::aio::MultiplexedConnection },
}

impl Cache {
    /// The cache named by `url` (`redis://host:port`), or the embedded one when `None`.
    pub(crate) async fn open(app: &LiveCheck, url: Option<&str>) -> anyhow::Result<Self> {
        match url {
            None => {
                let table = Table::open_with_max_bytes(app, "user-orders", CACHE_MAX_BYTES).await?;
                Ok(Cache::Embedded(std::sync::Arc::new(table)))
            }
            Some(url) => {
                let redis = || format!("Redis at {url}");
                let client = redis::Client::open(url).with_context(redis)?;
                let connection = client.get_multiplexed_async_connection().await.with_context(redis)?;
                Ok(Cache::Redis { url: url.to_owned(), connection })
            }
        }
    }

    /// Adds `order_id` to the user's orders.
    pub(crate) async fn add(&self, user_id: &str, order_id: &str) -> anyhow::Result<()> {
        match self {
            Cache::Embedded(table) => {
                let mut orders = table.get(user_id).unwrap_or_default();
                orders.push(order_id.to_owned());
                table.set(user_id, orders).await?;
            }
            Cache::Redis { url, connection } => {
                let mut connection = connection.clone();
                let _: () = connection
                    .sadd(format!("orders:user:{user_id}"), order_id)
                    .await
                    .with_context(|| format!("Redis at {url}: adding an order"))?;
            }
        }
        Ok(())
    }

    /// Whether `order_id` is among the user's orders.
    pub(crate) async fn contains(&self, user_id: &str, order_id: &str) -> anyhow::Result<bool> {
        match self {
            Cache::Embedded(table) => Ok(table.get(user_id).is_some_and(|orders| orders.iter().any(|o| o == order_id))),
            Cache::Redis { url, connection } => {
                let mut connection = connection.clone();
                connection
                    .sismember(format!("orders:user:{user_id}"), order_id)
                    .await
                    .with_context(|| format!("Redis at {url}: looking up an order"))
            }
        }
    }
}
