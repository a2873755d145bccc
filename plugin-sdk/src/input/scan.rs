//! One pass over a JSON text that cuts every object and array into its parts, borrowing from the
//! text: strings are located, not decoded, and numbers are checked, not converted, until a plugin
//! asks for them. Taking a nested object out of a record then costs nothing, where a parser that
//! keeps members as raw text has to scan each nested object again.

use std::borrow::Cow;
use std::fmt;

/// Objects and arrays nested deeper than this are refused (serde_json's limit too), so that a
/// record cannot exhaust the plugin's stack.
const MAX_DEPTH: usize = 128;

/// An object's members, in input order.
pub(crate) type Members<'a> = Vec<(Cow<'a, str>, Raw<'a>)>;

/// A JSON value of the input: its exact text, and for objects and arrays, their parts.
#[derive(Debug, Clone, PartialEq)]
pub struct Raw<'a> {
    text: &'a str,
    pub(crate) shape: Shape<'a>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Shape<'a> {
    Object(Members<'a>),
    Array(Vec<Raw<'a>>),
    /// A string; `escaped` when its text holds escapes, which must be decoded.
    String {
        escaped: bool,
    },
    Number,
    Bool,
    Null,
}

impl<'a> Raw<'a> {
    /// The value's JSON text, as it is in the input.
    pub fn get(&self) -> &'a str {
        self.text
    }

    /// Whether the value is JSON `null`.
    pub fn is_null(&self) -> bool {
        matches!(self.shape, Shape::Null)
    }

    /// A string value's text, borrowed unless it has escapes; `None` for any other JSON type.
    pub fn as_str(&self) -> Option<Cow<'a, str>> {
        match self.shape {
            Shape::String { escaped: false } => {
                Some(Cow::Borrowed(&self.text[1..self.text.len() - 1]))
            }
            // Rare: decoding is left to serde_json, which also refuses lone surrogates.
            Shape::String { escaped: true } => serde_json::from_str::<String>(self.text)
                .map(Cow::Owned)
                .ok(),
            _ => None,
        }
    }

    /// A number value, as `f64`; `None` for any other JSON type.
    pub fn as_f64(&self) -> Option<f64> {
        match self.shape {
            Shape::Number => self.text.parse().ok(),
            _ => None,
        }
    }
}

/// Why a text is not JSON: what was found, and where (a byte offset into the text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub what: &'static str,
    pub at: usize,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.what, self.at)
    }
}

/// The JSON value that makes up `text`, with nothing but whitespace around it.
pub(crate) fn parse(text: &str) -> Result<Raw<'_>, SyntaxError> {
    let mut scan = Scan {
        text,
        bytes: text.as_bytes(),
        at: 0,
        depth: 0,
    };
    let value = scan.value()?;
    scan.whitespace();
    if scan.at < text.len() {
        return Err(scan.error("unexpected text after the value"));
    }
    Ok(value)
}

struct Scan<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    depth: usize,
}

