//! Declarative cases (feature `declare`): placeholder, filled below.
