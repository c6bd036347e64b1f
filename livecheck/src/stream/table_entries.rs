//! What a [`super::Table`] holds in memory: its entries, bounded by bytes; past the bound the least recently
//! changed go first.

use std::collections::{BTreeMap, HashMap};

/// The entries, their bytes (key and encoded value), and the order they were last changed in.
pub(super) struct Entries<V> {
    values: HashMap<String, (V, usize, u64)>,
    /// Change number → key, oldest first.
    changed: BTreeMap<u64, String>,
    next_change: u64,
    bytes: usize,
    max_bytes: usize,
}

impl<V> Entries<V> {
    pub(super) fn new(max_bytes: usize) -> Self {
        Entries { values: HashMap::new(), changed: BTreeMap::new(), next_change: 0, bytes: 0, max_bytes }
    }

    pub(super) fn get(&self, key: &str) -> Option<&V> {
        self.values.get(key).map(|(value, _, _)| value)
    }

    pub(super) fn len(&self) -> usize {
        self.values.len()
    }

    /// Sets `key` to `value` (`encoded_len` bytes on the changelog); returns how many entries were dropped to stay
    /// within the bound (an entry bigger than the bound on its own is not kept either).
    pub(super) fn insert(&mut self, key: String, value: V, encoded_len: usize) -> usize {
        self.remove(&key);
        let size = key.len() + encoded_len;
        let change = self.next_change;
        self.next_change += 1;
        self.changed.insert(change, key.clone());
        self.values.insert(key, (value, size, change));
        self.bytes += size;
        let mut dropped = 0;
        while self.bytes > self.max_bytes {
            let Some((_, oldest)) = self.changed.pop_first() else { break };
            if let Some((_, size, _)) = self.values.remove(&oldest) {
                self.bytes -= size;
                dropped += 1;
            }
        }
        dropped
    }

    pub(super) fn remove(&mut self, key: &str) {
        if let Some((_, size, change)) = self.values.remove(key) {
            self.bytes -= size;
            self.changed.remove(&change);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_changed_entries_go_past_the_bound() {
        let mut entries = Entries::new(25);
        assert_eq!(entries.insert("a".into(), 1, 9), 0);
        assert_eq!(entries.insert("b".into(), 2, 9), 0);
        assert_eq!(entries.insert("a".into(), 3, 9), 0, "a changed again: b is now the oldest");
        assert_eq!(entries.insert("c".into(), 4, 9), 1);
        assert_eq!((entries.get("a"), entries.get("b"), entries.get("c")), (Some(&3), None, Some(&4)));
        assert_eq!(entries.insert("huge".into(), 5, 100), 3, "bigger than the bound alone: nothing is kept");
        assert_eq!(entries.len(), 0);
        entries.insert("d".into(), 6, 9);
        entries.remove("d");
        assert_eq!((entries.len(), entries.bytes), (0, 0));
    }
}
