//! `unmapped`: source fields with no OCSF home, kept as a flat string map.

/// Source fields that have no OCSF attribute, as dotted keys and string values.
///
/// Amazon Security Lake stores `unmapped` as `MAP<string,string>`, so nested source objects are
/// flattened (`a.b.c`) and non-string scalars and arrays are kept as their JSON text. A JSON
/// `null` carries no data and is left out, as Security Lake does. `input::keep_raw` and
/// `input::JsonRecord::into_unmapped` fill it that way.
///
/// The entries are a vector kept in key order: a record has a few dozen at most, which a binary
/// search and a short shift place without the node allocations of a tree map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unmapped {
    entries: Vec<(String, String)>,
}

impl Unmapped {
    /// Whether nothing was left unmapped.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keeps a string value under `key`, replacing what `key` held.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        match self.search(&key) {
            Ok(i) => self.entries[i].1 = value.into(),
            Err(i) => self.entries.insert(i, (key, value.into())),
        }
    }

    /// The value kept under `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        let i = self.search(key).ok()?;
        Some(&self.entries[i].1)
    }

    /// The entries, in key order.
    pub fn entries(&self) -> &[(String, String)] {
        &self.entries
    }

    fn search(&self, key: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_stay_in_key_order_and_a_key_keeps_its_last_value() {
        let mut u = Unmapped::default();
        u.insert("b", "1");
        u.insert("a", "2");
        u.insert("b", "3");
        u.insert("c", "4");
        assert_eq!(u.get("b"), Some("3"));
        assert_eq!(u.get("z"), None);
        let entries: Vec<(&str, &str)> = u
            .entries()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(entries, [("a", "2"), ("b", "3"), ("c", "4")]);
        let mut same = Unmapped::default();
        for (k, v) in [("c", "4"), ("b", "3"), ("a", "2")] {
            same.insert(k, v);
        }
        assert_eq!(u, same);
        assert!(Unmapped::default().is_empty() && !u.is_empty());
    }
}
