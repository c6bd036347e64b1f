//! A contract on a stage's value: a selector and a comparison — `equals`, `differs`, `regex`, `range`, `present`,
//! or equal to another stage's value, one of the test's arguments, or the test's id.

use std::fmt::Write as _;

use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use super::selector::Selector;

/// The longest regex taken, and the most memory its compiled form may take: a case file cannot make the
/// instance compile a huge automaton.
const MAX_REGEX_BYTES: usize = 4096;
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// One assertion of a step.
#[derive(Clone, Debug)]
pub struct Assertion {
    /// What it looks at in the stage's value.
    pub(crate) select: Selector,
    pub(crate) check: Check,
}

/// What the selected value must be.
#[derive(Clone, Debug)]
pub(crate) enum Check {
    Equals(Value),
    Differs(Value),
    Regex(Regex),
    Range {
        min: Option<f64>,
        max: Option<f64>,
    },
    Present(bool),
    /// The value another (earlier) stage carried, selected there.
    EqualsStage {
        signal: String,
        select: Selector,
    },
    /// One of the test's arguments, selected in them (`$.side`).
    EqualsArg(Selector),
    /// The test's id.
    EqualsTestId,
}

/// What a test knows when an assertion is checked.
pub(crate) struct Known<'a> {
    pub(crate) test_id: &'a str,
    pub(crate) args: &'a Value,
    /// The value of each stage reached so far.
    pub(crate) stages: &'a [(String, Value)],
}

impl Assertion {
    /// `Err` with what is wrong when `value` (the stage's) breaks the contract.
    pub(crate) fn check(&self, value: &Value, known: &Known<'_>) -> Result<(), String> {
        let selected = self.select.select(value);
        let sel = &self.select;
        let shown = |value: Option<&Value>| value.map_or_else(|| "missing".to_owned(), short);
        let expect_equal = |expected: Option<&Value>, what: String| match (selected, expected) {
            (Some(actual), Some(expected)) if same(actual, expected) => Ok(()),
            _ => Err(format!("{sel} is {}, expected {what} ({})", shown(selected), shown(expected))),
        };
        match &self.check {
            Check::Equals(expected) => match selected {
                Some(actual) if same(actual, expected) => Ok(()),
                _ => Err(format!("{sel} is {}, expected {}", shown(selected), short(expected))),
            },
            Check::Differs(other) => match selected {
                Some(actual) if same(actual, other) => {
                    Err(format!("{sel} is {}, expected anything else", short(actual)))
                }
                _ => Ok(()),
            },
            Check::Regex(regex) => match selected.and_then(Value::as_str) {
                Some(text) if regex.is_match(text) => Ok(()),
                _ => Err(format!("{sel} is {}, expected text matching /{}/", shown(selected), regex.as_str())),
            },
            Check::Range { min, max } => {
                let number = selected.and_then(Value::as_f64);
                let within = number.is_some_and(|n| min.is_none_or(|m| n >= m) && max.is_none_or(|m| n <= m));
                if within {
                    Ok(())
                } else {
                    let mut range = String::new();
                    let _ = write!(
                        range,
                        "{}..={}",
                        min.map_or(String::new(), |m| m.to_string()),
                        max.map_or(String::new(), |m| m.to_string())
                    );
                    Err(format!("{sel} is {}, expected a number within {range}", shown(selected)))
                }
            }
            Check::Present(true) => selected.map(|_| ()).ok_or_else(|| format!("{sel} is missing, expected present")),
            Check::Present(false) => match selected {
                None => Ok(()),
                Some(value) => Err(format!("{sel} is {}, expected absent", short(value))),
            },
            Check::EqualsStage { signal, select } => {
                let stage = known.stages.iter().find(|(name, _)| name == signal).map(|(_, value)| value);
                let expected = stage.and_then(|value| select.select(value));
                expect_equal(expected, format!("equal to {select} of stage {signal}"))
            }
            Check::EqualsArg(select) => {
                expect_equal(select.select(known.args), format!("equal to the test's argument {select}"))
            }
            Check::EqualsTestId => {
                let id = Value::String(known.test_id.to_owned());
                expect_equal(Some(&id), "equal to the test's id".into())
            }
        }
    }

