//! Turns OCSF records (JSON text, already validated) into one Arrow record batch with the
//! table's fixed schema, parsing each record straight into the column builders: no value tree,
//! and no work for the columns a record does not set (absent values are filled in as nulls in
//! bulk, when a later record sets the column or at the end). A member without a column is an
//! error, never silently dropped.

use std::fmt;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, MapBuilder, MapFieldNames,
    StringBuilder, TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, ListArray, RecordBatch, StructArray};
use arrow_buffer::{NullBufferBuilder, OffsetBuffer};
use arrow_schema::{DataType, FieldRef, Fields, SchemaRef};
use lakegate_plugin_sdk::host::columns::{Column, ColumnKind};
use lakegate_plugin_sdk::input::Key;
use lakegate_plugin_sdk::ocsf::time::parse_rfc3339_ms;
use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// A record that does not fit its table: which one and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// Index of the record in the input.
    pub index: usize,
    /// The attribute and what is wrong.
    pub reason: String,
}

/// Builds a batch from records in order. `columns` are the ones `schema` was made from.
pub fn build<'a>(
    schema: &SchemaRef,
    columns: &[Column],
    records: impl ExactSizeIterator<Item = &'a str>,
) -> Result<RecordBatch, RowError> {
    let rows = records.len();
    let mut root = Builder::for_struct(columns, schema.fields(), rows);
    for (index, text) in records.enumerate() {
        let mut de = serde_json::Deserializer::from_str(text);
        Slot {
            builder: &mut root,
            name: "",
        }
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| RowError {
            index,
            reason: e.to_string(),
        })?;
    }
    let Builder::Struct {
        children, validity, ..
    } = &mut root
    else {
        unreachable!("the root is a struct")
    };
    if validity.len() != rows || validity.as_slice().is_some() {
        return Err(RowError {
            index: 0,
            reason: "a record is not a JSON object".into(),
        });
    }
    let arrays: Vec<ArrayRef> = children
        .iter_mut()
        .map(|c| {
            c.pad_to(rows);
            c.finish()
        })
        .collect();
    RecordBatch::try_new(schema.clone(), arrays).map_err(|e| RowError {
        index: 0,
        reason: format!("batch does not match the table schema: {e}"),
    })
}

enum Builder {
    Boolean(BooleanBuilder),
    Integer(Int32Builder),
    Long(Int64Builder),
    Float(Float64Builder),
    String(StringBuilder),
    /// JSON text of any value.
    Json(StringBuilder),
    Datetime(TimestampMillisecondBuilder),
    Map(Box<MapBuilder<StringBuilder, StringBuilder>>),
    /// Children are `len() <= validity.len()`: the missing entries are nulls, added when needed.
    Struct {
        fields: Fields,
        children: Vec<Builder>,
        validity: NullBufferBuilder,
        /// The field of each member of the previous record, in the order they came: records of
        /// one source mostly have the same members in the same order, so the field a key names
        /// is usually found with one comparison instead of a binary search.
        order: Vec<usize>,
    },
    List {
        field: FieldRef,
        child: Box<Builder>,
        offsets: Vec<i32>,
        validity: NullBufferBuilder,
    },
}

impl Builder {
    fn for_struct(columns: &[Column], fields: &Fields, capacity: usize) -> Builder {
        Builder::Struct {
            fields: fields.clone(),
            children: columns
                .iter()
                .zip(fields.iter())
                .map(|(c, f)| Builder::new(c, f.data_type(), capacity))
                .collect(),
            validity: NullBufferBuilder::new(capacity),
            order: Vec::new(),
        }
    }

