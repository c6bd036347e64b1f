//! Durations in case files: `30s`, `500ms`, `2m`, `1h`, `1.5s`, or a number of seconds.

use std::time::Duration;

/// The longest duration taken: a year (beyond, a typo more likely than a wish).
const MAX_SECONDS: f64 = 366.0 * 86_400.0;

/// Parses a duration written as text; an error says what is expected.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let bad = || format!("`{text}` is not a duration like 30s, 500ms, 2m or 1h");
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    seconds(number.parse::<f64>().map_err(|_| bad())? * scale)
}

/// A number of seconds above 0 and at most a year.
pub(crate) fn seconds(seconds: f64) -> Result<Duration, String> {
    if !seconds.is_finite() || seconds <= 0.0 || seconds > MAX_SECONDS {
        return Err(format!("a duration is above 0 and at most a year, not {seconds} s"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// A duration in a case file: text with a unit, or a number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileDuration(pub(crate) Duration);

impl<'de> serde::Deserialize<'de> for FileDuration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// Reads the scalar in place, so that an error points at it.
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = FileDuration;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a duration: text like 30s, 500ms, 2m, 1h, or a number of seconds")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<FileDuration, E> {
                parse(text).map(FileDuration).map_err(E::custom)
            }
            fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<FileDuration, E> {
                seconds(value).map(FileDuration).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<FileDuration, E> {
                self.visit_f64(value as f64)
            }
            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<FileDuration, E> {
                self.visit_f64(value as f64)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_with_and_without_units() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1.5"), Ok(Duration::from_millis(1500)));
        for bad in ["", "0s", "-1s", "1d", "1e99", "abc", "NaNs", "400d"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
