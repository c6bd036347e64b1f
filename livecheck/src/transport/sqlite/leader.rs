//! Leader election on the embedded log: a lease in the database that the leader renews.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::now_ms;
use crate::{
    sync::lock,
    transport::{drop_deadline::DropDeadline, Leadership},
};

/// The longest releasing the lease waits for a locked database.
const RELEASE_WAITS_AT_MOST: Duration = Duration::from_millis(250);

/// Takes part in the election of `group`'s leader on `connection`; the lease is renewed every quarter of `lease`
/// off the async threads, and released when the returned value is dropped (waiting for the database at most as long
/// as `drop_deadline` allows: otherwise the lease expires by itself).
pub(super) fn candidacy(
    connection: Connection,
    group: &str,
    lease: Duration,
    drop_deadline: DropDeadline,
) -> Box<dyn Leadership> {
    let candidate = Arc::new(Candidate {
        connection: Mutex::new(connection),
        group: group.to_owned(),
        me: crate::sync::random_uuid(),
        lease,
        leader: AtomicBool::new(false),
    });
    candidate.renew();
    let renewing = {
        let candidate = Arc::downgrade(&candidate);
        let every = lease / 4;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(candidate) = candidate.upgrade() else {
                    return;
                };
                tokio::task::spawn_blocking(move || candidate.renew()).await.ok();
            }
        })
    };
    Box::new(SqliteLeadership { candidate, renewing, drop_deadline })
}

struct Candidate {
    connection: Mutex<Connection>,
    group: String,
    me: String,
    lease: Duration,
    leader: AtomicBool,
}

impl Candidate {
    /// Takes or renews the lease if it is free, expired or ours.
    fn renew(&self) {
        let result = (|| -> rusqlite::Result<bool> {
            let mut connection = lock(&self.connection);
            let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = now_ms();
            let holder: Option<(String, i64)> = tx
                .query_row("SELECT holder, expires_ms FROM leases WHERE grp = ?1", [&self.group], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .optional()?;
            let ours = match &holder {
                None => true,
                Some((holder, expires)) => *holder == self.me || *expires < now,
            };
            if ours {
                tx.execute(
                    "INSERT INTO leases (grp, holder, expires_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT (grp) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms",
                    params![self.group, self.me, now + self.lease.as_millis() as i64],
                )?;
            }
            tx.commit()?;
            Ok(ours)
        })();
        match result {
            Ok(ours) => self.leader.store(ours, Ordering::SeqCst),
            Err(error) => {
                tracing::warn!(%error, group = %self.group, "could not renew the leader lease");
                self.leader.store(false, Ordering::SeqCst);
            }
        }
    }
}

struct SqliteLeadership {
    candidate: Arc<Candidate>,
    renewing: tokio::task::JoinHandle<()>,
    drop_deadline: DropDeadline,
}

impl Leadership for SqliteLeadership {
    fn is_leader(&self) -> bool {
        self.candidate.leader.load(Ordering::SeqCst)
    }
}

impl Drop for SqliteLeadership {
    fn drop(&mut self) {
        self.renewing.abort();
        let candidate = &self.candidate;
        // Releasing the lease only spares the others waiting for it to expire: it is not worth holding up the
        // thread dropping this (often an async one) for a renewal under way or a locked database.
        let Ok(connection) = candidate.connection.try_lock() else {
            tracing::debug!("the leader lease is being renewed; it expires by itself");
            return;
        };
        let waits = self.drop_deadline.wait().min(RELEASE_WAITS_AT_MOST);
        let released = connection.busy_timeout(waits).and_then(|()| {
            connection
                .execute("DELETE FROM leases WHERE grp = ?1 AND holder = ?2", params![candidate.group, candidate.me])
        });
        if let Err(error) = released {
            tracing::warn!(%error, "could not release the leader lease; it expires by itself");
        }
    }
}