    fn new(column: &Column, data_type: &DataType, capacity: usize) -> Builder {
        if let (true, DataType::List(field)) = (column.is_array, data_type) {
            let item = Column {
                is_array: false,
                ..column.clone()
            };
            return Builder::List {
                field: field.clone(),
                child: Box::new(Builder::new(&item, field.data_type(), 0)),
                offsets: vec![0],
                validity: NullBufferBuilder::new(capacity),
            };
        }
        // Sparse columns start small: most of a wide table is null in most records.
        let capacity = capacity.min(1024);
        match (&column.kind, data_type) {
            (ColumnKind::Struct(members), DataType::Struct(fields)) => {
                Builder::for_struct(members, fields, capacity)
            }
            (ColumnKind::Map, _) => Builder::Map(Box::new(MapBuilder::new(
                Some(MapFieldNames {
                    entry: "key_value".into(),
                    key: "key".into(),
                    value: "value".into(),
                }),
                StringBuilder::new(),
                StringBuilder::new(),
            ))),
            (ColumnKind::Json, _) => Builder::Json(StringBuilder::with_capacity(capacity, 0)),
            (ColumnKind::String, _) => Builder::String(StringBuilder::with_capacity(capacity, 0)),
            (ColumnKind::Integer, _) => Builder::Integer(Int32Builder::with_capacity(capacity)),
            (ColumnKind::Long, _) => Builder::Long(Int64Builder::with_capacity(capacity)),
            (ColumnKind::Float, _) => Builder::Float(Float64Builder::with_capacity(capacity)),
            (ColumnKind::Boolean, _) => Builder::Boolean(BooleanBuilder::with_capacity(capacity)),
            (ColumnKind::Datetime, _) => Builder::Datetime(
                TimestampMillisecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            ),
            (ColumnKind::Struct(_), other) => unreachable!("struct column typed {other}"),
        }
    }

    /// Entries so far.
    fn len(&self) -> usize {
        use arrow_array::builder::ArrayBuilder;
        match self {
            Builder::Boolean(b) => b.len(),
            Builder::Integer(b) => b.len(),
            Builder::Long(b) => b.len(),
            Builder::Float(b) => b.len(),
            Builder::String(b) | Builder::Json(b) => b.len(),
            Builder::Datetime(b) => b.len(),
            Builder::Map(b) => b.len(),
            Builder::Struct { validity, .. } | Builder::List { validity, .. } => validity.len(),
        }
    }

    /// Appends nulls until there are `n` entries.
    fn pad_to(&mut self, n: usize) {
        let missing = n.saturating_sub(self.len());
        if missing == 0 {
            return;
        }
        match self {
            Builder::Boolean(b) => b.append_nulls(missing),
            Builder::Integer(b) => b.append_nulls(missing),
            Builder::Long(b) => b.append_nulls(missing),
            Builder::Float(b) => b.append_nulls(missing),
            Builder::String(b) | Builder::Json(b) => b.append_nulls(missing),
            Builder::Datetime(b) => b.append_nulls(missing),
            Builder::Map(b) => {
                for _ in 0..missing {
                    b.append(false).expect("keys and values stay aligned");
                }
            }
            Builder::Struct { validity, .. } => validity.append_n_nulls(missing),
            Builder::List {
                offsets, validity, ..
            } => {
                let end = *offsets.last().expect("offsets start at 0");
                offsets.extend(std::iter::repeat_n(end, missing));
                validity.append_n_nulls(missing);
            }
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Boolean(b) => Arc::new(b.finish()),
            Builder::Integer(b) => Arc::new(b.finish()),
            Builder::Long(b) => Arc::new(b.finish()),
            Builder::Float(b) => Arc::new(b.finish()),
            Builder::String(b) | Builder::Json(b) => Arc::new(b.finish()),
            Builder::Datetime(b) => Arc::new(b.finish()),
            Builder::Map(b) => Arc::new(b.finish()),
            Builder::Struct {
                fields,
                children,
                validity,
                ..
            } => {
                let len = validity.len();
                let arrays: Vec<ArrayRef> = children
                    .iter_mut()
                    .map(|c| {
                        c.pad_to(len);
                        c.finish()
                    })
                    .collect();
                Arc::new(StructArray::new(fields.clone(), arrays, validity.finish()))
            }
            Builder::List {
                field,
                child,
                offsets,
                validity,
            } => {
                let values = child.finish();
                let offsets = OffsetBuffer::new(std::mem::replace(offsets, vec![0]).into());
                Arc::new(ListArray::new(
                    field.clone(),
                    offsets,
                    values,
                    validity.finish(),
                ))
            }
        }
    }
}

/// One value to parse into one builder; `name` is the attribute, for messages.
struct Slot<'b> {
    builder: &'b mut Builder,
    name: &'b str,
}

