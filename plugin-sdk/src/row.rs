//! OCSF records as rows: the binary form a plugin emits (WIT `lakegate:plugin@0.2.0`), which the
//! host validates, logs and appends to the lake's Arrow columns without parsing text or looking
//! up a name. The host's JSON validator writes the same rows for records of `0.1.0` plugins.
//!
//! Format, all numbers little-endian:
//! - a **record**: its `class_uid: u32`, then its root object.
//! - an **object**: its members, each `index: u16` (the attribute's position among its
//!   definition's attributes sorted by name, in the OCSF version the plugin declares) followed by
//!   a value; then [`END`]. Absent and null members are left out.
//! - a **value**: a [`Tag`] byte, then: `Null` nothing (an array's null item); `Bool` one byte;
//!   `Int` i64 (also a `datetime_t` as epoch milliseconds, which may be a `String` in RFC 3339
//!   too); `Float` f64; `String` a text; `Json` a text holding JSON (`json_t`, free-form
//!   objects); `Object` an object; `Array` a count, then that many values; `Map` (`unmapped`) a
//!   count, then that many key and value texts.
//! - a **text**: `len: u32`, then that many bytes of UTF-8; a **count**: u32.
//!
//! A batch's rows are concatenated, each preceded by its length (u32).
//!
//! The caption of an enum value (`class_name`, `type_name`, `activity_name`, `severity`, ...) may
//! be left out, and the SDK's types leave it out unless the plugin sets the source's own label:
//! the host stores the schema's caption of the value.

use std::fmt;

/// Ends an object.
pub const END: u16 = u16::MAX;

/// What a value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Tag {
    Null = 0,
    Bool = 1,
    Int = 2,
    Float = 3,
    String = 4,
    Json = 5,
    Object = 6,
    Array = 7,
    Map = 8,
}

impl Tag {
    fn from_byte(b: u8) -> Option<Tag> {
        Some(match b {
            0 => Tag::Null,
            1 => Tag::Bool,
            2 => Tag::Int,
            3 => Tag::Float,
            4 => Tag::String,
            5 => Tag::Json,
            6 => Tag::Object,
            7 => Tag::Array,
            8 => Tag::Map,
            _ => return None,
        })
    }

    /// What the tag means, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Tag::Null => "null",
            Tag::Bool => "a boolean",
            Tag::Int => "an integer",
            Tag::Float => "a float",
            Tag::String => "a string",
            Tag::Json => "JSON text",
            Tag::Object => "an object",
            Tag::Array => "an array",
            Tag::Map => "a map",
        }
    }
}

/// Bytes that do not follow the row format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the row does not follow the row format")
    }
}

impl std::error::Error for Malformed {}

/// Appends the parts of a row.
pub trait RowWrite {
    /// Starts a record of class `uid`: its root object's members follow.
    fn class(&mut self, uid: u32);
    /// Starts member `index` of the current object; its value follows.
    fn member(&mut self, index: u16);
    /// Ends the current object.
    fn end(&mut self);
    fn null(&mut self);
    fn boolean(&mut self, v: bool);
    fn int(&mut self, v: i64);
    fn float(&mut self, v: f64);
    fn string(&mut self, v: &str);
    /// JSON text, taken as it is.
    fn json(&mut self, text: &str);
    /// Starts an object value: members and [`RowWrite::end`] follow.
    fn object(&mut self);
    /// Starts an array value; returns where its count goes ([`RowWrite::set_count`]).
    fn array(&mut self) -> usize;
    /// Starts a map value; returns where its count goes. Entries are two [`RowWrite::text`]s.
    fn map(&mut self) -> usize;
    /// An untagged text: a map's key or value.
    fn text(&mut self, v: &str);
    /// Fills in a count reserved by [`RowWrite::array`] or [`RowWrite::map`].
    fn set_count(&mut self, at: usize, count: usize);
    /// Member `index` with an `Int` value: what [`RowWrite::member`] and [`RowWrite::int`]
    /// write, as one append (a record writes dozens of members, and each append checks the
    /// buffer's room); likewise the other `*_member` methods.
    fn int_member(&mut self, index: u16, v: i64);
    fn float_member(&mut self, index: u16, v: f64);
    fn bool_member(&mut self, index: u16, v: bool);
    /// Member `index` with a `String` value: its index, tag and length as one append, then the
    /// text.
    fn string_member(&mut self, index: u16, v: &str);
}

impl RowWrite for Vec<u8> {
    fn class(&mut self, uid: u32) {
        self.extend_from_slice(&uid.to_le_bytes());
    }

    fn member(&mut self, index: u16) {
        self.extend_from_slice(&index.to_le_bytes());
    }

    fn end(&mut self) {
        self.extend_from_slice(&END.to_le_bytes());
    }

    fn null(&mut self) {
        self.push(Tag::Null as u8);
    }

    fn boolean(&mut self, v: bool) {
        self.extend_from_slice(&[Tag::Bool as u8, u8::from(v)]);
    }

