//! A test execution as the instance holds it while the test runs: arguments kept as their JSON text.

use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, ser::SerializeMap, Deserialize, Serialize, Serializer};
use serde_json::{value::RawValue, Map, Value};

use super::TestExecution;
use crate::{context::TestContext, Error, Result};

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
    /// Kept only when it is a trace id (see [`crate::context::TestContext::trace_id`]).
    #[serde(default)]
    pub(crate) trace_id: Option<String>,
    /// Started by hand (see [`TestExecution::by_hand`]).
    #[serde(default)]
    pub(crate) by_hand: bool,
    /// Kept only when it is a version (see [`super::valid_service_version`]).
    #[serde(default)]
    pub(crate) service_version: Option<String>,
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
    /// Splits into its context (with its trace id) and arguments.
    pub(crate) fn into_parts(self) -> (TestContext, RawArgs) {
        let context = TestContext::new(self.id, self.case_name, self.timestamp, self.expires);
        let context = context.with_trace_id(self.trace_id.as_deref()).by_hand(self.by_hand);
        (context.with_service_version(self.service_version.as_deref()), RawArgs::new(self.test_args, self.test_kwargs))
    }

    /// The full execution (for a report).
    pub(crate) fn into_execution(self) -> TestExecution {
        let (context, args) = self.into_parts();
        args.to_execution(&context)
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
            (false, false) => Err(serde::de::Error::custom(
                "the execution has both positional and named arguments; a case takes one or the other",
            )),
        };
        decoded.map_err(Error::Arguments)
    }

    /// The full execution with these arguments (arguments that are not an array / object become empty).
    pub(crate) fn to_execution(&self, context: &TestContext) -> TestExecution {
        let args: Vec<Value> = self.args.as_ref().and_then(|r| serde_json::from_str(r.get()).ok()).unwrap_or_default();
        let kwargs: Map<String, Value> =
            self.kwargs.as_ref().and_then(|r| serde_json::from_str(r.get()).ok()).unwrap_or_default();
        let (id, case_name) = (context.id().to_owned(), context.case_name().to_owned());
        let mut execution =
            TestExecution::from_parts(id, case_name, context.timestamp(), context.expires(), args, kwargs);
        execution.trace_id = context.trace_id().map(str::to_owned);
        execution.by_hand = context.is_by_hand();
        execution.service_version = context.service_version().map(str::to_owned);
        execution
    }
}

/// An execution written from its parts, with its arguments as the JSON text they arrived as.
pub(crate) struct ExecutionRef<'a> {
    pub(crate) id: &'a str,
    pub(crate) case_name: &'a str,
    pub(crate) timestamp: DateTime<Utc>,
    pub(crate) expires: DateTime<Utc>,
    pub(crate) args: &'a RawArgs,
    pub(crate) trace_id: Option<&'a str>,
    pub(crate) by_hand: bool,
    pub(crate) service_version: Option<&'a str>,
}

impl Serialize for ExecutionRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let extra = usize::from(self.trace_id.is_some())
            + usize::from(self.by_hand)
            + usize::from(self.service_version.is_some());
        let mut map = serializer.serialize_map(Some(7 + extra))?;
        map.serialize_entry("id", self.id)?;
        map.serialize_entry("case_name", self.case_name)?;
        map.serialize_entry("timestamp", &super::timestamp::to_json_text(&self.timestamp))?;
        map.serialize_entry("test_args", raw_or(&self.args.args, "[]", Value::is_array))?;
        map.serialize_entry("test_kwargs", raw_or(&self.args.kwargs, "{}", Value::is_object))?;
        map.serialize_entry("expires", &super::timestamp::to_json_text(&self.expires))?;
        if let Some(trace_id) = self.trace_id {
            map.serialize_entry("trace_id", trace_id)?;
        }
        if self.by_hand {
            map.serialize_entry("by_hand", &true)?;
        }
        if let Some(version) = self.service_version {
            map.serialize_entry("service_version", version)?;
        }
        map.serialize_entry("__faust", &super::report::Ns("faust.livecheck.models.TestExecution"))?;
        map.end()
    }
}

