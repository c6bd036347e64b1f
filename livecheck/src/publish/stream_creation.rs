//! A service creates the app's streams before its first publish, as an instance does when it starts: on a broker
//! that does not create topics on first use (tansu 0.6; Kafka with `auto.create.topics.enable=false`), a service
//! started before any instance would otherwise publish into streams that are not there.
//!
//! With a partition count configured (`LiveCheckBuilder::partitions`), the three streams are created with it, all
//! at once, so they stay co-partitioned whoever comes first; without one, the transport creates each stream it
//! publishes to with its default count, as an instance's lookups do.

use std::sync::Arc;

use super::StreamNames;
use crate::{transport::Transport, Result};

/// Creates the app's streams once, before the first publish that needs them. Cheap to clone.
#[derive(Clone)]
pub(crate) struct StreamCreation {
    transport: Arc<dyn Transport>,
    streams: StreamNames,
    partitions: Option<u32>,
    done: Arc<tokio::sync::OnceCell<()>>,
}

impl StreamCreation {
    pub(crate) fn new(transport: Arc<dyn Transport>, streams: StreamNames, partitions: Option<u32>) -> Self {
        StreamCreation { transport, streams, partitions, done: Default::default() }
    }

    /// Creates the pending-tests, bus and report streams with the configured partition count unless they exist
    /// (once; concurrent callers wait for the first); nothing without a configured count.
    ///
    /// Cancellation safe: a caller dropped meanwhile leaves the creation to the next one.
    pub(crate) async fn ensure(&self) -> Result<()> {
        let Some(partitions) = self.partitions else { return Ok(()) };
        self.done
            .get_or_try_init(|| async {
                for stream in [&self.streams.pending, &self.streams.bus, &self.streams.reports] {
                    self.transport.create_stream(stream, partitions).await?;
                }
                Ok(())
            })
            .await
            .map(|_| ())
    }
}
