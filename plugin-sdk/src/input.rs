//! Reading JSON input records field by field, so that whatever a plugin does not map is kept in
//! `unmapped` rather than dropped.

use serde_json::{Map, Value};

use crate::ocsf::Unmapped;
use crate::Reject;

/// A JSON object whose fields are taken out as they are mapped; the rest goes to `unmapped`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JsonRecord {
    fields: Map<String, Value>,
}

impl JsonRecord {
    /// Parses a record that must be a JSON object.
    pub fn parse(bytes: &[u8]) -> Result<JsonRecord, Reject> {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(fields)) => Ok(JsonRecord { fields }),
            Ok(other) => Err(Reject::new(format!(
                "record is a JSON {}, not an object",
                kind(&other)
            ))),
            Err(e) => Err(Reject::new(format!("record is not valid JSON: {e}"))),
        }
    }

    /// The record in a JSON value when it is an object; any other value is handed to `other`
    /// (e.g. to keep it in `unmapped`).
    pub fn from_value(value: Value, other: impl FnOnce(Value)) -> Option<JsonRecord> {
        match value {
            Value::Object(fields) => Some(JsonRecord { fields }),
            v => {
                other(v);
                None
            }
        }
    }

    /// Removes and returns a field; JSON `null` counts as absent.
    pub fn take(&mut self, key: &str) -> Option<Value> {
        self.fields.remove(key).filter(|v| !v.is_null())
    }

    /// Removes a field and returns it as text: strings as they are, numbers and booleans
    /// written out. An empty string counts as absent. Other shapes stay in the record.
    pub fn take_str(&mut self, key: &str) -> Option<String> {
        match self.fields.get(key)? {
            Value::String(s) if s.is_empty() => {
                self.fields.remove(key);
                None
            }
            Value::String(_) => match self.fields.remove(key) {
                Some(Value::String(s)) => Some(s),
                _ => None,
            },
            Value::Number(n) => {
                let text = n.to_string();
                self.fields.remove(key);
                Some(text)
            }
            Value::Bool(b) => {
                let text = b.to_string();
                self.fields.remove(key);
                Some(text)
            }
            Value::Null => {
                self.fields.remove(key);
                None
            }
            _ => None,
        }
    }

    /// Removes a nested object field as its own record. Other shapes stay in the record.
    pub fn take_object(&mut self, key: &str) -> Option<JsonRecord> {
        match self.fields.get(key)? {
            Value::Object(_) => match self.fields.remove(key) {
                Some(Value::Object(fields)) => Some(JsonRecord { fields }),
                _ => None,
            },
            Value::Null => {
                self.fields.remove(key);
                None
            }
            _ => None,
        }
    }

    /// Reads a field without removing it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.get(key).filter(|v| !v.is_null())
    }

    /// Reads a string field without removing it.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Value::as_str)
    }

    /// Whether nothing is left.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Moves every remaining field into `unmapped` under `prefix` (`prefix.field`, or `field`
    /// when `prefix` is empty).
    pub fn into_unmapped(self, prefix: &str, unmapped: &mut Unmapped) {
        for (k, v) in self.fields {
            let key = if prefix.is_empty() {
                k
            } else {
                format!("{prefix}.{k}")
            };
            unmapped.insert_json(&key, &v);
        }
    }
}

/// The JSON type of a value, for messages: `object`, `array`, `string`, ...
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_fields_leave_and_the_rest_is_kept() {
        let mut r = JsonRecord::parse(br#"{"a":"x","b":2,"c":{"d":true,"e":""},"n":null,"z":[1]}"#)
            .unwrap();
        assert_eq!(r.take_str("a").as_deref(), Some("x"));
        assert_eq!(r.take_str("b").as_deref(), Some("2"));
        let mut c = r.take_object("c").unwrap();
        assert_eq!(c.take_str("e"), None, "empty strings count as absent");
        assert_eq!(r.take_str("z"), None, "arrays are not text and stay");
        let mut u = Unmapped::default();
        c.into_unmapped("c", &mut u);
        r.into_unmapped("", &mut u);
        assert_eq!(u.get("c.d"), Some("true"));
        assert_eq!(u.get("z"), Some("[1]"));
        assert_eq!(u.get("n"), None, "nulls carry no data");
    }

    #[test]
    fn non_objects_are_rejected_with_what_they_are() {
        assert_eq!(
            JsonRecord::parse(b"[1]").unwrap_err().reason,
            "record is a JSON array, not an object"
        );
        assert!(JsonRecord::parse(b"{\"a\":")
            .unwrap_err()
            .reason
            .starts_with("record is not valid JSON"));
    }
}
