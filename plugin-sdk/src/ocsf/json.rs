//! `json_t` attribute values: raw JSON passed through untouched, or a parsed value.

use serde_json::value::RawValue;
use serde_json::Value;

use crate::input::JsonRecord;

/// The value of an OCSF `json_t` attribute (e.g. `api.request.data`).
///
/// `Json::raw` keeps a member of the input as its original text: it is never parsed into a value
/// tree nor written out again piece by piece, which is most of the cost of carrying large request
/// and response documents. `Json::from(value)` holds a parsed value.
#[derive(Debug, Clone)]
pub enum Json {
    /// Original JSON text, on one line.
    Raw(Box<RawValue>),
    /// A parsed value.
    Value(Value),
}

impl Json {
    /// Raw JSON text from the input. Text spread over several lines is parsed instead, so that
    /// every emitted record stays on one line.
    pub fn raw(raw: &RawValue) -> Json {
        let text = raw.get();
        if text.contains(['\n', '\r']) {
            Json::Value(serde_json::from_str(text).unwrap_or(Value::Null))
        } else {
            Json::Raw(raw.to_owned())
        }
    }

    /// The string member `key` of an object value.
    pub fn str_member(&self, key: &str) -> Option<String> {
        match self {
            Json::Raw(raw) => JsonRecord::from_raw(raw, |_| {})?.get_str(key),
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
    fn raw_text_is_written_as_it_came_and_multi_line_text_is_reparsed() {
        let one_line: Box<RawValue> = serde_json::from_str(r#"{"b": 1, "a": "x"}"#).unwrap();
        let json = Json::raw(&one_line);
        assert_eq!(text(&json), r#"{"b": 1, "a": "x"}"#);
        assert_eq!(json.str_member("a").as_deref(), Some("x"));
        let multi: Box<RawValue> = serde_json::from_str("{\n \"a\": [1,\n 2]\n}").unwrap();
        assert_eq!(text(&Json::raw(&multi)), r#"{"a":[1,2]}"#);
        assert_eq!(
            Json::raw(&one_line),
            Json::from(serde_json::json!({"a": "x", "b": 1}))
        );
    }
}
