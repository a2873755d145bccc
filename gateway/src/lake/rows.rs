//! Turns validated OCSF records into one Arrow record batch with the table's fixed schema.
//! Records are rows ([`lakegate_plugin_sdk::row`]): members named by attribute index with typed
//! values, which the table's layout places among its columns, so appending one is a walk with
//! no parse and no lookup by name, and no work is done for the columns a record does not set
//! (absent values are filled in as nulls in bulk, when a later record sets the column or at the
//! end).

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, MapBuilder, MapFieldNames,
    StringBuilder, TimestampMillisecondBuilder,
};
use arrow_array::{Array, ArrayRef, ListArray, RecordBatch, StructArray};
use arrow_buffer::{bit_util, NullBufferBuilder, OffsetBuffer};
use arrow_schema::{DataType, FieldRef, Fields, SchemaRef};
use lakegate_plugin_sdk::host::columns::{Caption, Column, ColumnKind, Layout};
use lakegate_plugin_sdk::ocsf::time::parse_rfc3339_ms;
use lakegate_plugin_sdk::row::{Malformed, RowReader, Tag};

/// A row that does not fit its table (a gateway bug: the validator wrote it for this table):
/// which one and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// Index of the record in the input.
    pub index: usize,
    /// The attribute and what is wrong.
    pub reason: String,
}

/// How many bytes each string column of a table took in its last batch, per 256 rows, in the
/// order [`build`] makes its builders: the next batch's string builders start with that much
/// room (for as many rows), so they need not grow by copying what they hold.
#[derive(Debug, Default)]
pub struct StringSizes(Vec<u32>);

