//! Parsers for the values given on the command line: durations, `--arg KEY=VALUE`, JSON.

use std::time::Duration;

use serde_json::Value;

/// `60s`, `500ms`, `2m`, `1h`, `1.5s`, or a plain number of seconds.
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration like 60s, 500ms, 2m or 1h");
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    let number: f64 = number.parse().map_err(|_| bad())?;
    let seconds = number * scale;
    // Up to about 30 years: beyond that `Duration::from_secs_f64` would overflow.
    if !seconds.is_finite() || seconds <= 0.0 || seconds > 1e9 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// [`duration`], or `0` for none.
pub(crate) fn duration_or_zero(text: &str) -> Result<Duration, String> {
    if text.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    duration(text)
}

/// `KEY=VALUE`: a value that parses as JSON (`3`, `true`, `null`, `{"a": 1}`, `"quoted"`) is taken as JSON,
/// anything else as a string (`sell`).
pub(crate) fn key_value(text: &str) -> Result<(String, Value), String> {
    let (key, value) = text.split_once('=').ok_or_else(|| format!("`{text}` is not KEY=VALUE (e.g. side=sell)"))?;
    if key.is_empty() {
        return Err(format!("`{text}` has no key before `=` (e.g. side=sell)"));
    }
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    Ok((key.to_owned(), value))
}

/// Any JSON value: an object gives named arguments, an array positional ones.
pub(crate) fn json(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|error| format!("not JSON: {error}"))
}

/// A human form of a duration: `40ms`, `1.25s`, `2m05s`.
pub(crate) fn seconds_text(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "?".into();
    }
    if seconds < 1.0 {
        format!("{}ms", (seconds * 1000.0).round() as u64)
    } else if seconds < 60.0 {
        format!("{:.2}s", seconds)
    } else if seconds < 3600.0 {
        let whole = seconds.round() as u64;
        format!("{}m{:02}s", whole / 60, whole % 60)
    } else {
        let whole = seconds.round() as u64;
        format!("{}h{:02}m", whole / 3600, whole / 60 % 60)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(duration("60"), Ok(Duration::from_secs(60)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        for bad in ["", "s", "-1s", "0s", "10 s", "1d", "1e99", "abc"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn zero_is_no_duration_where_it_means_never() {
        assert_eq!(duration_or_zero("0"), Ok(Duration::ZERO));
        assert_eq!(duration_or_zero("2s"), Ok(Duration::from_secs(2)));
        assert!(duration_or_zero("0s").is_err() && duration_or_zero("-1").is_err());
    }

    #[test]
    fn key_values_take_json_when_it_parses_and_a_string_otherwise() {
        assert_eq!(key_value("side=sell"), Ok(("side".into(), json!("sell"))));
        assert_eq!(key_value("n=3"), Ok(("n".into(), json!(3))));
        assert_eq!(key_value("fake=true"), Ok(("fake".into(), json!(true))));
        assert_eq!(key_value(r#"o={"a": [1]}"#), Ok(("o".into(), json!({"a": [1]}))));
        assert_eq!(key_value(r#"id="42""#), Ok(("id".into(), json!("42"))));
        assert_eq!(key_value("empty="), Ok(("empty".into(), json!(""))));
        assert_eq!(key_value("expr=a=b"), Ok(("expr".into(), json!("a=b"))));
        assert!(key_value("side").is_err());
        assert!(key_value("=sell").is_err());
    }

    #[test]
    fn seconds_read_well() {
        assert_eq!(seconds_text(0.0404), "40ms");
        assert_eq!(seconds_text(1.234), "1.23s");
        assert_eq!(seconds_text(125.0), "2m05s");
        assert_eq!(seconds_text(7300.0), "2h01m");
        assert_eq!(seconds_text(f64::NAN), "?");
    }
}
