//! The versions of one case that get a place of their own: the most recently seen few. A version seen when the
//! places are full takes the place of the one seen longest ago, which is folded into [`OTHER`].

use std::sync::Arc;

/// What versions pushed out of their place are counted as.
pub(crate) const OTHER: &str = "other";

/// How many versions of one case have a place of their own by default.
pub(crate) const DEFAULT_PLACES: usize = 8;

/// The most recently seen versions, most recent last.
#[derive(Debug)]
pub(crate) struct RecentVersions {
    places: usize,
    versions: Vec<Arc<str>>,
}

/// Where a version was put.
#[derive(Debug, PartialEq)]
pub(crate) struct Placed {
    /// Its index among the places.
    pub(crate) index: usize,
    /// The version that lost its place to it, to be folded into [`OTHER`].
    pub(crate) evicted: Option<Arc<str>>,
}

impl RecentVersions {
    /// Room for `places` versions (at least 1).
    pub(crate) fn new(places: usize) -> Self {
        RecentVersions { places: places.max(1), versions: Vec::new() }
    }

    /// Marks `version` as seen now and says where it is. Its index stays valid until the next call.
    pub(crate) fn see(&mut self, version: &str) -> (Arc<str>, Placed) {
        if let Some(found) = self.versions.iter().position(|v| &**v == version) {
            let seen = self.versions.remove(found);
            self.versions.push(seen.clone());
            return (seen, Placed { index: self.versions.len() - 1, evicted: None });
        }
        let evicted = (self.versions.len() >= self.places).then(|| self.versions.remove(0));
        let version: Arc<str> = version.into();
        self.versions.push(version.clone());
        (version, Placed { index: self.versions.len() - 1, evicted })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_seen_longest_ago_gives_its_place_to_a_new_one() {
        let mut recent = RecentVersions::new(2);
        assert_eq!(recent.see("v1").1.evicted, None);
        assert_eq!(recent.see("v2").1.evicted, None);
        // v1 seen again: v2 is now the oldest.
        assert_eq!(recent.see("v1").1, Placed { index: 1, evicted: None });
        assert_eq!(recent.see("v3").1.evicted.as_deref(), Some("v2"));
        assert_eq!(recent.versions.iter().map(|v| &**v).collect::<Vec<_>>(), ["v1", "v3"]);
    }
}
