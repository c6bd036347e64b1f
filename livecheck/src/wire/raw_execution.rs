//! A test execution as the instance holds it while the test runs: arguments kept as their JSON text.

use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Deserialize};
use serde_json::{value::RawValue, Map, Value};

use super::TestExecution;
use crate::{Error, Result};

/// The fields of a [`TestExecution`], with the arguments undecoded until the case decodes them into its own type:
/// no JSON tree is built, and a waiting test holds a few bytes of text instead.
#[derive(Debug, Deserialize)]
pub(crate) struct RawExecution {
    pub(crate) id: String,
    pub(crate) case_name: String,
    #[serde(with = "super::timestamp")]
    pub(crate) timestamp: DateTime<Utc>,
    #[serde(with = "super::timestamp")]
    pub(crate) expires: DateTime<Utc>,
    #[serde(default)]
    pub(crate) test_args: Option<Box<RawValue>>,
    #[serde(default)]
    pub(crate) test_kwargs: Option<Box<RawValue>>,
}

/// The arguments of an execution, as JSON text.
#[derive(Debug, Default)]
pub(crate) struct RawArgs {
    args: Option<Box<RawValue>>,
    kwargs: Option<Box<RawValue>>,
}

/// `[]`, `{}`, `null` or absent, whitespace aside.
fn is_empty(raw: &Option<Box<RawValue>>) -> bool {
    raw.as_ref().is_none_or(|raw| {
        let text = raw.get().trim();
        text == "null" || text.bytes().filter(|b| !b.is_ascii_whitespace()).count() == 2
    })
}

impl RawExecution {
    /// Splits into identity and arguments.
    pub(crate) fn into_parts(self) -> ((String, String, DateTime<Utc>, DateTime<Utc>), RawArgs) {
        ((self.id, self.case_name, self.timestamp, self.expires), RawArgs::new(self.test_args, self.test_kwargs))
    }

    /// The full execution (for a report).
    pub(crate) fn into_execution(self) -> TestExecution {
        let ((id, case_name, timestamp, expires), args) = self.into_parts();
        args.to_execution(id, case_name, timestamp, expires)
    }
}

impl RawArgs {
    pub(crate) fn new(args: Option<Box<RawValue>>, kwargs: Option<Box<RawValue>>) -> Self {
        RawArgs { args, kwargs }
    }

    /// Decodes into the case's argument type: named arguments when there are no positional ones, positional ones
    /// when there are no named ones (a single positional argument is also tried on its own).
    pub(crate) fn decode<A: DeserializeOwned>(&self) -> Result<A> {
        let text = |raw: &Option<Box<RawValue>>| raw.as_ref().map_or("null", |r| r.get()).to_owned();
        let decoded = match (is_empty(&self.args), is_empty(&self.kwargs)) {
            (true, true) => serde_json::from_str("{}").or_else(|first| serde_json::from_str("null").map_err(|_| first)),
            (true, false) => serde_json::from_str(&text(&self.kwargs)),
            (false, true) => {
                let args = text(&self.args);
                serde_json::from_str(&args).or_else(|first| match serde_json::from_str::<Vec<Box<RawValue>>>(&args) {
                    Ok(single) if single.len() == 1 => serde_json::from_str(single[0].get()).map_err(|_| first),
                    _ => Err(first),
                })
            }
            (false, false) => {
                return Err(Error::Arguments(
                    "the execution has both positional and named arguments; a case takes one or the other".into(),
                ))
            }
        };
        decoded.map_err(|e| Error::Arguments(e.to_string()))
    }

    /// The full execution with these arguments (arguments that are not an array / object become empty).
    pub(crate) fn to_execution(
        &self,
        id: String,
        case_name: String,
        timestamp: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> TestExecution {
        let args: Vec<Value> = self.args.as_ref().and_then(|r| serde_json::from_str(r.get()).ok()).unwrap_or_default();
        let kwargs: Map<String, Value> =
            self.kwargs.as_ref().and_then(|r| serde_json::from_str(r.get()).ok()).unwrap_or_default();
        TestExecution::from_parts(id, case_name, timestamp, expires, args, kwargs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> RawExecution {
        serde_json::from_str(json).unwrap()
    }

    const HEAD: &str = r#""id":"x","case_name":"c","timestamp":"2026-11-25T01:51:06Z","expires":"2026-11-25T04:51:06Z""#;

    #[test]
    fn decodes_named_positional_single_and_no_arguments() {
        #[derive(Deserialize, PartialEq, Debug)]
        struct Side {
            side: String,
        }
        let named = raw(&format!(r#"{{{HEAD},"test_args":[],"test_kwargs":{{"side":"sell"}}}}"#)).into_parts().1;
        assert_eq!(named.decode::<Side>().unwrap(), Side { side: "sell".into() });
        let positional = raw(&format!(r#"{{{HEAD},"test_args":["buy", 2],"test_kwargs":{{}}}}"#)).into_parts().1;
        assert_eq!(positional.decode::<(String, u32)>().unwrap(), ("buy".into(), 2));
        let single = raw(&format!(r#"{{{HEAD},"test_args":[ "buy" ]}}"#)).into_parts().1;
        assert_eq!(single.decode::<String>().unwrap(), "buy");
        let none = raw(&format!(r#"{{{HEAD},"test_args":[ ],"test_kwargs":{{ }}}}"#)).into_parts().1;
        none.decode::<()>().unwrap();
        let both = raw(&format!(r#"{{{HEAD},"test_args":[1],"test_kwargs":{{"a":1}}}}"#)).into_parts().1;
        assert!(both.decode::<Value>().is_err());
    }

    #[test]
    fn rebuilds_the_full_execution() {
        let e = raw(&format!(r#"{{{HEAD},"test_args":[],"test_kwargs":{{"side":"sell"}}}}"#)).into_execution();
        assert_eq!(e.id, "x");
        assert_eq!(e.test_kwargs["side"], "sell");
        assert!(e.test_args.is_empty());
    }
}