    fn int(&mut self, v: i64) {
        self.push(Tag::Int as u8);
        self.extend_from_slice(&v.to_le_bytes());
    }

    fn float(&mut self, v: f64) {
        self.push(Tag::Float as u8);
        self.extend_from_slice(&v.to_le_bytes());
    }

    fn string(&mut self, v: &str) {
        self.push(Tag::String as u8);
        self.text(v);
    }

    fn json(&mut self, text: &str) {
        self.push(Tag::Json as u8);
        self.text(text);
    }

    fn object(&mut self) {
        self.push(Tag::Object as u8);
    }

    fn array(&mut self) -> usize {
        counted(self, Tag::Array)
    }

    fn map(&mut self) -> usize {
        counted(self, Tag::Map)
    }

    fn text(&mut self, v: &str) {
        // OCSF strings are at most 64 KiB; a text over 4 GiB cannot reach a plugin's output.
        self.extend_from_slice(&(v.len() as u32).to_le_bytes());
        self.extend_from_slice(v.as_bytes());
    }

    fn set_count(&mut self, at: usize, count: usize) {
        self[at..at + 4].copy_from_slice(&(count as u32).to_le_bytes());
    }

    #[inline]
    fn int_member(&mut self, index: u16, v: i64) {
        self.extend_from_slice(&member_head::<8, 11>(index, Tag::Int, v.to_le_bytes()));
    }

    #[inline]
    fn float_member(&mut self, index: u16, v: f64) {
        self.extend_from_slice(&member_head::<8, 11>(index, Tag::Float, v.to_le_bytes()));
    }

    #[inline]
    fn bool_member(&mut self, index: u16, v: bool) {
        self.extend_from_slice(&member_head::<1, 4>(index, Tag::Bool, [u8::from(v)]));
    }

    #[inline]
    fn string_member(&mut self, index: u16, v: &str) {
        // As in `text`: OCSF strings are at most 64 KiB.
        let len = (v.len() as u32).to_le_bytes();
        self.extend_from_slice(&member_head::<4, 7>(index, Tag::String, len));
        self.extend_from_slice(v.as_bytes());
    }
}

/// A member's index, a tag and `payload` (`M` is `N + 3`), ready to append at once.
#[inline]
fn member_head<const N: usize, const M: usize>(index: u16, tag: Tag, payload: [u8; N]) -> [u8; M] {
    let mut bytes = [0; M];
    bytes[..2].copy_from_slice(&index.to_le_bytes());
    bytes[2] = tag as u8;
    bytes[3..].copy_from_slice(&payload);
    bytes
}

/// Writes `tag` and a count of zero; returns where the count is, to be set later.
fn counted(row: &mut Vec<u8>, tag: Tag) -> usize {
    row.push(tag as u8);
    row.extend_from_slice(&[0; 4]);
    row.len() - 4
}

/// Reads a row front to back.
#[derive(Debug, Clone)]
pub struct RowReader<'a> {
    rest: &'a [u8],
}

impl<'a> RowReader<'a> {
    pub fn new(row: &'a [u8]) -> Self {
        RowReader { rest: row }
    }

    /// Whether all of the row has been read.
    #[inline]
    pub fn is_done(&self) -> bool {
        self.rest.is_empty()
    }

    #[inline]
    fn take<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        let (head, rest) = self.rest.split_first_chunk::<N>().ok_or(Malformed)?;
        self.rest = rest;
        Ok(*head)
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// Passes over the next `n` bytes (a value known whole, e.g. found equal to one read
    /// before).
    pub fn pass(&mut self, n: usize) -> Result<(), Malformed> {
        self.rest = self.rest.get(n..).ok_or(Malformed)?;
        Ok(())
    }

    /// A record's class: how a row starts.
    #[inline]
    pub fn class(&mut self) -> Result<u32, Malformed> {
        self.take().map(u32::from_le_bytes)
    }

    /// The index of the current object's next member, or `None` at its end.
    #[inline]
    pub fn member(&mut self) -> Result<Option<usize>, Malformed> {
        match u16::from_le_bytes(self.take()?) {
            END => Ok(None),
            index => Ok(Some(usize::from(index))),
        }
    }

    #[inline]
    pub fn tag(&mut self) -> Result<Tag, Malformed> {
        Tag::from_byte(self.take::<1>()?[0]).ok_or(Malformed)
    }

    /// A `Bool` value's payload.
    #[inline]
    pub fn boolean(&mut self) -> Result<bool, Malformed> {
        match self.take::<1>()? {
            [0] => Ok(false),
            [1] => Ok(true),
            _ => Err(Malformed),
        }
    }

    /// An `Int` value's payload.
    #[inline]
    pub fn int(&mut self) -> Result<i64, Malformed> {
        self.take().map(i64::from_le_bytes)
    }

    /// A `Float` value's payload.
    #[inline]
    pub fn float(&mut self) -> Result<f64, Malformed> {
        self.take().map(f64::from_le_bytes)
    }