/// The raw value, or `empty` when it is absent, `null`, not of the `expected` kind or not something every reader
/// can decode (a number out of range, say): a report must be readable whatever the execution it carries.
fn raw_or<'a>(value: &'a Option<Box<RawValue>>, empty: &'static str, expected: fn(&Value) -> bool) -> &'a RawValue {
    match value {
        Some(value) if serde_json::from_str::<Value>(value.get()).is_ok_and(|v| expected(&v)) => value,
        _ => serde_json::from_str(empty).expect("a JSON literal"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> RawExecution {
        serde_json::from_str(json).unwrap()
    }

    const HEAD: &str =
        r#""id":"x","case_name":"c","timestamp":"2026-11-25T01:51:06Z","expires":"2026-11-25T04:51:06Z""#;

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
    fn arguments_that_do_not_decode_keep_json_s_error_as_the_cause() {
        let named = raw(&format!(r#"{{{HEAD},"test_args":[],"test_kwargs":{{"side":"sell"}}}}"#)).into_parts().1;
        let error = named.decode::<(String, u32)>().unwrap_err();
        assert_eq!(error.to_string(), "test arguments do not decode", "the cause is the source's to tell");
        let source = std::error::Error::source(&error).expect("the cause is kept");
        assert!(source.downcast_ref::<serde_json::Error>().is_some());
        let cause = source.to_string();
        let chain = format!("{:#}", anyhow::Error::from(error));
        assert_eq!(chain, format!("test arguments do not decode: {cause}"), "as a report says it");

        let both = raw(&format!(r#"{{{HEAD},"test_args":[1],"test_kwargs":{{"a":1}}}}"#)).into_parts().1;
        assert_eq!(
            crate::error::with_causes(&both.decode::<Value>().unwrap_err()),
            "test arguments do not decode: the execution has both positional and named arguments; a case takes one \
             or the other"
        );
    }

    #[test]
    fn writes_the_same_execution_it_was_given() {
        for json in [
            format!(r#"{{{HEAD},"test_args":[],"test_kwargs":{{"side":"sell","n":[1,2]}}}}"#),
            format!(r#"{{{HEAD},"test_args":["a"]}}"#),
            format!(r#"{{{HEAD},"test_args":null,"test_kwargs":null}}"#),
            format!(r#"{{{HEAD},"test_args":[],"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}}"#),
            format!(r#"{{{HEAD},"test_args":[],"trace_id":"not a trace id"}}"#),
            format!(r#"{{{HEAD},"test_args":[],"by_hand":true}}"#),
            format!(r#"{{{HEAD},"test_args":[],"service_version":"2.1.0"}}"#),
            format!(r#"{{{HEAD},"test_args":[],"service_version":"not a version"}}"#),
        ] {
            let (c, args) = raw(&json).into_parts();
            let written = ExecutionRef {
                id: c.id(),
                case_name: c.case_name(),
                timestamp: c.timestamp(),
                expires: c.expires(),
                args: &args,
                trace_id: c.trace_id(),
                by_hand: c.is_by_hand(),
                service_version: c.service_version(),
            };
            let text = serde_json::to_string(&written).unwrap();
            let read: TestExecution = serde_json::from_str(&text).unwrap();
            assert_eq!(read, args.to_execution(&c), "{text}");
            assert_eq!(read.trace_id.is_some(), json.contains("4bf92f"), "{text}");
            assert_eq!(read.service_version.is_some(), json.contains("2.1.0"), "{text}");
            assert!(text.contains(r#""__faust":{"ns":"faust.livecheck.models.TestExecution"}"#), "{text}");
        }
    }

    #[test]
    fn rebuilds_the_full_execution() {
        let e = raw(&format!(r#"{{{HEAD},"test_args":[],"test_kwargs":{{"side":"sell"}}}}"#)).into_execution();
        assert_eq!(e.id, "x");
        assert_eq!(e.test_kwargs["side"], "sell");
        assert!(e.test_args.is_empty());
    }
}