/// Builds a batch from rows in order. `columns` are the ones `schema` was made from, and
/// `layout` places the rows' members among them. `sizes` are the table's [`StringSizes`] (taken
/// as room for strings up to `max_bytes` a column, then updated to this batch's).
pub fn build<'a>(
    schema: &SchemaRef,
    columns: &[Column],
    layout: &Layout,
    rows: impl ExactSizeIterator<Item = &'a [u8]>,
    sizes: &mut StringSizes,
    max_bytes: usize,
) -> Result<RecordBatch, RowError> {
    let count = rows.len();
    let mut room = sizes
        .0
        .iter()
        .map(|&per_256| (per_256 as usize * count / 256).min(max_bytes));
    let mut root = Builder::for_struct(columns, schema.fields(), count, &mut room);
    let Builder::Struct { children, .. } = &mut root else {
        unreachable!("the root is a struct")
    };
    for (index, row) in rows.enumerate() {
        let mut reader = RowReader::new(row);
        reader
            .class()
            .and_then(|_| object(children, index, &mut reader, layout))
            .and_then(|()| {
                if reader.is_done() {
                    Ok(())
                } else {
                    Err(Malformed)
                }
            })
            .map_err(|e| RowError {
                index,
                reason: format!("{e}: a gateway bug, as the validator wrote it for this table"),
            })?;
    }
    fill_captions(children, layout, count);
    sizes.0.clear();
    for child in children.iter() {
        child.string_sizes(count, &mut sizes.0);
    }
    let arrays: Vec<ArrayRef> = children
        .iter_mut()
        .map(|c| {
            c.pad_to(count);
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
    },
    List {
        field: FieldRef,
        child: Box<Builder>,
        offsets: Vec<i32>,
        validity: NullBufferBuilder,
    },
}

impl Builder {
    /// A struct's builder with room for `capacity` entries, and for the string bytes `room`
    /// gives its string columns in order (none once it runs out).
    fn for_struct(
        columns: &[Column],
        fields: &Fields,
        capacity: usize,
        room: &mut impl Iterator<Item = usize>,
    ) -> Builder {
        Builder::Struct {
            fields: fields.clone(),
            children: columns
                .iter()
                .zip(fields.iter())
                .map(|(c, f)| Builder::new(c, f.data_type(), capacity, room))
                .collect(),
            validity: NullBufferBuilder::new(capacity),
        }
    }

    fn new(
        column: &Column,
        data_type: &DataType,
        capacity: usize,
        room: &mut impl Iterator<Item = usize>,
    ) -> Builder {
        if let (true, DataType::List(field)) = (column.is_array, data_type) {
            let item = Column {
                is_array: false,
                ..column.clone()
            };
            return Builder::List {
                field: field.clone(),
                child: Box::new(Builder::new(&item, field.data_type(), 0, room)),
                offsets: vec![0],
                validity: NullBufferBuilder::new(capacity),
            };
        }
        // Every column ends up with an entry per row (absent values are padded in as nulls), so
        // room for all of them up front saves the copies of growing; string bytes get the room
        // the table's last batch took.
        match (&column.kind, data_type) {
            (ColumnKind::Struct(members), DataType::Struct(fields)) => {
                Builder::for_struct(members, fields, capacity, room)
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
            (ColumnKind::Json, _) => Builder::Json(strings(capacity, room)),
            (ColumnKind::String, _) => Builder::String(strings(capacity, room)),
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

    /// Notes the bytes per 256 of `rows` of each string column, in the order [`Builder::new`]
    /// makes them.
    fn string_sizes(&self, rows: usize, sizes: &mut Vec<u32>) {
        match self {
            Builder::String(b) | Builder::Json(b) => {
                let per_256 = b.values_slice().len() * 256 / rows.max(1);
                sizes.push(u32::try_from(per_256).unwrap_or(u32::MAX));
            }
            Builder::Struct { children, .. } => {
                children.iter().for_each(|c| c.string_sizes(rows, sizes))
            }
            Builder::List { child, .. } => child.string_sizes(rows, sizes),
            _ => {}
        }
    }

    /// Appends nulls until there are `n` entries.
    fn pad_to(&mut self, n: usize) {
        let missing = n.saturating_sub(self.len());
        if missing > 0 {
            self.pad(missing);
        }
    }

    /// Appends `missing` nulls.
    fn pad(&mut self, missing: usize) {
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

impl Builder {
    /// Appends one value of this column from `row`, whose tag has been read; `layout` places
    /// the members of a struct's objects.
    fn append(
        &mut self,
        row: &mut RowReader<'_>,
        tag: Tag,
        layout: &Layout,
    ) -> Result<(), Malformed> {
        match (self, tag) {
            (Builder::Boolean(b), Tag::Bool) => b.append_value(row.boolean()?),
            (Builder::Integer(b), Tag::Int) => {
                b.append_value(i32::try_from(row.int()?).map_err(|_| Malformed)?)
            }
            (Builder::Long(b), Tag::Int) => b.append_value(row.int()?),
            (Builder::Float(b), Tag::Float) => b.append_value(row.float()?),
            (Builder::Float(b), Tag::Int) => b.append_value(row.int()? as f64),
            (Builder::String(b), Tag::String) => b.append_value(row.text()?),
            (Builder::Datetime(b), Tag::Int) => b.append_value(row.int()?),
            (Builder::Datetime(b), Tag::String) => {
                b.append_value(parse_rfc3339_ms(row.text()?).ok_or(Malformed)?)
            }
            (Builder::Json(b), Tag::Json) => b.append_value(row.text()?),
            (Builder::Json(b), Tag::Null) => b.append_null(),
            (Builder::Map(b), Tag::Map) => {
                for _ in 0..row.count()? {
                    b.keys().append_value(row.text()?);
                    b.values().append_value(row.text()?);
                }
                b.append(true).map_err(|_| Malformed)?;
            }
            (
                Builder::Struct {
                    children, validity, ..
                },
                Tag::Object,
            ) => {
                object(children, validity.len(), row, layout)?;
                validity.append_non_null();
            }
            (
                Builder::List {
                    child,
                    offsets,
                    validity,
                    ..
                },
                Tag::Array,
            ) => {
                let items = row.count()?;
                for _ in 0..items {
                    let tag = row.tag()?;
                    child.append(row, tag, layout)?;
                }
                let end = offsets.last().expect("offsets start at 0");
                offsets.push(end + i32::try_from(items).map_err(|_| Malformed)?);
                validity.append_non_null();
            }
            _ => return Err(Malformed),
        }
        Ok(())
    }
}

/// A string builder with room for `capacity` entries and the bytes `room` gives next.
fn strings(capacity: usize, room: &mut impl Iterator<Item = usize>) -> StringBuilder {
    StringBuilder::with_capacity(capacity, room.next().unwrap_or(0))
}

/// Appends the members of one object from `row` to `children`, as entry `at` of each: the
/// columns it leaves out are null there. `layout` gives each member's column.
fn object(
    children: &mut [Builder],
    at: usize,
    row: &mut RowReader<'_>,
    layout: &Layout,
) -> Result<(), Malformed> {
    while let Some(index) = row.member()? {
        let slot = layout.slot(index).ok_or(Malformed)?;
        let child = children
            .get_mut(usize::from(slot.position))
            .ok_or(Malformed)?;
        match child.len() {
            len if len > at => return Err(Malformed),
            len if len < at => child.pad(at - len),
            _ => {}
        }
        let tag = row.tag()?;
        child.append(row, tag, &slot.nested)?;
    }
    Ok(())
}

/// Stores, in every caption column of the objects `children` build (`len` entries, `layout`
/// placing their members), the caption of the entry's enum value where the row left the caption
/// out (the SDK's types leave out every caption that is the schema's: the host knows them).
/// Once per batch, column by column: a caption is a function of its enum column.
fn fill_captions(children: &mut [Builder], layout: &Layout, len: usize) {
    for slot in layout.slots() {
        let Some(child) = children.get_mut(usize::from(slot.position)) else {
            continue;
        };
        child.pad_to(len);
        let object = match child {
            Builder::List { child, .. } => child.as_mut(),
            object => object,
        };
        if let Builder::Struct {
            children, validity, ..
        } = object
        {
            fill_captions(children, &slot.nested, validity.len());
        }
    }
    for caption in layout.captions() {
        fill_caption(children, len, caption);
    }
}

/// The caption column of `caption` with the schema's caption wherever no caption was given.
fn fill_caption(children: &mut [Builder], len: usize, caption: &Caption) {
    let Some(name) = children.get_mut(usize::from(caption.name)) else {
        return;
    };
    name.pad_to(len);
    let Builder::String(given) = name else {
        return;
    };
    let given = std::mem::replace(given, StringBuilder::new()).finish();
    let Some(ids) = children.get_mut(usize::from(caption.id)) else {
        return;
    };
    ids.pad_to(len);
    let ids = &*ids;
    let is_set = |bits: Option<&[u8]>, i| bits.is_none_or(|b| bit_util::get_bit(b, i));
    let id = |i: usize| -> Option<i64> {
        match ids {
            Builder::Integer(b) => {
                is_set(b.validity_slice(), i).then(|| i64::from(b.values_slice()[i]))
            }
            Builder::Long(b) => is_set(b.validity_slice(), i).then(|| b.values_slice()[i]),
            _ => None,
        }
    };
    let any_given = given.null_count() < len;
    let mut filled = StringBuilder::with_capacity(len, given.values().len() + len * 8);
    // Enum values come in runs (the same class, activity, severity...): one lookup per run.
    let mut last: Option<(i64, Option<&str>)> = None;
    for i in 0..len {
        if any_given && given.is_valid(i) {
            filled.append_value(given.value(i));
            continue;
        }
        let text = id(i).and_then(|id| match last {
            Some((seen, text)) if seen == id => text,
            _ => {
                let text = caption.values.of(id);
                last = Some((id, text));
                text
            }
        });
        filled.append_option(text);
    }
    children[usize::from(caption.name)] = Builder::String(filled);
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int32Type, Int64Type, TimestampMillisecondType};
    use arrow_array::Array;
    use lakegate_plugin_sdk::host::columns::Table;
    use lakegate_plugin_sdk::host::validate::{schema_1_1_0, Declarations};
    use lakegate_plugin_sdk::ClassDeclaration;

    /// A Network Activity table with scalars, nested objects, lists of strings and of objects,
    /// JSON text and `unmapped`.
    pub(in crate::lake) fn table() -> (Declarations, SchemaRef, Vec<Column>, Layout) {
        let paths = [
            "time",
            "time_dt",
            "severity_id",
            "metadata.version",
            "metadata.profiles",
            "metadata.product.name",
            "metadata.product.vendor_name",
            "src_endpoint.ip",
            "src_endpoint.intermediate_ips",
            "dst_endpoint.ip",
            "dst_endpoint.port",
            "traffic.bytes",
            "enrichments",
            "connection_info.direction_id",
            "connection_info.direction",
            "observables",
            "unmapped",
        ];
        let declarations = Declarations::new(
            schema_1_1_0(),
            &[ClassDeclaration {
                class_uid: 4001,
                attributes: paths.iter().map(|p| p.to_string()).collect(),
            }],
        );
        let Table { columns, layout } = declarations.table(4001).unwrap().clone();
        let schema = crate::lake::schema::arrow_schema(&columns, vec![]);
        (declarations, schema, columns, layout)
    }

    const METADATA: &str =
        r#"{"product": {"name": "VPC", "vendor_name": "AWS"}, "version": "1.1.0"}"#;

    /// A valid record with `metadata` and `members` (JSON object members, comma-first) after
    /// the required ones.
    fn record_with(time: i64, metadata: &str, members: &str) -> String {
        format!(
            r#"{{"class_uid": 4001, "activity_id": 6, "category_uid": 4, "type_uid": 400106, "severity_id": 1, "time": {time}, "metadata": {metadata}, "src_endpoint": {{"ip": "10.0.0.1"}}, "dst_endpoint": {{"ip": "10.0.0.2", "port": 443}}{members}}}"#
        )
    }

    pub(in crate::lake) fn record(time: i64, members: &str) -> String {
        record_with(time, METADATA, members)
    }

    fn batch(records: &[String]) -> RecordBatch {
        let (declarations, schema, columns, layout) = table();
        let mut rows = Vec::new();
        for text in records {
            let mut row = Vec::new();
            schema_1_1_0()
                .validate_row(text, &declarations, &mut row)
                .unwrap_or_else(|v| panic!("{text}: {v:?}"));
            rows.push(row);
        }
        let rows = rows.iter().map(|r| &r[..]);
        build(
            &schema,
            &columns,
            &layout,
            rows,
            &mut StringSizes::default(),
            usize::MAX,
        )
        .unwrap()
    }

    fn strings(array: &dyn Array) -> Vec<Option<&str>> {
        array.as_string::<i32>().iter().collect()
    }

    #[test]
    fn members_land_in_their_columns_whatever_their_order() {
        let records = [
            record(1, r#", "time_dt": "1970-01-01T00:00:00.001Z""#),
            // `class_uid` last: the members before it are checked (and written) once it is read.
            r#"{"dst_endpoint": {"port": 80, "ip": "10.0.0.9"}, "time_dt": "1970-01-01T00:00:00.002Z", "time": 2, "src_endpoint": {"ip": "10.0.0.8"}, "metadata": {"version": "1.1.0", "product": {"vendor_name": "AWS", "name": "VPC"}}, "severity_id": 1, "type_uid": 400106, "category_uid": 4, "activity_id": 6, "class_uid": 4001}"#.to_string(),
            record(3, ""),
        ];
        let batch = batch(&records);
        let time = batch.column_by_name("time").unwrap();
        assert_eq!(time.as_primitive::<Int64Type>().values(), &[1, 2, 3]);
        let dt = batch.column_by_name("time_dt").unwrap();
        let dt = dt.as_primitive::<TimestampMillisecondType>();
        assert_eq!((dt.value(0), dt.value(1), dt.is_null(2)), (1, 2, true));
        assert_eq!(
            batch
                .column_by_name("class_uid")
                .unwrap()
                .as_primitive::<Int32Type>()
                .values(),
            &[4001; 3]
        );
        let dst = batch.column_by_name("dst_endpoint").unwrap();
        let dst = dst.as_struct();
        let port = dst.column_by_name("port").unwrap();
        assert_eq!(port.as_primitive::<Int32Type>().values(), &[443, 80, 443]);
        let ip = dst.column_by_name("ip").unwrap();
        assert_eq!(
            strings(ip),
            [Some("10.0.0.2"), Some("10.0.0.9"), Some("10.0.0.2")]
        );
    }

    #[test]
    fn sparse_records_fill_every_column_with_nulls_where_absent() {
        let records = [
            record_with(
                1,
                r#"{"product": {"name": "VPC", "vendor_name": "AWS"}, "version": "1.1.0", "profiles": ["datetime"]}"#,
                r#", "traffic": {"bytes": 9007199254740993}, "unmapped": {"k": "v", "n": 3, "z": null, "o": {"a": [1]}}, "enrichments": [{"name": "geo", "value": "x", "data": {"a": [1, 2]}}, {"name": "n", "value": "y", "data": "text"}]"#,
            ),
            record(2, r#", "traffic": null, "unmapped": null, "enrichments": []"#),
            record(3, "").replace(
                r#""src_endpoint": {"ip": "10.0.0.1"}"#,
                r#""src_endpoint": {"ip": "10.0.0.1", "intermediate_ips": ["10.1.1.1", "10.1.1.2"]}"#,
            ),
        ];
        let batch = batch(&records);
        assert_eq!(batch.num_rows(), 3);
        let traffic = batch.column_by_name("traffic").unwrap().as_struct();
        assert!(traffic.is_valid(0) && traffic.is_null(1) && traffic.is_null(2));
        let bytes = traffic.column_by_name("bytes").unwrap();
        assert_eq!(
            bytes.as_primitive::<Int64Type>().value(0),
            9_007_199_254_740_993
        );
        let metadata = batch.column_by_name("metadata").unwrap().as_struct();
        let profiles = metadata
            .column_by_name("profiles")
            .unwrap()
            .as_list::<i32>();
        assert!(profiles.is_valid(0) && profiles.is_null(1));
        assert_eq!(strings(&profiles.value(0)), [Some("datetime")]);
        let enrichments = batch
            .column_by_name("enrichments")
            .unwrap()
            .as_list::<i32>();
        assert!(enrichments.is_valid(1) && enrichments.value(1).is_empty());
        assert!(enrichments.is_null(2));
        let first = enrichments.value(0);
        let data = first.as_struct().column_by_name("data").unwrap();
        assert_eq!(strings(data), [Some(r#"{"a": [1, 2]}"#), Some(r#""text""#)]);
        let src = batch.column_by_name("src_endpoint").unwrap().as_struct();
        let hops = src
            .column_by_name("intermediate_ips")
            .unwrap()
            .as_list::<i32>();
        assert!(hops.is_null(0) && hops.is_null(1));
        assert_eq!(
            strings(&hops.value(2)),
            [Some("10.1.1.1"), Some("10.1.1.2")]
        );
        let unmapped = batch.column_by_name("unmapped").unwrap().as_map();
        assert!(unmapped.is_valid(0) && unmapped.is_null(1) && unmapped.is_null(2));
        let entries = unmapped.value(0);
        assert_eq!(
            strings(entries.column(0)),
            [Some("k"), Some("n"), Some("o")]
        );
        assert_eq!(
            strings(entries.column(1)),
            [Some("v"), Some("3"), Some(r#"{"a": [1]}"#)],
            "strings as they are, other values as JSON text, nulls left out"
        );
    }

    #[test]
    fn escapes_and_extremes_are_stored_as_json_means_them() {
        let records = [
            record_with(
                -7,
                r#" { "product" : { "name": "n", "vendor_name" : "say \"hi\" \\ \u00e9" } , "version" : "1.1.0" } "#,
                r#" , "unmapped" : { "k\"ey" : "v\nw" , "f" : 2.5 } , "enrichments" : [ { "name" : "a" , "value" : "b" , "data" : {"s": "}]\"[{", "n": [-1.5e3, true, null]} } ] "#,
            ),
            record(i64::MIN, ""),
            record(i64::MAX, ""),
        ];
        let batch = batch(&records);
        let metadata = batch.column_by_name("metadata").unwrap().as_struct();
        let product = metadata.column_by_name("product").unwrap().as_struct();
        let vendor = product.column_by_name("vendor_name").unwrap();
        assert_eq!(strings(vendor)[0], Some("say \"hi\" \\ \u{e9}"));
        let time = batch.column_by_name("time").unwrap();
        assert_eq!(
            time.as_primitive::<Int64Type>().values(),
            &[-7, i64::MIN, i64::MAX]
        );
        let enrichments = batch
            .column_by_name("enrichments")
            .unwrap()
            .as_list::<i32>();
        let first = enrichments.value(0);
        let data = first.as_struct().column_by_name("data").unwrap();
        assert_eq!(
            strings(data),
            [Some(r#"{"s": "}]\"[{", "n": [-1.5e3, true, null]}"#)]
        );
        let unmapped = batch.column_by_name("unmapped").unwrap().as_map();
        let entries = unmapped.value(0);
        assert_eq!(strings(entries.column(0)), [Some("k\"ey"), Some("f")]);
        assert_eq!(strings(entries.column(1)), [Some("v\nw"), Some("2.5")]);
    }

    #[test]
    fn captions_a_row_leaves_out_are_the_schemas() {
        let records = [
            record(1, ""),
            record(
                2,
                r#", "activity_name": "Bulk transfer", "severity": "Info""#,
            ),
        ];
        let batch = batch(&records);
        let column = |name: &str| {
            strings(batch.column_by_name(name).unwrap())
                .into_iter()
                .map(|s| s.map(str::to_string))
                .collect::<Vec<_>>()
        };
        let both = |s: &str| vec![Some(s.to_string()); 2];
        assert_eq!(column("class_name"), both("Network Activity"));
        assert_eq!(column("category_name"), both("Network Activity"));
        assert_eq!(column("type_name"), both("Network Activity: Traffic"));
        // A caption the row gives is kept as it is.
        assert_eq!(
            column("activity_name"),
            [
                Some("Traffic".to_string()),
                Some("Bulk transfer".to_string())
            ]
        );
        assert_eq!(
            column("severity"),
            [Some("Informational".to_string()), Some("Info".to_string())]
        );
    }

    #[test]
    fn captions_are_the_schemas_in_nested_objects_and_list_items_too() {
        let records = [
            record(
                1,
                r#", "connection_info": {"direction_id": 1}, "observables": [{"name": "a", "type_id": 2}, {"name": "b", "type_id": 1, "type": "own"}]"#,
            ),
            record(2, ""),
            record(
                3,
                r#", "connection_info": {"direction_id": 2, "direction": "custom"}, "observables": [{"name": "c", "type_id": 2}, {"name": "d", "type_id": 99}]"#,
            ),
            record(4, r#", "connection_info": {"direction_id": 99}"#),
        ];
        let batch = batch(&records);
        let connection = batch.column_by_name("connection_info").unwrap().as_struct();
        assert_eq!(
            strings(connection.column_by_name("direction").unwrap()),
            [Some("Inbound"), None, Some("custom"), Some("Other")]
        );
        assert!(connection.is_null(1));
        let observables = batch
            .column_by_name("observables")
            .unwrap()
            .as_list::<i32>();
        assert_eq!(observables.value_offsets(), [0, 2, 2, 4, 4]);
        let items = observables.values().as_struct();
        assert_eq!(
            strings(items.column_by_name("type").unwrap()),
            [
                Some("IP Address"),
                Some("own"),
                Some("IP Address"),
                Some("Other")
            ]
        );
    }

    #[test]
    fn string_sizes_are_each_string_columns_bytes_per_256_rows_in_column_order() {
        let (declarations, schema, columns, layout) = table();
        let rows: Vec<Vec<u8>> = (0..100)
            .map(|t| {
                let text = record(
                    t,
                    r#", "enrichments": [{"name": "n", "value": "v", "data": {}}]"#,
                );
                let mut row = Vec::new();
                schema_1_1_0()
                    .validate_row(&text, &declarations, &mut row)
                    .unwrap();
                row
            })
            .collect();
        let mut sizes = StringSizes::default();
        let build_with = |sizes: &mut StringSizes| {
            let rows = rows.iter().map(|r| &r[..]);
            build(&schema, &columns, &layout, rows, sizes, usize::MAX).unwrap()
        };
        let first = build_with(&mut sizes);
        // The same walk over the finished arrays: strings (JSON text too) and what lists and
        // structs hold, not the keys and values of maps.
        fn walk(array: &dyn Array, rows: usize, out: &mut Vec<u32>) {
            match array.data_type() {
                DataType::Utf8 => {
                    let bytes = array.as_string::<i32>().values().len();
                    out.push((bytes * 256 / rows) as u32);
                }
                DataType::Struct(_) => {
                    for c in array.as_struct().columns() {
                        walk(c.as_ref(), rows, out);
                    }
                }
                DataType::List(_) => walk(array.as_list::<i32>().values().as_ref(), rows, out),
                _ => {}
            }
        }
        let mut expected = Vec::new();
        for column in first.columns() {
            walk(column.as_ref(), 100, &mut expected);
        }
        assert_eq!(sizes.0, expected);
        // "10.0.0.1" and "10.0.0.2" in every row; "n" once in each.
        assert_eq!(expected.iter().filter(|s| **s == 8 * 256).count(), 2);
        assert!(expected.contains(&256));
        // The room changes no value.
        assert_eq!(build_with(&mut sizes), first);
        assert_eq!(sizes.0, expected);
    }

    #[test]
    fn rows_that_do_not_fit_are_errors_not_panics() {
        let (declarations, schema, columns, layout) = table();
        let mut good = Vec::new();
        schema_1_1_0()
            .validate_row(&record(1, ""), &declarations, &mut good)
            .unwrap();
        let mut trailing = good.clone();
        trailing.push(0);
        let mut twice = good.clone();
        twice.truncate(good.len() - 2);
        twice.extend_from_slice(&good);
        let beyond = [0xfe, 0x00, 0, 0, 0, 0];
        for (what, row) in [
            ("empty", &[][..]),
            ("cut short", &good[..good.len() / 2]),
            ("trailing bytes", &trailing[..]),
            ("a member twice", &twice[..]),
            ("no such column", &beyond[..]),
            ("garbage", &[0xff, 0x00, 0x01][..]),
        ] {
            let rows = [&good[..], row].into_iter();
            let mut sizes = StringSizes::default();
            let e = build(&schema, &columns, &layout, rows, &mut sizes, 1 << 20).unwrap_err();
            assert_eq!(e.index, 1, "{what}");
            assert!(e.reason.contains("gateway bug"), "{what}: {e:?}");
        }
        let mut sizes = StringSizes::default();
        let rows = [&good[..]].into_iter();
        assert!(build(&schema, &columns, &layout, rows, &mut sizes, 1 << 20).is_ok());
    }
}