impl<'a> Scan<'a> {
    fn error(&self, what: &'static str) -> SyntaxError {
        let what = if self.at >= self.bytes.len() {
            "unexpected end of the text"
        } else {
            what
        };
        SyntaxError { what, at: self.at }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.at += 1;
        }
    }

    /// Consumes `byte` (after whitespace) or fails with `what`.
    fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), SyntaxError> {
        self.whitespace();
        if self.peek() != Some(byte) {
            return Err(self.error(what));
        }
        self.at += 1;
        Ok(())
    }

    fn value(&mut self) -> Result<Raw<'a>, SyntaxError> {
        self.whitespace();
        let start = self.at;
        let shape = match self.peek() {
            Some(b'{') => Shape::Object(self.object()?),
            Some(b'[') => Shape::Array(self.array()?),
            Some(b'"') => Shape::String {
                escaped: self.string()?,
            },
            Some(b't') => self.literal("true", Shape::Bool)?,
            Some(b'f') => self.literal("false", Shape::Bool)?,
            Some(b'n') => self.literal("null", Shape::Null)?,
            Some(b'-' | b'0'..=b'9') => {
                self.number()?;
                Shape::Number
            }
            _ => return Err(self.error("expected a JSON value")),
        };
        Ok(Raw {
            text: &self.text[start..self.at],
            shape,
        })
    }

    /// Enters an object or array at its opening bracket.
    fn open(&mut self, close: u8) -> Result<bool, SyntaxError> {
        if self.depth == MAX_DEPTH {
            return Err(self.error("objects and arrays nested more than 128 deep"));
        }
        self.depth += 1;
        self.at += 1;
        self.whitespace();
        let empty = self.peek() == Some(close);
        if empty {
            self.close();
        }
        Ok(empty)
    }

    fn close(&mut self) {
        self.depth -= 1;
        self.at += 1;
    }

    /// After a member or item: `true` at the closing bracket, `false` after a comma.
    fn next_or_close(&mut self, close: u8, what: &'static str) -> Result<bool, SyntaxError> {
        self.whitespace();
        match self.peek() {
            Some(b',') => {
                self.at += 1;
                Ok(false)
            }
            Some(b) if b == close => {
                self.close();
                Ok(true)
            }
            _ => Err(self.error(what)),
        }
    }

    fn object(&mut self) -> Result<Members<'a>, SyntaxError> {
        if self.open(b'}')? {
            return Ok(Vec::new());
        }
        // Log records' objects mostly have a few members to a dozen: room for eight spares
        // the usual first two regrowths (each a copy); sixteen measured slower.
        let mut members = Vec::with_capacity(8);
        loop {
            self.whitespace();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a string as the member's name"));
            }
            let key = self.key()?;
            self.expect(b':', "expected `:` after the member's name")?;
            members.push((key, self.value()?));
            if self.next_or_close(b'}', "expected `,` or `}` after an object member")? {
                return Ok(members);
            }
        }
    }

    fn array(&mut self) -> Result<Vec<Raw<'a>>, SyntaxError> {
        let mut items = Vec::new();
        if self.open(b']')? {
            return Ok(items);
        }
        loop {
            items.push(self.value()?);
            if self.next_or_close(b']', "expected `,` or `]` after an array item")? {
                return Ok(items);
            }
        }
    }

    /// A member's name, decoded.
    fn key(&mut self) -> Result<Cow<'a, str>, SyntaxError> {
        let start = self.at;
        if !self.string()? {
            return Ok(Cow::Borrowed(&self.text[start + 1..self.at - 1]));
        }
        serde_json::from_str::<String>(&self.text[start..self.at])
            .map(Cow::Owned)
            .map_err(|_| SyntaxError {
                what: "a member's name that escapes a lone surrogate",
                at: start,
            })
    }

    /// A string from its opening quote; whether it holds escapes.
    fn string(&mut self) -> Result<bool, SyntaxError> {
        let start = self.at;
        self.at += 1;
        let mut escaped = false;
        loop {
            self.skip_plain();
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(escaped);
                }
                Some(b'\\') => {
                    escaped = true;
                    self.escape()?;
                }
                Some(_) => return Err(self.error("a control character inside a string")),
                None => {
                    return Err(SyntaxError {
                        what: "a string that is not closed",
                        at: start,
                    })
                }
            }
        }
    }

    /// Skips string bytes that are neither a quote, a backslash nor a control character, eight
    /// at a time while it can.
    fn skip_plain(&mut self) {
        let (bytes, mut at) = (self.bytes, self.at);
        while let Some(chunk) = bytes.get(at..at + 8) {
            let stops = string_stops(u64::from_le_bytes(chunk.try_into().expect("eight bytes")));
            if stops != 0 {
                // The lowest flag is exact: a false one only ever follows a true one.
                self.at = at + (stops.trailing_zeros() / 8) as usize;
                return;
            }
            at += 8;
        }
        while let Some(&b) = bytes.get(at) {
            if b == b'"' || b == b'\\' || b < 0x20 {
                break;
            }
            at += 1;
        }
        self.at = at;
    }

    fn escape(&mut self) -> Result<(), SyntaxError> {
        match self.bytes.get(self.at + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.at += 2,
            Some(b'u')
                if self
                    .bytes
                    .get(self.at + 2..self.at + 6)
                    .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) =>
            {
                self.at += 6
            }
            _ => return Err(self.error("an invalid escape in a string")),
        }
        Ok(())
    }

    fn literal(&mut self, word: &str, shape: Shape<'a>) -> Result<Shape<'a>, SyntaxError> {
        if !self.bytes[self.at..].starts_with(word.as_bytes()) {
            return Err(self.error("expected a JSON value"));
        }
        self.at += word.len();
        Ok(shape)
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
        self.at - start
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Result<(), SyntaxError> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.error("a number without digits")),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return Err(self.error("a number without digits after its point"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("a number without digits in its exponent"));
            }
        }
        Ok(())
    }
}

