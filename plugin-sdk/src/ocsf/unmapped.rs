//! `unmapped`: source fields with no OCSF home, kept as a flat string map.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// Source fields that have no OCSF attribute, as dotted keys and string values.
///
/// Amazon Security Lake stores `unmapped` as `MAP<string,string>`, so nested source objects are
/// flattened (`a.b.c`) and non-string scalars and arrays are kept as their JSON text. A JSON
/// `null` carries no data and is left out, as Security Lake does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Unmapped(pub BTreeMap<String, String>);

impl Unmapped {
    /// Whether nothing was left unmapped.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Keeps a string value under `key`.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.0.insert(key.into(), value.into());
    }

    /// Keeps a JSON value under `key`, flattening objects into `key.member` entries.
    pub fn insert_json(&mut self, key: &str, value: &Value) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (k, v) in map {
                    self.insert_json(&format!("{key}.{k}"), v);
                }
            }
            Value::Null => {}
            Value::String(s) => self.insert(key, s.as_str()),
            other => self.insert(key, other.to_string()),
        }
    }

    /// The value kept under `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_objects_flatten_and_scalars_keep_their_json_text() {
        let mut u = Unmapped::default();
        u.insert_json(
            "extra",
            &serde_json::json!({"a": {"b": 1, "c": "x"}, "d": [1, 2], "e": null, "f": {}}),
        );
        assert_eq!(u.get("extra.a.b"), Some("1"));
        assert_eq!(u.get("extra.a.c"), Some("x"));
        assert_eq!(u.get("extra.d"), Some("[1,2]"));
        assert_eq!(u.get("extra.e"), None);
        assert_eq!(u.get("extra.f"), Some("{}"));
    }
}
