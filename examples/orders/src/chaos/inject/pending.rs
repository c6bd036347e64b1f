//! The pending-tests stream as someone with access to the broker sees it: its messages read back whole — key,
//! value and headers, as [`Transport::read`] gives them — to copy or tamper with, and LiveCheck apps of outsiders
//! that write executions onto it.

use std::sync::Arc;

use livecheck::{
    transport::{Message, Transport},
    Clock, LiveCheck,
};

use crate::chaos::PENDING_STREAM;

/// Every message of the pending-tests stream up to its end now, whole, partition after partition.
pub(super) async fn read_whole(transport: &dyn Transport) -> anyhow::Result<Vec<Message>> {
    let mut messages = Vec::new();
    for (partition, end) in transport.end_offsets(PENDING_STREAM).await?.into_iter().enumerate() {
        let mut next = 0;
        while next < end {
            let page = transport.read(PENDING_STREAM, partition as u32, next, 1000).await?;
            let Some(last) = page.last() else { break };
            next = last.offset + 1;
            messages.extend(page.iter().filter(|r| r.offset < end).map(|r| Message::clone(&r.message)));
        }
    }
    Ok(messages)
}

/// A LiveCheck app of an outsider on `transport`, which triggers executions by name: it signs them with `secret`
/// (not at all when empty, whatever the environment says) and reads the time of day from `clock`.
pub(super) fn outsider(transport: &Arc<dyn Transport>, secret: &str, clock: Clock) -> LiveCheck {
    LiveCheck::builder().shared_transport(Arc::clone(transport)).signing_secret(secret).clock(clock).build()
}