    /// An `Array` or `Map` value's count.
    #[inline]
    pub fn count(&mut self) -> Result<usize, Malformed> {
        self.take().map(|b| u32::from_le_bytes(b) as usize)
    }

    /// A text: a `String` or `Json` value's payload, or a map's key or value.
    #[inline]
    pub fn text(&mut self) -> Result<&'a str, Malformed> {
        let len = u32::from_le_bytes(self.take()?) as usize;
        let (text, rest) = self.rest.split_at_checked(len).ok_or(Malformed)?;
        self.rest = rest;
        // Most texts are short and ASCII, which `is_ascii` checks a word at a time where
        // `from_utf8` pays for its general case on every call.
        if text.is_ascii() {
            // SAFETY: ASCII bytes are valid UTF-8.
            return Ok(unsafe { std::str::from_utf8_unchecked(text) });
        }
        std::str::from_utf8(text).map_err(|_| Malformed)
    }
}

/// The rows of a batch, in order; a length that overruns the buffer ends them with an error.
pub fn split_rows(rows: &[u8]) -> impl Iterator<Item = Result<&[u8], Malformed>> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let row = rest
            .split_first_chunk::<4>()
            .and_then(|(len, tail)| tail.split_at_checked(u32::from_le_bytes(*len) as usize));
        match row {
            Some((row, tail)) => {
                rest = tail;
                Some(Ok(row))
            }
            None => {
                rest = &[];
                Some(Err(Malformed))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back() {
        let mut row = Vec::new();
        row.member(3);
        row.int(-7);
        row.member(0);
        row.object();
        row.member(1);
        row.float(2.5);
        row.end();
        row.member(9);
        let at = row.array();
        row.string("ünïcode \"quoted\"");
        row.null();
        row.json("{\"a\":1}");
        row.set_count(at, 3);
        row.member(4);
        let at = row.map();
        row.text("k");
        row.text("v");
        row.set_count(at, 1);
        row.member(5);
        row.boolean(true);
        row.end();

        let mut r = RowReader::new(&row);
        assert_eq!(r.member(), Ok(Some(3)));
        assert_eq!((r.tag(), r.int()), (Ok(Tag::Int), Ok(-7)));
        assert_eq!((r.member(), r.tag()), (Ok(Some(0)), Ok(Tag::Object)));
        assert_eq!((r.member(), r.tag()), (Ok(Some(1)), Ok(Tag::Float)));
        assert_eq!(r.float(), Ok(2.5));
        assert_eq!(r.member(), Ok(None));
        assert_eq!((r.member(), r.tag()), (Ok(Some(9)), Ok(Tag::Array)));
        assert_eq!(r.count(), Ok(3));
        assert_eq!(
            (r.tag(), r.text()),
            (Ok(Tag::String), Ok("ünïcode \"quoted\""))
        );
        assert_eq!(r.tag(), Ok(Tag::Null));
        assert_eq!((r.tag(), r.text()), (Ok(Tag::Json), Ok("{\"a\":1}")));
        assert_eq!((r.member(), r.tag()), (Ok(Some(4)), Ok(Tag::Map)));
        assert_eq!((r.count(), r.text(), r.text()), (Ok(1), Ok("k"), Ok("v")));
        assert_eq!((r.member(), r.tag()), (Ok(Some(5)), Ok(Tag::Bool)));
        assert_eq!(r.boolean(), Ok(true));
        assert_eq!(r.member(), Ok(None));
        assert!(r.is_done());
        assert_eq!(r.member(), Err(Malformed), "nothing left");
    }

    #[test]
    fn truncated_or_invalid_rows_are_malformed() {
        let mut row = Vec::new();
        row.string("abcdef");
        let mut r = RowReader::new(&row[..8]);
        assert_eq!((r.tag(), r.text()), (Ok(Tag::String), Err(Malformed)));
        assert_eq!(RowReader::new(&[2]).boolean(), Err(Malformed));
        assert_eq!(RowReader::new(&[42]).tag(), Err(Malformed));
        let mut bad = 2u32.to_le_bytes().to_vec();
        bad.extend_from_slice(&[0xff, 0xfe]);
        assert_eq!(RowReader::new(&bad).text(), Err(Malformed));
    }

    #[test]
    fn rows_of_a_batch_split_by_their_lengths() {
        let mut rows = Vec::new();
        for row in [&b"ab"[..], b"", b"xyz"] {
            rows.extend_from_slice(&(row.len() as u32).to_le_bytes());
            rows.extend_from_slice(row);
        }
        let split: Vec<_> = split_rows(&rows).collect();
        assert_eq!(split, [Ok(&b"ab"[..]), Ok(&b""[..]), Ok(&b"xyz"[..])]);
        rows.truncate(rows.len() - 1);
        let split: Vec<_> = split_rows(&rows).collect();
        assert_eq!(split.last(), Some(&Err(Malformed)));
        assert_eq!(split.len(), 3);
    }
}