impl Slot<'_> {
    fn wrong<E: serde::de::Error>(&self, found: fmt::Arguments<'_>) -> E {
        let want = match self.builder {
            Builder::Boolean(_) => "a boolean",
            Builder::Integer(_) => "a 32-bit integer",
            Builder::Long(_) => "a 64-bit integer",
            Builder::Float(_) => "a number",
            Builder::String(_) => "a string",
            Builder::Json(_) => "JSON",
            Builder::Datetime(_) => "an RFC 3339 datetime",
            Builder::Map(_) | Builder::Struct { .. } => "an object",
            Builder::List { .. } => "an array",
        };
        E::custom(format_args!(
            "`{}` must be {want}, found {found}",
            self.name
        ))
    }
}

impl<'de> DeserializeSeed<'de> for Slot<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if let Builder::Json(b) = self.builder {
            let raw = <&RawValue>::deserialize(d)?;
            match raw.get() {
                "null" => b.append_null(),
                text => b.append_value(text),
            }
            return Ok(());
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Slot<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a value for `{}`", self.name)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        let n = self.builder.len() + 1;
        self.builder.pad_to(n);
        Ok(())
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<(), E> {
        match self.builder {
            Builder::Boolean(b) => b.append_value(v),
            _ => return Err(self.wrong(format_args!("{v}"))),
        }
        Ok(())
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        match self.builder {
            Builder::Integer(b) => match i32::try_from(v) {
                Ok(v) => b.append_value(v),
                Err(_) => return Err(self.wrong(format_args!("{v}"))),
            },
            Builder::Long(b) => b.append_value(v),
            Builder::Datetime(b) => b.append_value(v),
            Builder::Float(b) => b.append_value(v as f64),
            _ => return Err(self.wrong(format_args!("{v}"))),
        }
        Ok(())
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        match i64::try_from(v) {
            Ok(v) => return self.visit_i64(v),
            Err(_) => match self.builder {
                Builder::Float(b) => b.append_value(v as f64),
                _ => return Err(self.wrong(format_args!("{v}"))),
            },
        }
        Ok(())
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        match self.builder {
            Builder::Float(b) => b.append_value(v),
            _ => return Err(self.wrong(format_args!("{v}"))),
        }
        Ok(())
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        match self.builder {
            Builder::String(b) => b.append_value(v),
            Builder::Datetime(b) => match parse_rfc3339_ms(v) {
                Some(ms) => b.append_value(ms),
                None => return Err(self.wrong(format_args!("{v:?}"))),
            },
            _ => return Err(self.wrong(format_args!("{v:?}"))),
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Builder::List {
            child,
            offsets,
            validity,
            ..
        } = self.builder
        else {
            return Err(self.wrong(format_args!("an array")));
        };
        let mut items = 0;
        while seq
            .next_element_seed(Slot {
                builder: child,
                name: self.name,
            })?
            .is_some()
        {
            items += 1;
        }
        let end = offsets.last().expect("offsets start at 0") + items;
        offsets.push(end);
        validity.append_non_null();
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        match self.builder {
            Builder::Struct {
                fields,
                children,
                validity,
                order,
            } => {
                let row = validity.len();
                let mut position = 0;
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    let hinted = order
                        .get(position)
                        .copied()
                        .filter(|&i| fields[i].name().as_str() == &*key);
                    let found = match hinted {
                        Some(i) => Ok(i),
                        None => fields.binary_search_by(|f| f.name().as_str().cmp(&key)),
                    };
                    let Ok(i) = found else {
                        let value = map.next_value::<&RawValue>()?;
                        if value.get() == "null" {
                            continue;
                        }
                        return Err(A::Error::custom(format_args!(
                            "`{key}` has no column in this table (not declared by the plugin)"
                        )));
                    };
                    match order.get_mut(position) {
                        Some(slot) => *slot = i,
                        None => order.push(i),
                    }
                    position += 1;
                    let child = &mut children[i];
                    if child.len() > row {
                        return Err(A::Error::custom(format_args!("`{key}` appears twice")));
                    }
                    child.pad_to(row);
                    map.next_value_seed(Slot {
                        builder: child,
                        name: fields[i].name(),
                    })?;
                }
                validity.append_non_null();
                Ok(())
            }
            Builder::Map(b) => {
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    let value = map.next_value::<&RawValue>()?;
                    let text = value.get();
                    if text == "null" {
                        continue;
                    }
                    b.keys().append_value(&key);
                    if text.starts_with('"') {
                        let Key(s) = serde_json::from_str(text).map_err(A::Error::custom)?;
                        b.values().append_value(s);
                    } else {
                        b.values().append_value(text);
                    }
                }
                b.append(true).expect("keys and values stay aligned");
                Ok(())
            }
            _ => Err(self.wrong(format_args!("an object"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int32Type, Int64Type};
    use arrow_array::Array;

    fn col(name: &str, kind: ColumnKind, is_array: bool) -> Column {
        Column {
            name: name.into(),
            kind,
            is_array,
            required: false,
        }
    }

    fn table() -> (SchemaRef, Vec<Column>) {
        let columns = vec![
            col(
                "api",
                ColumnKind::Struct(vec![
                    col("operation", ColumnKind::String, false),
                    col("request", ColumnKind::Json, false),
                ]),
                false,
            ),
            col("ports", ColumnKind::Integer, true),
            col("time", ColumnKind::Long, false),
            col("time_dt", ColumnKind::Datetime, false),
            col("unmapped", ColumnKind::Map, false),
        ];
        (crate::lake::schema::arrow_schema(&columns, vec![]), columns)
    }

    #[test]
    fn members_land_in_their_columns_whatever_their_order() {
        let (schema, columns) = table();
        let records = [
            r#"{"time": 1, "time_dt": "1970-01-01T00:00:00.001Z", "ports": [1]}"#,
            r#"{"ports": [2], "time": 2, "time_dt": "1970-01-01T00:00:00.002Z"}"#,
            r#"{"time_dt": "1970-01-01T00:00:00.003Z", "ports": [3], "time": 3}"#,
            r#"{"time": 4, "time_dt": "1970-01-01T00:00:00.004Z", "ports": [4]}"#,
        ];
        let batch = build(&schema, &columns, records.iter().copied()).unwrap();
        let time = batch.column(2).as_primitive::<Int64Type>();
        assert_eq!(time.values(), &[1, 2, 3, 4]);
        let dt = batch
            .column(3)
            .as_primitive::<arrow_array::types::TimestampMillisecondType>();
        assert_eq!(dt.values(), &[1, 2, 3, 4]);
        let ports = batch.column(1).as_list::<i32>();
        let first: Vec<i32> = (0..4)
            .map(|row| ports.value(row).as_primitive::<Int32Type>().value(0))
            .collect();
        assert_eq!(first, [1, 2, 3, 4]);
    }

    #[test]
    fn sparse_records_fill_every_column_with_nulls_where_absent() {
        let (schema, columns) = table();
        let records = [
            r#"{"time": 1, "api": {"operation": "Get", "request": {"a": [1, 2]}}, "unmapped": {"k": "v", "n": 3, "z": null}}"#,
            r#"{"time": 2}"#,
            r#"{"time": 3, "ports": [80, 443], "time_dt": "2024-05-01T00:00:00Z", "api": null}"#,
            r#"{"time": 4, "api": {"request": "text"}}"#,
        ];
        let batch = build(&schema, &columns, records.iter().copied()).unwrap();
        assert_eq!(batch.num_rows(), 4);
        let time = batch.column(2).as_primitive::<Int64Type>();
        assert_eq!(time.values(), &[1, 2, 3, 4]);
        let api = batch.column(0).as_struct();
        assert!(api.is_valid(0) && api.is_null(1) && api.is_null(2) && api.is_valid(3));
        let op = api.column(0).as_string::<i32>();
        assert_eq!(op.value(0), "Get");
        assert!(op.is_null(3));
        let request = api.column(1).as_string::<i32>();
        assert_eq!(request.value(0), r#"{"a": [1, 2]}"#);
        assert_eq!(request.value(3), r#""text""#);
        let ports = batch.column(1).as_list::<i32>();
        assert!(ports.is_null(0) && ports.is_valid(2));
        assert_eq!(
            ports.value(2).as_primitive::<Int32Type>().values(),
            &[80, 443]
        );
        let dt = batch
            .column(3)
            .as_primitive::<arrow_array::types::TimestampMillisecondType>();
        assert_eq!(dt.value(2), 1_714_521_600_000);
        let unmapped = batch.column(4).as_map();
        assert_eq!(unmapped.value(0).len(), 2, "null values are left out");
        assert_eq!(unmapped.value(0).column(1).as_string::<i32>().value(1), "3");
        assert!(unmapped.is_null(1));
    }

    #[test]
    fn escapes_nesting_numbers_and_whitespace_are_read_as_json_means_them() {
        let (schema, columns) = table();
        let records = [
            // Escaped quotes, backslashes and \u escapes in keys and values; braces, brackets and
            // quotes inside strings of a JSON column; whitespace everywhere JSON allows it.
            r#" { "api" : { "operation" : "say \"hi\" \\ \u00e9" , "request" : {"s": "}]\"[{", "n": [-1.5e3, true, null]} } , "time" : -7 , "unmapped" : { "k\"ey" : "v\nw" , "f" : 2.5 } } "#,
            r#"{"time":9007199254740993,"ports":[ ],"api":{"request":"a\"b"}}"#,
            r#"{"time":-9223372036854775808}"#,
            r#"{"time":9223372036854775807}"#,
        ];
        let batch = build(&schema, &columns, records.iter().copied()).unwrap();
        let api = batch.column(0).as_struct();
        assert_eq!(
            api.column(0).as_string::<i32>().value(0),
            "say \"hi\" \\ \u{e9}"
        );
        let request = api.column(1).as_string::<i32>();
        assert_eq!(
            request.value(0),
            r#"{"s": "}]\"[{", "n": [-1.5e3, true, null]}"#
        );
        assert_eq!(request.value(1), r#""a\"b""#);
        let time = batch.column(2).as_primitive::<Int64Type>();
        assert_eq!(
            time.values(),
            &[-7, 9_007_199_254_740_993, i64::MIN, i64::MAX]
        );
        let ports = batch.column(1).as_list::<i32>();
        assert!(ports.is_null(0) && ports.is_valid(1) && ports.value(1).is_empty());
        let unmapped = batch.column(4).as_map();
        let entry = unmapped.value(0);
        let keys = entry.column(0).as_string::<i32>();
        let values = entry.column(1).as_string::<i32>();
        assert_eq!((keys.value(0), values.value(0)), ("k\"ey", "v\nw"));
        assert_eq!((keys.value(1), values.value(1)), ("f", "2.5"));
    }

    #[test]
    fn text_that_is_not_json_is_an_error_not_a_panic() {
        let (schema, columns) = table();
        for text in [
            "",
            "{",
            r#"{"time": 1"#,
            r#"{"time": 1,"#,
            r#"{"time" 1}"#,
            r#"{"api": {"operation": "x}"#,
            r#"{"api": {"request": {"a": [1, 2}"#,
            r#"{"ports": [1, 2"#,
            r#"{"time": 1} x"#,
            r#"{"time": 1.5}"#,
            r#"{time: 1}"#,
            "[1]",
        ] {
            assert!(
                build(&schema, &columns, [text].into_iter()).is_err(),
                "{text:?} was accepted"
            );
        }
    }

    #[test]
    fn records_that_do_not_fit_are_named() {
        let (schema, columns) = table();
        let err = |records: &[&str]| build(&schema, &columns, records.iter().copied()).unwrap_err();
        let e = err(&[r#"{"time": 1}"#, r#"{"time": 2, "colour": "red"}"#]);
        assert_eq!(e.index, 1);
        assert!(e.reason.contains("`colour` has no column"), "{e:?}");
        let e = err(&[r#"{"time": "soon"}"#]);
        assert!(
            e.reason.contains("`time` must be a 64-bit integer"),
            "{e:?}"
        );
        let e = err(&[r#"{"time": 1, "ports": [99999999999]}"#]);
        assert!(
            e.reason.contains("`ports` must be a 32-bit integer"),
            "{e:?}"
        );
        let e = err(&[r#"{"time": 1, "time": 2}"#]);
        assert!(e.reason.contains("appears twice"), "{e:?}");
        // A member that is null where no column exists is nothing to store.
        assert!(build(
            &schema,
            &columns,
            [r#"{"time": 1, "colour": null}"#].into_iter()
        )
        .is_ok());
    }
}
