//! Writing OCSF records as JSON: the generated types write themselves straight into the output
//! buffer, with their attribute names as fixed text and no serialiser in between.
//!
//! serde_json escapes every key and walks a generic serialiser per value; an OCSF record is
//! mostly keys (a VPC flow record is ~1 kB of JSON for ~20 values), so writing the names as they
//! are and copying clean strings in bulk is where a plugin spent much of its time.

use super::{Json, Unmapped};

/// A value that writes itself as JSON.
pub trait WriteJson {
    /// Appends the value's JSON text to `out`.
    fn write_json(&self, out: &mut Vec<u8>);
}

/// Writes the members of one JSON object: `{`, then `"key":value` pairs with commas, then `}`.
pub struct JsonObject<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> JsonObject<'a> {
    /// Opens an object.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        JsonObject { out, empty: true }
    }

    /// Writes `"key":` after a comma if needed. `key` is an OCSF attribute name (`[a-z0-9_]`),
    /// which needs no escaping.
    fn key(&mut self, key: &str) {
        debug_assert!(key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    /// Writes one member.
    pub fn entry<V: WriteJson + ?Sized>(&mut self, key: &str, value: &V) {
        self.key(key);
        value.write_json(self.out);
    }

    /// Writes one string member made of `parts` one after the other, e.g. a `type_name`.
    pub fn entry_joined(&mut self, key: &str, parts: &[&str]) {
        self.key(key);
        self.out.push(b'"');
        for part in parts {
            escape_into(part, self.out);
        }
        self.out.push(b'"');
    }

    /// Closes the object.
    pub fn end(self) {
        self.out.push(b'}');
    }
}

impl WriteJson for str {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'"');
        escape_into(self, out);
        out.push(b'"');
    }
}

impl WriteJson for String {
    fn write_json(&self, out: &mut Vec<u8>) {
        self.as_str().write_json(out);
    }
}

macro_rules! write_integer {
    ($($t:ty),*) => {$(
        impl WriteJson for $t {
            fn write_json(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(itoa::Buffer::new().format(*self).as_bytes());
            }
        }
    )*};
}
write_integer!(i32, i64);

/// Rare in OCSF; written as serde_json writes them (`null` for NaN and infinities).
impl WriteJson for f64 {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_value(self, out);
    }
}

impl WriteJson for bool {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(if *self { b"true" } else { b"false" });
    }
}

impl<T: WriteJson> WriteJson for Vec<T> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        for (i, item) in self.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            item.write_json(out);
        }
        out.push(b']');
    }
}

impl<T: WriteJson + ?Sized> WriteJson for Box<T> {
    fn write_json(&self, out: &mut Vec<u8>) {
        (**self).write_json(out);
    }
}

impl WriteJson for Json {
    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            // One line of valid JSON, as `Json::raw` keeps it.
            Json::Raw(raw) => out.extend_from_slice(raw.get().as_bytes()),
            Json::Value(value) => write_value(value, out),
        }
    }
}

/// A free-form object (`object` attributes without an OCSF object type).
impl WriteJson for serde_json::Map<String, serde_json::Value> {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_value(self, out);
    }
}

/// Writes a value with serde_json, which cannot fail into a Vec for these: map keys are strings
/// and a non-finite float is written as `null`.
fn write_value<V: serde::Serialize + ?Sized>(value: &V, out: &mut Vec<u8>) {
    serde_json::to_writer(out, value).unwrap_or_default();
}

impl WriteJson for Unmapped {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (key, value)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            key.write_json(out);
            out.push(b':');
            value.write_json(out);
        }
        out.push(b'}');
    }
}

/// Appends `text` with JSON string escapes (as serde_json writes them), copying runs that need
/// none in one piece.
fn escape_into(text: &str, out: &mut Vec<u8>) {
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Eight bytes at a time while none of them needs an escape.
        if i + 8 <= bytes.len() {
            let word = u64::from_le_bytes(bytes[i..i + 8].try_into().expect("eight bytes"));
            if !needs_escape(word) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
                i += 1;
                start = i;
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        i += 1;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Whether any byte of `word` is `"`, `\` or a control character below 0x20.
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A zero byte in `x` sets its high bit in `has_zero(x)` (exact for the lowest such byte,
    // and never for a word without one).
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let quote = has_zero(word ^ (ONES * u64::from(b'"')));
    let backslash = has_zero(word ^ (ONES * u64::from(b'\\')));
    // Bytes below 0x20: subtracting 0x20 borrows into the high bit, for bytes under 0x80.
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    (quote | backslash | control) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json<V: WriteJson + ?Sized>(value: &V) -> String {
        let mut out = Vec::new();
        value.write_json(&mut out);
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_escapes_them() {
        let mut samples: Vec<String> = (0u8..=0x7f).map(|b| char::from(b).to_string()).collect();
        samples.extend(
            [
                "",
                "plain ascii text longer than eight bytes",
                "quote \" in the middle of a long run of text",
                "back\\slash",
                "tab\there\nnewline\r\u{8}\u{c}\u{1}\u{1f}",
                "ünïcödé ✓ 𝄞 and \u{7f} delete",
                "12345678\"12345678\\12345678\u{0}",
            ]
            .map(str::to_string),
        );
        for s in samples {
            assert_eq!(
                json(s.as_str()),
                serde_json::to_string(&s).unwrap(),
                "{s:?}"
            );
        }
    }

    #[test]
    fn the_word_check_finds_every_byte_that_needs_escaping_in_every_position() {
        for special in (0u8..0x20).chain([b'"', b'\\']) {
            for position in 0..8 {
                let mut word = *b"abcdefgh";
                word[position] = special;
                assert!(
                    needs_escape(u64::from_le_bytes(word)),
                    "{special:#x} at {position}"
                );
            }
        }
        for clean in (0x20u8..=0xff).filter(|b| *b != b'"' && *b != b'\\') {
            assert!(!needs_escape(u64::from_le_bytes([clean; 8])), "{clean:#x}");
        }
    }

    #[test]
    fn values_and_objects_match_serde_json() {
        assert_eq!(json(&i32::MIN), i32::MIN.to_string());
        assert_eq!(json(&i64::MAX), i64::MAX.to_string());
        for f in [0.0, -1.5, 1e300, 0.1 + 0.2, f64::NAN, f64::INFINITY] {
            assert_eq!(json(&f), serde_json::to_string(&f).unwrap(), "{f}");
        }
        assert_eq!(json(&vec![true, false]), "[true,false]");
        let mut unmapped = Unmapped::default();
        unmapped.insert("b\"", "2");
        unmapped.insert("a", "x\ny");
        assert_eq!(json(&unmapped), serde_json::to_string(&unmapped.0).unwrap());
        let mut out = Vec::new();
        let mut o = JsonObject::new(&mut out);
        o.entry("n", &1i32);
        o.entry_joined("type_name", &["API Activity", ": ", "Read \"x\""]);
        o.entry("list", &vec!["a".to_string()]);
        o.end();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"n":1,"type_name":"API Activity: Read \"x\"","list":["a"]}"#
        );
        assert_eq!(json(&JsonEmpty), "{}");
    }

    struct JsonEmpty;

    impl WriteJson for JsonEmpty {
        fn write_json(&self, out: &mut Vec<u8>) {
            JsonObject::new(out).end();
        }
    }
}
