//! `json_t` attribute values: raw JSON passed through untouched, or a parsed value.

use serde_json::Value;

use crate::input::{compact, JsonRecord, Raw};

/// The value of an OCSF `json_t` attribute (e.g. `api.request.data`).
///
/// `Json::raw` keeps a member of the input as its original text: it is never parsed into a value
/// tree nor written out again piece by piece, which is most of the cost of carrying large request
/// and response documents. `Json::from(value)` holds a parsed value.
#[derive(Debug, Clone)]
pub enum Json {
    /// Original JSON text, on one line.
    Raw(RawJson),
    /// A parsed value.
    Value(Value),
}

impl Json {
    /// Raw JSON text from the input. Text spread over several lines loses its whitespace, so
    /// that every emitted record stays on one line.
    pub fn raw(raw: Raw<'_>) -> Json {
        let text = raw.get();
        Json::Raw(RawJson(
            if memchr::memchr2(b'\n', b'\r', text.as_bytes()).is_some() {
                compact(text).into()
            } else {
                text.into()
            },
        ))
    }

    /// The string member `key` of an object value.
    pub fn str_member(&self, key: &str) -> Option<String> {
        match self {
            Json::Raw(raw) => JsonRecord::object(raw.get())?.get_str(key),
            Json::Value(v) => v.get(key)?.as_str().map(str::to_string),
        }
    }

    /// The value as a parsed tree.
    pub fn to_value(&self) -> Value {
        match self {
            Json::Raw(raw) => serde_json::from_str(raw.get()).unwrap_or(Value::Null),
            Json::Value(v) => v.clone(),
        }
    }
}

/// JSON text as the input held it: only [`Json::raw`] makes one, from a value the input's scan
/// found valid.
#[derive(Debug, Clone)]
pub struct RawJson(Box<str>);

impl RawJson {
    /// The JSON text.
    pub fn get(&self) -> &str {
        &self.0
    }
}

impl From<Value> for Json {
    fn from(value: Value) -> Self {
        Json::Value(value)
    }
}

impl PartialEq for Json {
    fn eq(&self, other: &Self) -> bool {
        self.to_value() == other.to_value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocsf::WriteRow;
    use crate::row::RowReader;

    fn text(json: &Json) -> String {
        let mut out = Vec::new();
        json.write_row(&mut out);
        let mut r = RowReader::new(&out);
        r.tag().unwrap();
        r.text().unwrap().to_string()
    }

    #[test]
    fn raw_text_is_written_as_it_came_and_multi_line_text_loses_its_whitespace() {
        let member = |text: &'static str| {
            JsonRecord::parse(text.as_bytes())
                .unwrap()
                .take("m")
                .unwrap()
        };
        let json = Json::raw(member(r#"{"m": {"b": 1, "a": "x"}}"#));
        assert_eq!(text(&json), r#"{"b": 1, "a": "x"}"#);
        assert_eq!(json.str_member("a").as_deref(), Some("x"));
        let multi = Json::raw(member("{\"m\": {\n \"a\": [1,\n 2], \"s\": \"x y\"\n}}"));
        assert_eq!(text(&multi), r#"{"a":[1,2],"s":"x y"}"#);
        assert_eq!(json, Json::from(serde_json::json!({"a": "x", "b": 1})));
    }
}
