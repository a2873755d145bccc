//! Writing OCSF records as rows ([`crate::row`]): the generated types write themselves straight
//! into the output buffer, each member as its attribute's index and a tagged value, with no
//! names, escaping or serialiser in between. The host renders a row as JSON when a person needs
//! to read it.

use super::{Datetime, Json, Unmapped};
use crate::row::RowWrite;

/// A value that writes itself into a row.
pub trait WriteRow {
    /// Appends the value (its tag and payload) to `out`.
    fn write_row(&self, out: &mut Vec<u8>);

    /// Appends the value as member `index` of an object: the index, then the value (scalars
    /// as one append, `RowWrite::int_member` and the like).
    #[inline]
    fn write_member(&self, index: u16, out: &mut Vec<u8>) {
        out.member(index);
        self.write_row(out);
    }
}

/// Writes the members of one object (or of a record's root), then its end.
pub struct RowObject<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> RowObject<'a> {
    /// Opens an object value.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        out.object();
        RowObject { out }
    }

    /// Opens a record of class `uid`: its root object.
    pub fn record(out: &'a mut Vec<u8>, uid: u32) -> Self {
        out.class(uid);
        RowObject { out }
    }

    /// Writes member `index` (the attribute's position among its definition's attributes
    /// sorted by name).
    pub fn entry<V: WriteRow + ?Sized>(&mut self, index: u16, value: &V) {
        value.write_member(index, self.out);
    }

    /// Closes the object.
    pub fn end(self) {
        self.out.end();
    }
}

impl WriteRow for str {
    fn write_row(&self, out: &mut Vec<u8>) {
        out.string(self);
    }

    #[inline]
    fn write_member(&self, index: u16, out: &mut Vec<u8>) {
        out.string_member(index, self);
    }
}

impl WriteRow for String {
    fn write_row(&self, out: &mut Vec<u8>) {
        out.string(self);
    }

    #[inline]
    fn write_member(&self, index: u16, out: &mut Vec<u8>) {
        out.string_member(index, self);
    }
}

impl WriteRow for i32 {
    fn write_row(&self, out: &mut Vec<u8>) {
        out.int(i64::from(*self));
    }

    #[inline]
    fn write_member(&self, index: u16, out: &mut Vec<u8>) {
        i64::from(*self).write_member(index, out);
    }
}

impl WriteRow for i64 {
    fn write_row(&self, out: &mut Vec<u8>) {
        out.int(*self);
    }

    #[inline]
    fn write_member(&self, index: u16, out: &mut Vec<u8>) {
        out.int_member(index, *self);
    }
}

impl WriteRow for Datetime {
    fn write_row(&self, out: &mut Vec<u8>) {
        out.int(self.0);
    }

    #[inline]
    fn write_member(&self, index: u16, out: &mut Vec<u8>) {
        self.0.write_member(index, out);
    }
}

impl WriteRow for f64 {
    fn write_row(&self, out: &mut Vec<u8>) {
        out.float(*self);
    }

    #[inline]
    fn write_member(&self, index: u16, out: &mut Vec<u8>) {
        out.float_member(index, *self);
    }
}

impl WriteRow for bool {
    fn write_row(&self, out: &mut Vec<u8>) {
        out.boolean(*self);
    }

    #[inline]
    fn write_member(&self, index: u16, out: &mut Vec<u8>) {
        out.bool_member(index, *self);
    }
}

impl<T: WriteRow> WriteRow for Vec<T> {
    fn write_row(&self, out: &mut Vec<u8>) {
        let at = out.array();
        for item in self {
            item.write_row(out);
        }
        out.set_count(at, self.len());
    }
}

impl<T: WriteRow + ?Sized> WriteRow for Box<T> {
    fn write_row(&self, out: &mut Vec<u8>) {
        (**self).write_row(out);
    }

    #[inline]
    fn write_member(&self, index: u16, out: &mut Vec<u8>) {
        (**self).write_member(index, out);
    }
}

impl WriteRow for Json {
    fn write_row(&self, out: &mut Vec<u8>) {
        match self {
            // One line of valid JSON, as `Json::raw` keeps it.
            Json::Raw(raw) => out.json(raw.get()),
            Json::Value(value) => out.json(&value.to_string()),
        }
    }
}

/// A free-form object (`object` attributes without an OCSF object type), as JSON text.
impl WriteRow for serde_json::Map<String, serde_json::Value> {
    fn write_row(&self, out: &mut Vec<u8>) {
        out.json(&serde_json::to_string(self).unwrap_or_default());
    }
}

impl WriteRow for Unmapped {
    fn write_row(&self, out: &mut Vec<u8>) {
        let entries = self.entries();
        let at = out.map();
        for (key, value) in entries {
            out.text(key);
            out.text(value);
        }
        out.set_count(at, entries.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::{RowReader, Tag};

    fn row<V: WriteRow + ?Sized>(value: &V) -> Vec<u8> {
        let mut out = Vec::new();
        value.write_row(&mut out);
        out
    }

    #[test]
    fn values_read_back_with_their_tags() {
        let bytes = row(&vec![i32::MIN]);
        let mut r = RowReader::new(&bytes);
        assert_eq!((r.tag(), r.count()), (Ok(Tag::Array), Ok(1)));
        assert_eq!((r.tag(), r.int()), (Ok(Tag::Int), Ok(i64::from(i32::MIN))));
        assert!(r.is_done());

        let bytes = row(&Json::from(serde_json::json!({"a": [1, null]})));
        let mut r = RowReader::new(&bytes);
        assert_eq!(
            (r.tag(), r.text()),
            (Ok(Tag::Json), Ok(r#"{"a":[1,null]}"#))
        );

        let mut unmapped = Unmapped::default();
        unmapped.insert("b.c", "2");
        unmapped.insert("a", "x\ny");
        let bytes = row(&unmapped);
        let mut r = RowReader::new(&bytes);
        assert_eq!((r.tag(), r.count()), (Ok(Tag::Map), Ok(2)));
        assert_eq!((r.text(), r.text()), (Ok("a"), Ok("x\ny")));
        assert_eq!((r.text(), r.text()), (Ok("b.c"), Ok("2")));

        let mut out = Vec::new();
        let mut o = RowObject::record(&mut out, 6003);
        o.entry(4, &2.5f64);
        o.entry(9, "API Activity: Read");
        o.entry(1, &true);
        o.entry(3, &-7i32);
        o.entry(7, &Datetime(1_700_000_000_123));
        o.entry(8, &Box::new(String::from("é")));
        o.end();
        let mut r = RowReader::new(&out);
        assert_eq!(r.class(), Ok(6003));
        let mut members = Vec::new();
        while let Some(index) = r.member().expect("a member or the end") {
            let tag = r.tag().expect("a tag");
            let value = match tag {
                Tag::Float => r.float().map(|v| v.to_string()),
                Tag::String => r.text().map(str::to_string),
                Tag::Bool => r.boolean().map(|v| v.to_string()),
                Tag::Int => r.int().map(|v| v.to_string()),
                other => panic!("unexpected {other:?}"),
            };
            members.push((index, tag, value.expect("a value")));
        }
        assert!(r.is_done());
        let expected = [
            (4, Tag::Float, "2.5"),
            (9, Tag::String, "API Activity: Read"),
            (1, Tag::Bool, "true"),
            (3, Tag::Int, "-7"),
            (7, Tag::Int, "1700000000123"),
            (8, Tag::String, "é"),
        ];
        assert_eq!(
            members,
            expected.map(|(index, tag, value)| (index, tag, value.to_string()))
        );
    }
}
