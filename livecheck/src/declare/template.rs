//! Templates of fake requests: `{{args.side}}` (a selector on the fake test's arguments, `{{args}}` all of them)
//! and `{{test.id}}` (the id of the test the request starts, when it starts one). In a JSON body, a string that is
//! exactly one placeholder becomes the selected JSON value; elsewhere the value is written as text (a string
//! without its quotes).

use serde_json::Value;

use super::selector::Selector;

/// A piece of a template.
#[derive(Clone, Debug)]
enum Piece {
    Text(String),
    Arg(Selector),
    TestId,
}

/// A parsed template.
#[derive(Clone, Debug)]
pub(crate) struct Template {
    pieces: Vec<Piece>,
}

/// What a template is filled with.
pub(crate) struct Fill<'a> {
    pub(crate) args: &'a Value,
    pub(crate) test_id: Option<&'a str>,
}

impl Template {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| format!("template `{text}`: `{{{{` is not closed by `}}}}`"))?;
            let name = after[..close].trim();
            let piece = if name == "test.id" {
                Piece::TestId
            } else if name == "args" {
                Piece::Arg(Selector::parse("$")?)
            } else if let Some(path) = name.strip_prefix("args") {
                Piece::Arg(Selector::parse(&format!("${path}"))?)
            } else {
                return Err(format!(
                    "template `{text}`: `{{{{{name}}}}}` is neither `{{{{args…}}}}` nor `{{{{test.id}}}}`"
                ));
            };
            pieces.push(piece);
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Template { pieces })
    }

    /// Whether it uses `{{test.id}}`.
    pub(crate) fn uses_test_id(&self) -> bool {
        self.pieces.iter().any(|piece| matches!(piece, Piece::TestId))
    }

    /// The text, filled.
    pub(crate) fn render(&self, fill: &Fill<'_>) -> String {
        self.pieces
            .iter()
            .map(|piece| match piece {
                Piece::Text(text) => text.clone(),
                Piece::TestId => fill.test_id.unwrap_or_default().to_owned(),
                Piece::Arg(selector) => match selector.select(fill.args) {
                    Some(Value::String(text)) => text.clone(),
                    Some(value) => value.to_string(),
                    None => String::new(),
                },
            })
            .collect()
    }

    /// The JSON value: the selected value itself when the template is one placeholder, else the text.
    pub(crate) fn render_json(&self, fill: &Fill<'_>) -> Value {
        match self.pieces.as_slice() {
            [Piece::Arg(selector)] => selector.select(fill.args).cloned().unwrap_or(Value::Null),
            _ => Value::String(self.render(fill)),
        }
    }
}

/// A JSON body whose strings are templates.
#[derive(Clone, Debug)]
pub(crate) enum JsonTemplate {
    Value(Value),
    Text(Template),
    Array(Vec<JsonTemplate>),
    Object(Vec<(String, JsonTemplate)>),
}

impl JsonTemplate {
    pub(crate) fn parse(value: Value) -> Result<Self, String> {
        Ok(match value {
            Value::String(text) => JsonTemplate::Text(Template::parse(&text)?),
            Value::Array(items) => {
                JsonTemplate::Array(items.into_iter().map(JsonTemplate::parse).collect::<Result<_, _>>()?)
            }
            Value::Object(fields) => JsonTemplate::Object(
                fields.into_iter().map(|(k, v)| Ok((k, JsonTemplate::parse(v)?))).collect::<Result<_, String>>()?,
            ),
            other => JsonTemplate::Value(other),
        })
    }

    pub(crate) fn uses_test_id(&self) -> bool {
        match self {
            JsonTemplate::Value(_) => false,
            JsonTemplate::Text(template) => template.uses_test_id(),
            JsonTemplate::Array(items) => items.iter().any(JsonTemplate::uses_test_id),
            JsonTemplate::Object(fields) => fields.iter().any(|(_, v)| v.uses_test_id()),
        }
    }

    pub(crate) fn render(&self, fill: &Fill<'_>) -> Value {
        match self {
            JsonTemplate::Value(value) => value.clone(),
            JsonTemplate::Text(template) => template.render_json(fill),
            JsonTemplate::Array(items) => Value::Array(items.iter().map(|item| item.render(fill)).collect()),
            JsonTemplate::Object(fields) => {
                Value::Object(fields.iter().map(|(k, v)| (k.clone(), v.render(fill))).collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn placeholders_are_filled_from_the_arguments_and_the_test() {
        let args = json!({"side": "sell", "qty": 3, "items": [{"sku": "A"}]});
        let fill = Fill { args: &args, test_id: Some("t-1") };
        let url = Template::parse("http://h/order/init/{{args.side}}/?fake=1&t={{ test.id }}").unwrap();
        assert_eq!(url.render(&fill), "http://h/order/init/sell/?fake=1&t=t-1");
        let body = JsonTemplate::parse(
            json!({"qty": "{{args.qty}}", "sku": "{{args.items[0].sku}}", "note": "q={{args.qty}}", "n": 1}),
        )
        .unwrap();
        assert_eq!(body.render(&fill), json!({"qty": 3, "sku": "A", "note": "q=3", "n": 1}));
        assert!(!body.uses_test_id() && url.uses_test_id());
    }

    #[test]
    fn bad_templates_are_refused() {
        for bad in ["{{args.side", "{{nope}}", "{{args..x}}", "{{argsx}}"] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }
}
