//! Turns OCSF records (JSON text, already validated) into one Arrow record batch with the
//! table's fixed schema. Columns are built straight from the parsed values; a member without a
//! column is an error, never silently dropped.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, MapBuilder, MapFieldNames,
    StringBuilder, TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, ListArray, RecordBatch, StructArray};
use arrow_buffer::{NullBufferBuilder, OffsetBuffer};
use arrow_schema::{DataType, FieldRef, Fields, SchemaRef};
use lakegate_plugin_sdk::host::columns::{Column, ColumnKind};
use lakegate_plugin_sdk::ocsf::time::parse_rfc3339_ms;
use serde_json::Value;

/// A record that does not fit its table: which one and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// Index of the record in the input slice.
    pub index: usize,
    /// The attribute path and what is wrong.
    pub reason: String,
}

/// Builds a batch from records in order. `columns` are the ones `schema` was made from.
pub fn build<'a>(
    schema: &SchemaRef,
    columns: &[Column],
    records: impl ExactSizeIterator<Item = &'a str>,
) -> Result<RecordBatch, RowError> {
    let mut root = Builder::for_struct(columns, schema.fields(), records.len());
    for (index, text) in records.enumerate() {
        let value: Value = serde_json::from_str(text).map_err(|e| RowError {
            index,
            reason: format!("not JSON: {e}"),
        })?;
        if !value.is_object() {
            return Err(RowError {
                index,
                reason: "not a JSON object".into(),
            });
        }
        root.append(Some(&value), "")
            .map_err(|reason| RowError { index, reason })?;
    }
    let Builder::Struct { children, .. } = &mut root else {
        unreachable!("the root is a struct")
    };
    let arrays: Vec<ArrayRef> = children.iter_mut().map(Builder::finish).collect();
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
    fn for_struct(columns: &[Column], fields: &Fields, capacity: usize) -> Builder {
        Builder::Struct {
            fields: fields.clone(),
            children: columns
                .iter()
                .zip(fields.iter())
                .map(|(c, f)| Builder::new(c, f.data_type(), capacity))
                .collect(),
            validity: NullBufferBuilder::new(capacity),
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
                child: Box::new(Builder::new(&item, field.data_type(), capacity)),
                offsets: vec![0],
                validity: NullBufferBuilder::new(capacity),
            };
        }
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

    /// Appends one value (`None` or JSON null: a null). `path` names it in errors.
    fn append(&mut self, value: Option<&Value>, path: &str) -> Result<(), String> {
        let value = value.filter(|v| !v.is_null());
        let wrong = |what: &str| format!("`{path}` must be {what}, found {}", short(value));
        match self {
            Builder::Boolean(b) => match value {
                None => b.append_null(),
                Some(Value::Bool(v)) => b.append_value(*v),
                Some(_) => return Err(wrong("a boolean")),
            },
            Builder::Integer(b) => match value {
                None => b.append_null(),
                Some(v) => b.append_value(
                    v.as_i64()
                        .and_then(|n| i32::try_from(n).ok())
                        .ok_or_else(|| wrong("a 32-bit integer"))?,
                ),
            },
            Builder::Long(b) => match value {
                None => b.append_null(),
                Some(v) => b.append_value(v.as_i64().ok_or_else(|| wrong("a 64-bit integer"))?),
            },
            Builder::Float(b) => match value {
                None => b.append_null(),
                Some(v) => b.append_value(v.as_f64().ok_or_else(|| wrong("a number"))?),
            },
            Builder::String(b) => match value {
                None => b.append_null(),
                Some(Value::String(s)) => b.append_value(s),
                Some(_) => return Err(wrong("a string")),
            },
            Builder::Json(b) => match value {
                None => b.append_null(),
                Some(v) => b.append_value(v.to_string()),
            },
            Builder::Datetime(b) => match value {
                None => b.append_null(),
                Some(Value::String(s)) => b.append_value(
                    parse_rfc3339_ms(s).ok_or_else(|| wrong("an RFC 3339 datetime"))?,
                ),
                Some(v) => b.append_value(v.as_i64().ok_or_else(|| wrong("a datetime"))?),
            },
            Builder::Map(b) => match value {
                None => b.append(false).expect("keys and values stay aligned"),
                Some(Value::Object(members)) => {
                    for (k, v) in members {
                        if v.is_null() {
                            continue;
                        }
                        b.keys().append_value(k);
                        match v {
                            Value::String(s) => b.values().append_value(s),
                            other => b.values().append_value(other.to_string()),
                        }
                    }
                    b.append(true).expect("keys and values stay aligned");
                }
                Some(_) => return Err(wrong("an object")),
            },
            Builder::Struct {
                fields,
                children,
                validity,
            } => match value {
                None => {
                    validity.append_null();
                    for child in children {
                        child.append(None, path)?;
                    }
                }
                Some(Value::Object(members)) => {
                    validity.append_non_null();
                    let mut used = 0;
                    for (field, child) in fields.iter().zip(children.iter_mut()) {
                        let member = members.get(field.name());
                        used += usize::from(member.is_some_and(|v| !v.is_null()));
                        let child_path = if path.is_empty() {
                            field.name().clone()
                        } else {
                            format!("{path}.{}", field.name())
                        };
                        child.append(member, &child_path)?;
                    }
                    if used != members.values().filter(|v| !v.is_null()).count() {
                        let extra = members
                            .iter()
                            .find(|(k, v)| !v.is_null() && fields.find(k).is_none())
                            .map(|(k, _)| k.as_str())
                            .unwrap_or("?");
                        return Err(format!(
                            "`{}` has no column in this table (not declared by the plugin)",
                            if path.is_empty() {
                                extra.to_string()
                            } else {
                                format!("{path}.{extra}")
                            }
                        ));
                    }
                }
                Some(_) => return Err(wrong("an object")),
            },
            Builder::List {
                child,
                offsets,
                validity,
                ..
            } => match value {
                None => {
                    validity.append_null();
                    offsets.push(*offsets.last().expect("offsets start at 0"));
                }
                Some(Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        child.append(Some(item), &format!("{path}[{i}]"))?;
                    }
                    validity.append_non_null();
                    let end = offsets.last().expect("offsets start at 0") + items.len() as i32;
                    offsets.push(end);
                }
                Some(_) => return Err(wrong("an array")),
            },
        }
        Ok(())
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
            } => {
                let arrays: Vec<ArrayRef> = children.iter_mut().map(Builder::finish).collect();
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

fn short(value: Option<&Value>) -> String {
    let text = value.map_or("null".to_string(), Value::to_string);
    let cut: String = text.chars().take(40).collect();
    if cut.len() < text.len() {
        format!("{cut}...")
    } else {
        cut
    }
}
