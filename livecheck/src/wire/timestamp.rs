//! ISO-8601 timestamps as the Python side writes and reads them.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serializer};

/// Parses an ISO-8601 timestamp with an offset; one without an offset is taken as UTC.
pub(crate) fn parse(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|t| t.and_utc())
}

/// The form used in JSON values: `2026-11-25T01:51:06.369766Z`.
pub(crate) fn to_json_text(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The form used in headers: `2026-11-25T01:51:06.369766+00:00` (what Python's `isoformat()` reads everywhere).
pub(crate) fn to_header_text(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, false)
}

pub(crate) fn serialize<S: Serializer>(t: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&to_json_text(t))
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    parse(&text).ok_or_else(|| serde::de::Error::custom(format!("not an ISO-8601 timestamp: `{text}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_zulu_offset_and_naive_forms_to_the_same_instant() {
        let a = parse("2026-11-25T01:51:06.369766Z").unwrap();
        let b = parse("2026-11-25T01:51:06.369766+00:00").unwrap();
        let c = parse("2026-11-25T01:51:06.369766").unwrap();
        let d = parse("2026-11-25T02:51:06.369766+01:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a, d);
        assert_eq!(to_json_text(&a), "2026-11-25T01:51:06.369766Z");
        assert_eq!(to_header_text(&a), "2026-11-25T01:51:06.369766+00:00");
    }

    #[test]
    fn rejects_what_is_not_iso() {
        assert_eq!(parse("yesterday"), None);
        assert_eq!(parse("1764035466"), None);
        assert_eq!(parse(""), None);
    }
}