    /// The stage another stage's value is compared with, if any.
    pub(crate) fn stage_referred(&self) -> Option<&str> {
        match &self.check {
            Check::EqualsStage { signal, .. } => Some(signal),
            _ => None,
        }
    }
}

/// Equal as JSON, numbers by value (`1` equals `1.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64().zip(y.as_f64()).is_some_and(|(x, y)| x == y),
        _ => a == b,
    }
}

/// A value as JSON, cut to 120 characters for messages.
fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= 120 {
        text
    } else {
        format!("{}…", text.chars().take(120).collect::<String>())
    }
}

/// An assertion as written in a case file: `select` (default `$`) and exactly one comparison.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WrittenAssertion {
    #[serde(default)]
    select: Option<String>,
    /// A span's attribute: shorthand for `select: $.attributes['KEY']`.
    #[serde(default)]
    attribute: Option<String>,
    #[serde(default)]
    equals: Option<Value>,
    #[serde(default)]
    differs: Option<Value>,
    #[serde(default)]
    regex: Option<String>,
    #[serde(default)]
    range: Option<WrittenRange>,
    #[serde(default)]
    present: Option<bool>,
    #[serde(default)]
    equals_stage: Option<WrittenStage>,
    #[serde(default)]
    equals_arg: Option<String>,
    #[serde(default)]
    equals_test_id: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WrittenRange {
    #[serde(default)]
    min: Option<f64>,
    #[serde(default)]
    max: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WrittenStage {
    signal: String,
    #[serde(default)]
    select: Option<String>,
}

/// The comparisons an assertion may name.
const COMPARISONS: &str = "equals, differs, regex, range, present, equals_stage, equals_arg, equals_test_id";

impl TryFrom<WrittenAssertion> for Assertion {
    type Error = String;

    fn try_from(written: WrittenAssertion) -> Result<Self, String> {
        let select = match (written.select, written.attribute) {
            (Some(_), Some(_)) => return Err("an assertion has `select` or `attribute`, not both".into()),
            (Some(select), None) => Selector::parse(&select)?,
            (None, Some(key)) => {
                if key.contains(['\'', '"']) {
                    return Err("an attribute name may not hold quotes".into());
                }
                Selector::parse(&format!("$.attributes['{key}']"))?
            }
            (None, None) => Selector::parse("$")?,
        };
        let mut checks = Vec::new();
        if let Some(value) = written.equals {
            checks.push(Check::Equals(value));
        }
        if let Some(value) = written.differs {
            checks.push(Check::Differs(value));
        }
        if let Some(pattern) = written.regex {
            if pattern.len() > MAX_REGEX_BYTES {
                return Err(format!("a regex is at most {MAX_REGEX_BYTES} bytes"));
            }
            let regex = regex::RegexBuilder::new(&pattern)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|error| format!("regex `{pattern}` does not compile: {error}"))?;
            checks.push(Check::Regex(regex));
        }
        if let Some(WrittenRange { min, max }) = written.range {
            if min.is_none() && max.is_none() {
                return Err("a range needs `min`, `max` or both".into());
            }
            if min.zip(max).is_some_and(|(min, max)| min > max) || [min, max].iter().flatten().any(|n| !n.is_finite()) {
                return Err("a range's `min` is at most its `max`, both finite numbers".into());
            }
            checks.push(Check::Range { min, max });
        }
        if let Some(present) = written.present {
            checks.push(Check::Present(present));
        }
        if let Some(stage) = written.equals_stage {
            let select = Selector::parse(stage.select.as_deref().unwrap_or("$"))?;
            checks.push(Check::EqualsStage { signal: stage.signal, select });
        }
        if let Some(arg) = written.equals_arg {
            // `side` is `$.side`.
            let arg = if arg.starts_with('$') { arg } else { format!("$.{arg}") };
            checks.push(Check::EqualsArg(Selector::parse(&arg)?));
        }
        match written.equals_test_id {
            Some(true) => checks.push(Check::EqualsTestId),
            Some(false) => return Err("`equals_test_id` is `true` or left out".into()),
            None => {}
        }
        match checks.len() {
            1 => Ok(Assertion { select, check: checks.remove(0) }),
            0 => Err(format!("an assertion needs one comparison: {COMPARISONS}")),
            _ => Err(format!("an assertion has one comparison, not {} (split it in several)", checks.len())),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn assertion(yaml: &str) -> Result<Assertion, String> {
        let written: WrittenAssertion = serde_yaml::from_str(yaml).map_err(|e| e.to_string())?;
        Assertion::try_from(written)
    }

    #[test]
    fn each_comparison_passes_and_fails() {
        let stages = vec![("order_sent_to_db".to_owned(), json!({"id": "o1", "qty": 3}))];
        let args = json!({"side": "sell"});
        let known = Known { test_id: "o1", args: &args, stages: &stages };
        let value =
            json!({"id": "o1", "side": "sell", "qty": 3.0, "items": [{"sku": "AB-12"}], "attributes": {"k": 1}});
        let pass = |yaml: &str| assertion(yaml).unwrap().check(&value, &known);
        assert_eq!(pass("{select: $.side, equals: sell}"), Ok(()));
        assert!(pass("{select: $.side, equals: buy}").unwrap_err().contains("expected \"buy\""));
        assert_eq!(pass("{select: $.side, differs: buy}"), Ok(()));
        assert!(pass("{select: $.side, differs: sell}").is_err());
        assert_eq!(pass("{select: '$.items[0].sku', regex: '^[A-Z]+-\\d+$'}"), Ok(()));
        assert!(pass("{select: $.side, regex: '^b'}").is_err());
        assert_eq!(pass("{select: $.qty, range: {min: 1, max: 3}}"), Ok(()));
        assert!(pass("{select: $.qty, range: {max: 2}}").is_err());
        assert_eq!(pass("{select: $.id, present: true}"), Ok(()));
        assert!(pass("{select: $.nope, present: true}").is_err());
        assert_eq!(pass("{select: $.nope, present: false}"), Ok(()));
        assert_eq!(pass("{select: $.id, equals_stage: {signal: order_sent_to_db, select: $.id}}"), Ok(()));
        assert_eq!(pass("{select: $.qty, equals_stage: {signal: order_sent_to_db, select: $.qty}}"), Ok(()), "3 = 3.0");
        assert!(pass("{select: $.side, equals_stage: {signal: order_sent_to_db, select: $.id}}").is_err());
        assert_eq!(pass("{select: $.side, equals_arg: side}"), Ok(()));
        assert!(pass("{select: $.id, equals_arg: $.side}").is_err());
        assert_eq!(pass("{select: $.id, equals_test_id: true}"), Ok(()));
        assert!(pass("{select: $.side, equals_test_id: true}").is_err());
        assert_eq!(pass("{attribute: k, equals: 1}"), Ok(()));
    }

    #[test]
    fn an_assertion_has_exactly_one_valid_comparison() {
        assert!(assertion("{select: $.a}").unwrap_err().contains("needs one comparison"));
        assert!(assertion("{select: $.a, equals: 1, differs: 2}").unwrap_err().contains("not 2"));
        assert!(assertion("{select: $.a, regex: '('}").unwrap_err().contains("does not compile"));
        assert!(assertion("{select: $.a, range: {min: 3, max: 1}}").is_err());
        assert!(assertion("{select: $.a, range: {}}").is_err());
        assert!(assertion("{select: a, equals: 1}").unwrap_err().contains("must start with `$`"));
        assert!(assertion("{select: $.a, equal: 1}").unwrap_err().contains("unknown field"));
    }
}