/// The high bit of each of the eight bytes in `word` (little-endian) that is a quote, a backslash
/// or below 0x20, by the classic "has a zero byte" test on the word XORed with each stop byte;
/// bytes after the first flagged one may be flagged falsely.
const fn string_stops(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const fn zero_bytes(v: u64) -> u64 {
        v.wrapping_sub(ONES) & !v & HIGH
    }
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    zero_bytes(word ^ (ONES * b'"' as u64)) | zero_bytes(word ^ (ONES * b'\\' as u64)) | below_space
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape_of(text: &str) -> Shape<'_> {
        parse(text).unwrap().shape
    }

    #[test]
    fn values_keep_their_exact_text_and_parts() {
        let text = r#" { "a" : [1, -2.5e+3, "x\"y", true, null, {}] , "b":{"c":false} } "#;
        let value = parse(text).unwrap();
        assert_eq!(value.get(), text.trim());
        let Shape::Object(members) = value.shape else {
            panic!("an object")
        };
        assert_eq!(members[0].0, "a");
        let Shape::Array(items) = &members[0].1.shape else {
            panic!("an array")
        };
        let texts: Vec<&str> = items.iter().map(Raw::get).collect();
        assert_eq!(texts, ["1", "-2.5e+3", r#""x\"y""#, "true", "null", "{}"]);
        assert_eq!(items[1].as_f64(), Some(-2500.0));
        assert_eq!(items[2].as_str().as_deref(), Some("x\"y"));
        assert!(items[4].is_null());
        assert_eq!(members[1].1.get(), r#"{"c":false}"#);
    }

    #[test]
    fn strings_are_scanned_a_word_at_a_time_and_still_stop_at_every_special_byte() {
        for len in 0..20 {
            let plain = "é".repeat(len / 2) + &"a".repeat(len);
            let text = format!("\"{plain}\"");
            assert_eq!(shape_of(&text), Shape::String { escaped: false });
            assert_eq!(
                parse(&text).unwrap().as_str().as_deref(),
                Some(plain.as_str())
            );
            let escaped = format!("\"{plain}\\n{plain}\\u00e9\"");
            assert_eq!(shape_of(&escaped), Shape::String { escaped: true });
            assert_eq!(
                parse(&escaped).unwrap().as_str().unwrap(),
                format!("{plain}\n{plain}é")
            );
            let control = format!("\"{plain}\t{plain}\"");
            assert_eq!(
                parse(&control).unwrap_err(),
                SyntaxError {
                    what: "a control character inside a string",
                    at: 1 + plain.len()
                }
            );
        }
        let first_stop = |bytes: &[u8; 8]| {
            let stops = string_stops(u64::from_le_bytes(*bytes));
            (stops != 0).then(|| stops.trailing_zeros() / 8)
        };
        assert_eq!(first_stop(b"abcdefg\""), Some(7));
        assert_eq!(first_stop(b"\\bcdefgh"), Some(0));
        assert_eq!(first_stop(b"abc\x1f\"\x00gh"), Some(3));
        assert_eq!(first_stop(b"a\x01\x00\x00\"\\\x1f "), Some(1));
        assert_eq!(first_stop(b"ab \x7f\xc3\xa9g!"), None);
    }

    #[test]
    fn escaped_member_names_are_decoded() {
        let Shape::Object(members) = shape_of(r#"{"a\u0062\"":1}"#) else {
            panic!("an object")
        };
        assert_eq!(members[0].0, "ab\"");
        assert_eq!(
            parse(r#"{"\ud800":1}"#).unwrap_err().what,
            "a member's name that escapes a lone surrogate"
        );
    }

    #[test]
    fn what_is_not_json_is_refused_with_where() {
        for (text, what, at) in [
            ("", "unexpected end of the text", 0),
            ("{\"a\":1", "unexpected end of the text", 6),
            ("{\"a\" 1}", "expected `:` after the member's name", 5),
            ("{\"a\":1,}", "expected a string as the member's name", 7),
            ("{a:1}", "expected a string as the member's name", 1),
            ("[1 2]", "expected `,` or `]` after an array item", 3),
            ("{\"a\":1]", "expected `,` or `}` after an object member", 6),
            ("[01]", "expected `,` or `]` after an array item", 2),
            ("[-]", "a number without digits", 2),
            ("[1.]", "a number without digits after its point", 3),
            ("[1e+]", "a number without digits in its exponent", 4),
            ("[tru]", "expected a JSON value", 1),
            ("[\"\\x\"]", "an invalid escape in a string", 2),
            ("[\"\\u12G4\"]", "an invalid escape in a string", 2),
            ("\"abc", "a string that is not closed", 0),
            ("{} {}", "unexpected text after the value", 3),
            ("[,]", "expected a JSON value", 1),
        ] {
            assert_eq!(parse(text).unwrap_err(), SyntaxError { what, at }, "{text}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse(&deep).is_ok());
        let deeper = "[".repeat(100_000);
        assert_eq!(
            parse(&deeper).unwrap_err(),
            SyntaxError {
                what: "objects and arrays nested more than 128 deep",
                at: MAX_DEPTH
            }
        );
    }

    #[test]
    fn agrees_with_serde_json_on_mangled_records() {
        // Real records with bytes overwritten, inserted and cut off (xorshift64*, fixed seed):
        // whatever the damage, both must find the same texts to be JSON.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |n: usize| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
        };
        let specials = b"{}[]\":,\\ \n\t0123456789-+.eEtrufalsn\x01\x7f";
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/sources");
        let (mut checked, mut valid) = (0, 0);
        for file in [
            "aws-cloudtrail/golden/aws-reference.input.jsonl",
            "aws-cloudtrail/golden/panther-rule-tests.input.jsonl",
            "okta-system-log/golden/panther-scenarios.input.jsonl",
        ] {
            let text = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
            for line in text.lines().filter(|l| !l.is_empty()) {
                for _ in 0..20 {
                    let mut bytes = line.as_bytes().to_vec();
                    for _ in 0..=next(3) {
                        let at = next(bytes.len());
                        let byte = specials[next(specials.len())];
                        match next(3) {
                            0 => bytes[at] = byte,
                            1 => bytes.insert(at, byte),
                            _ => bytes.truncate(at.max(1)),
                        }
                    }
                    let Ok(mangled) = std::str::from_utf8(&bytes) else {
                        continue;
                    };
                    let ours = parse(mangled).is_ok();
                    let theirs = serde_json::from_str::<serde::de::IgnoredAny>(mangled).is_ok();
                    assert_eq!(ours, theirs, "{mangled}");
                    checked += 1;
                    valid += usize::from(ours);
                }
            }
        }
        // About 2,000 texts, a third of them still JSON.
        assert!(
            checked > 1_500 && valid > 400,
            "{checked} texts, {valid} JSON"
        );
    }

    #[test]
    fn agrees_with_serde_json_on_what_is_json() {
        let cases = [
            r#"{"a":[1,2,{"b":null}],"c":"\u00e9\ud83d\ude00","d":-0.0e-0}"#,
            "[1,2",
            "{\"a\":1}}",
            "[\"\u{7f}\"]",
            "[1e5, 0.5, -0, 12345678901234567890]",
            "[00]",
            "[+1]",
            "[.5]",
            "[\"a\\/b\"]",
            "nul",
            "[true,false,null]",
            " \n\t[ ] \r",
        ];
        for text in cases {
            assert_eq!(
                parse(text).is_ok(),
                serde_json::from_str::<serde_json::Value>(text).is_ok(),
                "{text}"
            );
        }
    }
}
