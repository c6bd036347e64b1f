//! Which partitions a member of a group owns, and the check that co-partitioned streams agree.

use std::ops::Range;

use crate::{Error, Result};

/// The partitions the member at `index` of `members` live members (in an order all of them agree on) owns: a
/// contiguous range, as Kafka's range assignor gives over equally partitioned streams.
pub(crate) fn owned_partitions(partitions: u32, members: usize, index: usize) -> Range<u32> {
    let members = members.max(1) as u64;
    let index = (index as u64).min(members - 1);
    let partitions = u64::from(partitions);
    let start = partitions * index / members;
    let end = partitions * (index + 1) / members;
    start as u32..end as u32
}

/// The common partition count of `streams` (name, partitions), or an error naming two that differ.
pub(crate) fn check_co_partitioned(streams: &[(&str, u32)]) -> Result<u32> {
    let Some((first, partitions)) = streams.first() else {
        return Err(Error::Config("a subscription needs at least one stream".into()));
    };
    if let Some((other, n)) = streams.iter().find(|(_, n)| n != partitions) {
        return Err(Error::Config(format!(
            "streams `{first}` ({partitions} partitions) and `{other}` ({n} partitions) must have the same number \
             of partitions to be consumed together: they are keyed by test id and partition p of each belongs to \
             the same member; recreate one of them"
        )));
    }
    Ok(*partitions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_own_disjoint_ranges_covering_every_partition() {
        for partitions in [1, 3, 8, 13] {
            for members in 1..6 {
                let mut all: Vec<u32> = (0..members).flat_map(|i| owned_partitions(partitions, members, i)).collect();
                all.sort_unstable();
                assert_eq!(all, (0..partitions).collect::<Vec<_>>(), "{partitions} over {members}");
            }
        }
        assert_eq!(owned_partitions(8, 2, 1), 4..8);
    }

    #[test]
    fn streams_with_different_partition_counts_are_named() {
        assert_eq!(check_co_partitioned(&[("a", 4), ("b", 4)]).unwrap(), 4);
        let error = check_co_partitioned(&[("livecheck", 8), ("livecheck-bus", 4)]).unwrap_err().to_string();
        assert!(error.contains("`livecheck` (8 partitions)") && error.contains("`livecheck-bus` (4 partitions)"));
    }
}
