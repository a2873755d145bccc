//! Reading JSON input records field by field, so that whatever a plugin does not map is kept in
//! `unmapped` rather than dropped.
//!
//! A [`JsonRecord`] borrows from the input: one scan cuts the record and every object and array in
//! it into their parts ([`Raw`] values), without decoding or copying strings. Taking a nested
//! object out costs nothing more, and members passed on whole (e.g. into a `json_t` attribute, see
//! [`crate::ocsf::Json`]) keep their original text.

mod scan;

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};

use crate::ocsf::Unmapped;
use crate::Reject;

use scan::{Members, Shape};
pub use scan::{Raw, SyntaxError};

/// A JSON object whose members are taken out as they are mapped; the rest goes to `unmapped`.
#[derive(Debug, Clone, Default)]
pub struct JsonRecord<'a> {
    members: Members<'a>,
}

impl<'a> JsonRecord<'a> {
    /// Parses a record that must be a JSON object.
    pub fn parse(bytes: &'a [u8]) -> Result<JsonRecord<'a>, Reject> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| Reject::new(format!("record is not UTF-8: {e}")))?;
        match text.trim_start().as_bytes().first() {
            Some(b'{') => {}
            Some(_) => {
                return Err(Reject::new(format!(
                    "record is a JSON {}, not an object",
                    kind_of_text(text)
                )))
            }
            None => return Err(Reject::new("record is empty")),
        }
        let value =
            scan::parse(text).map_err(|e| Reject::new(format!("record is not valid JSON: {e}")))?;
        Ok(Self::from_raw(value, |_| {}).expect("the text starts an object"))
    }

    /// The record in a raw JSON value when it is an object; any other value is handed to
    /// `other` (e.g. to keep it in `unmapped`).
    pub fn from_raw(raw: Raw<'a>, other: impl FnOnce(Raw<'a>)) -> Option<JsonRecord<'a>> {
        match raw.shape {
            Shape::Object(members) => Some(JsonRecord { members }),
            _ => {
                other(raw);
                None
            }
        }
    }

    /// An object from JSON text; `None` when it is not one (no message is built).
    pub(crate) fn object(text: &'a str) -> Option<JsonRecord<'a>> {
        Self::from_raw(scan::parse(text).ok()?, |_| {})
    }

    fn position(&self, key: &str) -> Option<usize> {
        // Names of the same length mostly differ in their first or last byte: checking those
        // first spares a `memcmp` call per member, which costs much more in a component.
        let (first, last) = (key.as_bytes().first(), key.as_bytes().last());
        self.members.iter().position(|(k, _)| {
            k.len() == key.len()
                && k.as_bytes().first() == first
                && k.as_bytes().last() == last
                && k == key
        })
    }

    fn get(&self, key: &str) -> Option<&Raw<'a>> {
        Some(&self.members[self.position(key)?].1)
    }

    /// Removes and returns a member; JSON `null` counts as absent.
    pub fn take(&mut self, key: &str) -> Option<Raw<'a>> {
        let (_, raw) = self.members.swap_remove(self.position(key)?);
        (!raw.is_null()).then_some(raw)
    }

    /// Removes a member and returns it as text: strings as they are, numbers and booleans written
    /// out. An empty string or `null` counts as absent. Objects and arrays stay in the record.
    pub fn take_str(&mut self, key: &str) -> Option<String> {
        let i = self.position(key)?;
        let raw = &self.members[i].1;
        let text = match raw.shape {
            Shape::Object(_) | Shape::Array(_) => return None,
            Shape::String { .. } => raw.as_str().map(Cow::into_owned).filter(|s| !s.is_empty()),
            Shape::Null => None,
            Shape::Number | Shape::Bool => Some(raw.get().to_string()),
        };
        self.members.swap_remove(i);
        text
    }

    /// Removes a nested object member as its own record. Other shapes stay in the record;
    /// `null` is removed.
    pub fn take_object(&mut self, key: &str) -> Option<JsonRecord<'a>> {
        let i = self.position(key)?;
        match self.members[i].1.shape {
            Shape::Object(_) => Self::from_raw(self.members.swap_remove(i).1, |_| {}),
            Shape::Null => {
                self.members.swap_remove(i);
                None
            }
            _ => None,
        }
    }

    /// Removes an array member and returns its elements; other shapes stay in the record.
    pub fn take_array(&mut self, key: &str) -> Option<Vec<Raw<'a>>> {
        let i = self.position(key)?;
        let Shape::Array(items) = &mut self.members[i].1.shape else {
            return None;
        };
        let items = std::mem::take(items);
        self.members.swap_remove(i);
        Some(items)
    }

    /// A string member, without removing it.
    pub fn get_str(&self, key: &str) -> Option<String> {
        self.get(key)?.as_str().map(Cow::into_owned)
    }

    /// A number member, without removing it.
    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.get(key)?.as_f64()
    }

    /// Whether nothing is left.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Moves every remaining member into `unmapped` under `prefix` (`prefix.member`, or
    /// `member` when `prefix` is empty), flattening nested objects.
    pub fn into_unmapped(self, prefix: &str, unmapped: &mut Unmapped) {
        for (k, raw) in self.members {
            let key = if prefix.is_empty() {
                k.into_owned()
            } else {
                let mut key = String::with_capacity(prefix.len() + 1 + k.len());
                key.push_str(prefix);
                key.push('.');
                key.push_str(&k);
                key
            };
            keep(key, raw, unmapped);
        }
    }
}

