//! JSONPath-style selectors on a signal's value, the test's arguments or a span: `$` (the whole value),
//! `$.side`, `$.items[0].qty`, `$.attributes['http.route']`. A subset of JSONPath: names, quoted names and
//! indexes; no wildcards, filters or slices (a selector picks one value or none).

use std::fmt;

use serde_json::Value;

/// One step of a selector.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Name(String),
    Index(usize),
}

/// A parsed selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    text: String,
    parts: Vec<Part>,
}

/// The longest selector taken.
const MAX_SELECTOR_BYTES: usize = 1024;

impl Selector {
    /// Parses `text`; an error says what is wrong and where.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() > MAX_SELECTOR_BYTES {
            return Err(format!("a selector is at most {MAX_SELECTOR_BYTES} bytes"));
        }
        let bad = |at: usize, what: &str| format!("selector `{text}`: {what} at character {}", at + 1);
        let Some(mut rest) = text.strip_prefix('$') else {
            return Err(format!("selector `{text}` must start with `$` (e.g. `$.side`, `$.items[0].qty`)"));
        };
        let mut parts = Vec::new();
        while !rest.is_empty() {
            let at = text.len() - rest.len();
            if let Some(after) = rest.strip_prefix('.') {
                let end = after.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-')).unwrap_or(after.len());
                if end == 0 {
                    return Err(bad(at, "a name is expected after `.`"));
                }
                parts.push(Part::Name(after[..end].to_owned()));
                rest = &after[end..];
            } else if let Some(after) = rest.strip_prefix('[') {
                let close = after.find(']').ok_or_else(|| bad(at, "`[` is not closed"))?;
                let inside = after[..close].trim();
                let quoted = |q: char| inside.len() >= 2 && inside.starts_with(q) && inside.ends_with(q);
                if quoted('\'') || quoted('"') {
                    let name = &inside[1..inside.len() - 1];
                    if name.contains(['\'', '"']) {
                        return Err(bad(at, "a quoted name may not hold quotes"));
                    }
                    parts.push(Part::Name(name.to_owned()));
                } else {
                    let index = inside
                        .parse::<usize>()
                        .map_err(|_| bad(at, "`[…]` holds an index (0, 1, …) or a quoted name"))?;
                    parts.push(Part::Index(index));
                }
                rest = &after[close + 1..];
            } else {
                return Err(bad(at, "`.name` or `[…]` is expected"));
            }
        }
        Ok(Selector { text: text.to_owned(), parts })
    }

    /// The value it picks in `value`, if there is one.
    pub fn select<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        self.parts.iter().try_fold(value, |value, part| match part {
            Part::Name(name) => value.as_object()?.get(name),
            Part::Index(index) => value.as_array()?.get(*index),
        })
    }

    /// The selector as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn picks_names_indexes_and_quoted_names() {
        let value = json!({"side": "sell", "items": [{"qty": 3}], "attributes": {"http.route": "/o"}});
        let pick = |s: &str| Selector::parse(s).unwrap().select(&value).cloned();
        assert_eq!(pick("$"), Some(value.clone()));
        assert_eq!(pick("$.side"), Some(json!("sell")));
        assert_eq!(pick("$.items[0].qty"), Some(json!(3)));
        assert_eq!(pick("$.attributes['http.route']"), Some(json!("/o")));
        assert_eq!(pick("$.attributes[\"http.route\"]"), Some(json!("/o")));
        assert_eq!(pick("$.items[1]"), None);
        assert_eq!(pick("$.side.x"), None);
        assert_eq!(pick("$.side[0]"), None);
    }

    #[test]
    fn bad_selectors_say_what_is_wrong() {
        for bad in ["side", "$.", "$..a", "$[", "$[x]", "$[-1]", "$.a b", "$['a'b']", ""] {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
        assert!(Selector::parse("$[").unwrap_err().contains("not closed"));
    }
}
