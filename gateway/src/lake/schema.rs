//! From the columns a plugin can fill ([`Column`]) to the Arrow schema of its Parquet files and
//! the Hive types of its catalog table. Fixed per (source, class, OCSF version): never inferred
//! from data, so every file of a table has the same schema.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use lakegate_plugin_sdk::host::columns::{Column, ColumnKind};

/// The Arrow schema for a class's columns.
pub fn arrow_schema(columns: &[Column], metadata: Vec<(String, String)>) -> SchemaRef {
    Arc::new(Schema::new_with_metadata(
        columns.iter().map(field).collect::<Vec<_>>(),
        metadata.into_iter().collect::<HashMap<_, _>>(),
    ))
}

fn field(column: &Column) -> Field {
    let item = data_type(&column.kind);
    let data_type = if column.is_array {
        DataType::List(Arc::new(Field::new("element", item, true)))
    } else {
        item
    };
    Field::new(&column.name, data_type, !column.required)
}

fn data_type(kind: &ColumnKind) -> DataType {
    match kind {
        ColumnKind::Struct(members) => {
            DataType::Struct(members.iter().map(field).collect::<Fields>())
        }
        ColumnKind::Map => DataType::Map(
            Arc::new(Field::new(
                "key_value",
                DataType::Struct(Fields::from(vec![
                    Field::new("key", DataType::Utf8, false),
                    Field::new("value", DataType::Utf8, true),
                ])),
                false,
            )),
            false,
        ),
        ColumnKind::Json | ColumnKind::String => DataType::Utf8,
        ColumnKind::Integer => DataType::Int32,
        ColumnKind::Long => DataType::Int64,
        ColumnKind::Float => DataType::Float64,
        ColumnKind::Boolean => DataType::Boolean,
        ColumnKind::Datetime => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
    }
}

/// The Hive/Glue type of an Arrow type, as Glue's `Column.Type` spells it.
pub fn glue_type(data_type: &DataType) -> String {
    match data_type {
        DataType::Boolean => "boolean".into(),
        DataType::Int32 => "int".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Float64 => "double".into(),
        DataType::Utf8 => "string".into(),
        DataType::Timestamp(..) => "timestamp".into(),
        DataType::List(item) => format!("array<{}>", glue_type(item.data_type())),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) => format!(
                "map<{},{}>",
                glue_type(kv[0].data_type()),
                glue_type(kv[1].data_type())
            ),
            other => glue_type(other),
        },
        DataType::Struct(fields) => format!(
            "struct<{}>",
            fields
                .iter()
                .map(|f| format!("{}:{}", f.name(), glue_type(f.data_type())))
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => unreachable!("lake schemas use no {other} columns"),
    }
}

/// Leaf columns of a schema (what Parquet stores as column chunks).
pub fn leaf_count(data_type: &DataType) -> usize {
    match data_type {
        DataType::Struct(fields) => fields.iter().map(|f| leaf_count(f.data_type())).sum(),
        DataType::List(item) => leaf_count(item.data_type()),
        DataType::Map(..) => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glue_types_nest() {
        let t = DataType::Struct(Fields::from(vec![
            Field::new("ip", DataType::Utf8, true),
            Field::new(
                "ports",
                DataType::List(Arc::new(Field::new("element", DataType::Int32, true))),
                true,
            ),
        ]));
        assert_eq!(glue_type(&t), "struct<ip:string,ports:array<int>>");
        let map = data_type(&ColumnKind::Map);
        assert_eq!(glue_type(&map), "map<string,string>");
        assert_eq!(leaf_count(&t), 2);
        assert_eq!(glue_type(&data_type(&ColumnKind::Datetime)), "timestamp");
    }
}
