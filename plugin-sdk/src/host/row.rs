//! A validated record in the shape of its lake table: the validator writes it while it checks
//! the record's JSON ([`Schema::validate_row`](super::validate::Schema::validate_row)), and the
//! lake appends it to Arrow builders without parsing anything or looking up a name.
//!
//! The format follows the table's columns ([`Column`](super::columns::Column)); all numbers are
//! little-endian:
//! - an object: each member as `position: u16` (its column among the object's columns), then
//!   its value; then [`END`]. Null members are left out.
//! - a value, by its column's kind: `Integer` i32; `Long` and `Datetime` (epoch milliseconds)
//!   i64; `Float` f64; `Boolean` one byte; `String` and `Json` a text; `Map` a count, then that
//!   many key and value texts; `Struct` an object; an array a count, then that many values of
//!   the item's kind.
//! - a text: `len: u32` and that many bytes of UTF-8, or `len` [`NULL`] for a JSON null (an
//!   array's null item); a count: u32.

use std::fmt;

/// Ends an object.
pub const END: u16 = u16::MAX;
/// The length of a null text.
const NULL: u32 = u32::MAX;

/// A row that does not follow the format, or not its table's columns: a gateway bug, never
/// the data's fault (the validator wrote it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the validated row does not match its table's columns (a gateway bug)")
    }
}

impl std::error::Error for Malformed {}

/// Appends the parts of a row (the validator's side).
pub(super) trait RowWrite {
    fn position(&mut self, position: u16);
    fn end(&mut self);
    fn integer(&mut self, v: i32);
    fn long(&mut self, v: i64);
    fn float(&mut self, v: f64);
    fn boolean(&mut self, v: bool);
    fn text(&mut self, v: &str);
    fn null_text(&mut self);
    /// Reserves a count, to be filled in by [`RowWrite::set_count`] once known; returns where.
    fn count_at(&mut self) -> usize;
    fn set_count(&mut self, at: usize, count: u32);
}

impl RowWrite for Vec<u8> {
    fn position(&mut self, position: u16) {
        self.extend_from_slice(&position.to_le_bytes());
    }

    fn end(&mut self) {
        self.position(END);
    }

    fn integer(&mut self, v: i32) {
        self.extend_from_slice(&v.to_le_bytes());
    }

    fn long(&mut self, v: i64) {
        self.extend_from_slice(&v.to_le_bytes());
    }

    fn float(&mut self, v: f64) {
        self.extend_from_slice(&v.to_le_bytes());
    }

    fn boolean(&mut self, v: bool) {
        self.push(u8::from(v));
    }

    fn text(&mut self, v: &str) {
        let len = u32::try_from(v.len()).expect("OCSF values are far below 4 GiB");
        self.extend_from_slice(&len.to_le_bytes());
        self.extend_from_slice(v.as_bytes());
    }

    fn null_text(&mut self) {
        self.extend_from_slice(&NULL.to_le_bytes());
    }

    fn count_at(&mut self) -> usize {
        self.extend_from_slice(&0u32.to_le_bytes());
        self.len() - 4
    }

    fn set_count(&mut self, at: usize, count: u32) {
        self[at..at + 4].copy_from_slice(&count.to_le_bytes());
    }
}

/// Reads a row front to back (the lake's side).
#[derive(Debug, Clone)]
pub struct RowReader<'a> {
    rest: &'a [u8],
}

impl<'a> RowReader<'a> {
    pub fn new(row: &'a [u8]) -> Self {
        RowReader { rest: row }
    }

    /// Whether all of the row has been read.
    pub fn is_done(&self) -> bool {
        self.rest.is_empty()
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        let (head, rest) = self.rest.split_first_chunk::<N>().ok_or(Malformed)?;
        self.rest = rest;
        Ok(*head)
    }

    /// The position of an object's next member, or `None` at its end.
    pub fn position(&mut self) -> Result<Option<usize>, Malformed> {
        match u16::from_le_bytes(self.take()?) {
            END => Ok(None),
            p => Ok(Some(usize::from(p))),
        }
    }

    pub fn integer(&mut self) -> Result<i32, Malformed> {
        self.take().map(i32::from_le_bytes)
    }

    pub fn long(&mut self) -> Result<i64, Malformed> {
        self.take().map(i64::from_le_bytes)
    }

    pub fn float(&mut self) -> Result<f64, Malformed> {
        self.take().map(f64::from_le_bytes)
    }

    pub fn boolean(&mut self) -> Result<bool, Malformed> {
        match self.take::<1>()? {
            [0] => Ok(false),
            [1] => Ok(true),
            _ => Err(Malformed),
        }
    }

    pub fn count(&mut self) -> Result<usize, Malformed> {
        self.take().map(|b| u32::from_le_bytes(b) as usize)
    }

    /// A text, or `None` for a null one.
    pub fn text(&mut self) -> Result<Option<&'a str>, Malformed> {
        let len = u32::from_le_bytes(self.take()?);
        if len == NULL {
            return Ok(None);
        }
        let (text, rest) = self.rest.split_at_checked(len as usize).ok_or(Malformed)?;
        self.rest = rest;
        std::str::from_utf8(text).map(Some).map_err(|_| Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back() {
        let mut row = Vec::new();
        row.position(3);
        row.integer(-7);
        row.position(0);
        row.long(i64::MIN);
        row.float(2.5);
        row.boolean(true);
        let at = row.count_at();
        row.text("ünïcode \"quoted\"");
        row.null_text();
        row.set_count(at, 2);
        row.end();

        let mut r = RowReader::new(&row);
        assert_eq!(r.position(), Ok(Some(3)));
        assert_eq!(r.integer(), Ok(-7));
        assert_eq!(r.position(), Ok(Some(0)));
        assert_eq!(r.long(), Ok(i64::MIN));
        assert_eq!(r.float(), Ok(2.5));
        assert_eq!(r.boolean(), Ok(true));
        assert_eq!(r.count(), Ok(2));
        assert_eq!(r.text(), Ok(Some("ünïcode \"quoted\"")));
        assert_eq!(r.text(), Ok(None));
        assert_eq!(r.position(), Ok(None));
        assert!(r.is_done());
        assert_eq!(r.position(), Err(Malformed), "nothing left");
    }

    #[test]
    fn truncated_or_invalid_rows_are_malformed() {
        let mut row = Vec::new();
        row.text("abcdef");
        assert_eq!(RowReader::new(&row[..7]).text(), Err(Malformed));
        assert_eq!(RowReader::new(&[2]).boolean(), Err(Malformed));
        let mut bad = Vec::new();
        bad.extend_from_slice(&2u32.to_le_bytes());
        bad.extend_from_slice(&[0xff, 0xfe]);
        assert_eq!(RowReader::new(&bad).text(), Err(Malformed));
    }
}
