//! Leader election on the memory log: candidates queue per group, the first is the leader, and the next takes
//! over when it is dropped.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use crate::{sync::lock, transport::Leadership};

/// Candidates by group, the leader first.
pub(super) type Elections = Arc<Mutex<HashMap<String, Vec<u64>>>>;

/// Stands `candidate` for leader of `group`: it leads once every candidate before it is gone.
pub(super) fn candidacy(elections: &Elections, group: &str, candidate: u64) -> MemoryLeadership {
    lock(elections).entry(group.to_owned()).or_default().push(candidate);
    MemoryLeadership { candidate, group: group.to_owned(), elections: elections.clone() }
}

/// One candidate's place in its group's election.
pub(super) struct MemoryLeadership {
    candidate: u64,
    group: String,
    elections: Elections,
}

impl Leadership for MemoryLeadership {
    fn is_leader(&self) -> bool {
        lock(&self.elections).get(&self.group).and_then(|c| c.first()) == Some(&self.candidate)
    }
}

impl Drop for MemoryLeadership {
    fn drop(&mut self) {
        if let Some(candidates) = lock(&self.elections).get_mut(&self.group) {
            candidates.retain(|c| *c != self.candidate);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::transport::{MemoryTransport, Transport};

    #[tokio::test]
    async fn one_leader_per_group_and_the_next_takes_over() {
        let t = MemoryTransport::new();
        let a = t.elect_leader("g").await.unwrap();
        let b = t.elect_leader("g").await.unwrap();
        let other = t.elect_leader("h").await.unwrap();
        assert!(a.is_leader());
        assert!(!b.is_leader());
        assert!(other.is_leader());
        drop(a);
        assert!(b.is_leader());
    }
}
