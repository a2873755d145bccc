//! `unmapped`: source fields with no OCSF home, kept as a flat string map.

use std::collections::BTreeMap;

/// Source fields that have no OCSF attribute, as dotted keys and string values.
///
/// Amazon Security Lake stores `unmapped` as `MAP<string,string>`, so nested source objects are
/// flattened (`a.b.c`) and non-string scalars and arrays are kept as their JSON text. A JSON
/// `null` carries no data and is left out, as Security Lake does. `input::keep_raw` and
/// `input::JsonRecord::into_unmapped` fill it that way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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

    /// The value kept under `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}