/// Keeps one raw value in `unmapped` under `key`: objects flattened into `key.member` entries,
/// strings as they are, arrays, numbers and booleans as their compact JSON text; `null` is left
/// out.
pub fn keep_raw(key: &str, raw: Raw<'_>, unmapped: &mut Unmapped) {
    keep(key.to_string(), raw, unmapped);
}

fn keep(key: String, raw: Raw<'_>, unmapped: &mut Unmapped) {
    match raw.shape {
        Shape::Object(members) if !members.is_empty() => {
            JsonRecord { members }.into_unmapped(&key, unmapped)
        }
        Shape::Object(_) => unmapped.insert(key, "{}"),
        Shape::String { .. } => {
            if let Some(text) = raw.as_str() {
                unmapped.insert(key, text.into_owned());
            }
        }
        Shape::Null => {}
        // Arrays, numbers and booleans keep their JSON text, without the input's whitespace.
        Shape::Array(_) | Shape::Number | Shape::Bool => unmapped.insert(key, compact(raw.get())),
    }
}

/// JSON text without whitespace outside strings. The input is valid JSON.
pub(crate) fn compact(text: &str) -> String {
    let bytes = text.as_bytes();
    if memchr::memchr3(b' ', b'\n', b'\r', bytes).is_none()
        && memchr::memchr(b'\t', bytes).is_none()
    {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if !c.is_ascii_whitespace() {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

/// A JSON string (an object key or a value), borrowed from the input unless it has escapes.
/// serde's own `Cow<str>` always copies, one allocation per key.
pub struct Key<'a>(pub Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;

        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }

        deserializer.deserialize_str(KeyVisitor)
    }
}

/// The JSON type of a document, from its first byte, for messages.
fn kind_of_text(text: &str) -> &'static str {
    match text.trim_start().as_bytes().first() {
        Some(b'[') => "array",
        Some(b'"') => "string",
        Some(b't' | b'f') => "boolean",
        Some(b'n') => "null",
        Some(b'{') => "object",
        _ => "number",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_fields_leave_and_the_rest_is_kept() {
        let input =
            br#"{"a":"x","b":2,"c":{"d":true,"e":""},"n":null,"z":[1, 2],"esc\"aped":"q\u00e9"}"#;
        let mut r = JsonRecord::parse(input).unwrap();
        assert_eq!(r.take_str("a").as_deref(), Some("x"));
        assert_eq!(r.take_str("b").as_deref(), Some("2"));
        let mut c = r.take_object("c").unwrap();
        assert_eq!(c.take_str("e"), None, "empty strings count as absent");
        assert_eq!(r.take_str("z"), None, "arrays are not text and stay");
        let mut u = Unmapped::default();
        c.into_unmapped("c", &mut u);
        r.into_unmapped("", &mut u);
        assert_eq!(u.get("c.d"), Some("true"));
        assert_eq!(u.get("z"), Some("[1,2]"));
        assert_eq!(u.get("n"), None, "nulls carry no data");
        assert_eq!(u.get("esc\"aped"), Some("qé"));
    }

    #[test]
    fn nested_objects_flatten_and_scalars_keep_their_json_text() {
        let mut u = Unmapped::default();
        let value = serde_json::json!({"a": {"b": 1, "c": "x"}, "d": [1, 2], "e": null, "f": {}});
        keep_raw("extra", scan::parse(&value.to_string()).unwrap(), &mut u);
        assert_eq!(u.get("extra.a.b"), Some("1"));
        assert_eq!(u.get("extra.a.c"), Some("x"));
        assert_eq!(u.get("extra.d"), Some("[1,2]"));
        assert_eq!(u.get("extra.e"), None);
        assert_eq!(u.get("extra.f"), Some("{}"));
    }

    #[test]
    fn kept_arrays_lose_only_the_whitespace_outside_strings() {
        let mut u = Unmapped::default();
        let raw = scan::parse("[ {\"b\": \"x y\\\" z\", \"a\": 1} ,\n 2 ]").unwrap();
        keep_raw("k", raw, &mut u);
        assert_eq!(
            u.get("k"),
            Some(r#"[{"b":"x y\" z","a":1}]"#.replace("}]", "},2]").as_str())
        );
    }

    #[test]
    fn arrays_and_raw_members() {
        let mut r = JsonRecord::parse(br#"{"list":[{"k":"v"},3],"obj":{"x":1}}"#).unwrap();
        let items = r.take_array("list").unwrap();
        assert_eq!(items.len(), 2);
        let mut kept = Vec::new();
        let mut items = items.into_iter();
        let first = JsonRecord::from_raw(items.next().unwrap(), |_| unreachable!()).unwrap();
        assert!(JsonRecord::from_raw(items.next().unwrap(), |raw| kept
            .push(raw.get().to_string()))
        .is_none());
        assert_eq!(
            (first.get_str("k").as_deref(), kept),
            (Some("v"), vec!["3".to_string()])
        );
        assert_eq!(r.take("obj").map(|raw| raw.get()), Some(r#"{"x":1}"#));
    }

    #[test]
    fn non_objects_are_rejected_with_what_they_are() {
        for (input, reason) in [
            (&b"[1]"[..], "record is a JSON array, not an object"),
            (b" \"s\"", "record is a JSON string, not an object"),
            (
                b"{\"a\":",
                "record is not valid JSON: unexpected end of the text at byte 5",
            ),
            (b" \n", "record is empty"),
        ] {
            assert_eq!(JsonRecord::parse(input).unwrap_err().reason, reason);
        }
    }
}
