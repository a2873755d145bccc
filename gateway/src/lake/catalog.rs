//! The embedded catalog: per table (one per custom source, so one per source and class), the
//! Glue `TableInput` and the `PartitionInput`s of every committed partition, stored with the lake
//! in `catalog/<database>/<table>.json`. The shapes are those of Glue's CreateTable and
//! BatchCreatePartition requests, so the AWS backend sends the same documents to Glue.
//! Locations are relative to the lake root (`ext/<source>/...`); on AWS they are prefixed with
//! `s3://<bucket>/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The Glue database of the embedded catalog.
pub const DATABASE: &str = "lakegate";

/// One table document.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct TableDocument {
    pub database_name: String,
    pub table_input: TableInput,
    pub partitions: Vec<PartitionInput>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct TableInput {
    pub name: String,
    pub description: String,
    pub table_type: String,
    pub parameters: BTreeMap<String, String>,
    pub partition_keys: Vec<GlueColumn>,
    pub storage_descriptor: StorageDescriptor,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct StorageDescriptor {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<GlueColumn>,
    pub location: String,
    pub input_format: String,
    pub output_format: String,
    pub serde_info: SerdeInfo,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct SerdeInfo {
    pub serialization_library: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct GlueColumn {
    pub name: String,
    #[serde(rename = "Type")]
    pub ty: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct PartitionInput {
    /// `[region, accountid, eventday]`.
    pub values: Vec<String>,
    pub storage_descriptor: StorageDescriptor,
}

fn parquet_storage(location: String, columns: Vec<GlueColumn>) -> StorageDescriptor {
    StorageDescriptor {
        columns,
        location,
        input_format: "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat".into(),
        output_format: "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat".into(),
        serde_info: SerdeInfo {
            serialization_library: "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                .into(),
        },
    }
}

/// The Glue table name of a custom source, e.g. `ext_aws_cloudtrail_6003`.
pub fn table_name(lake_source: &str) -> String {
    format!(
        "ext_{}",
        lake_source
            .to_ascii_lowercase()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    )
}

/// The catalog of one lake.
pub struct Catalog {
    dir: PathBuf,
    tables: BTreeMap<String, TableDocument>,
}

impl Catalog {
    /// Reads the catalog under `lake/catalog/` (empty if there is none yet; it is created on the
    /// first write).
    pub fn open(lake: &Path) -> std::io::Result<Catalog> {
        let dir = lake.join("catalog").join(DATABASE);
        let mut tables = BTreeMap::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Catalog { dir, tables })
            }
            Err(e) => return Err(e),
        };
        for entry in entries {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                let doc: TableDocument =
                    serde_json::from_slice(&std::fs::read(&path)?).map_err(|e| {
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("{}: {e}", path.display()),
                        )
                    })?;
                tables.insert(doc.table_input.name.clone(), doc);
            }
        }
        Ok(Catalog { dir, tables })
    }

    /// Creates or updates a table definition; writes only when it changed.
    pub fn ensure_table(
        &mut self,
        lake_source: &str,
        description: String,
        parameters: BTreeMap<String, String>,
        columns: Vec<GlueColumn>,
    ) -> std::io::Result<()> {
        let name = table_name(lake_source);
        let key = |n: &str| GlueColumn {
            name: n.into(),
            ty: "string".into(),
        };
        let mut all_parameters = BTreeMap::from([
            ("classification".to_string(), "parquet".to_string()),
            ("EXTERNAL".to_string(), "TRUE".to_string()),
        ]);
        all_parameters.extend(parameters);
        let input = TableInput {
            name: name.clone(),
            description,
            table_type: "EXTERNAL_TABLE".into(),
            parameters: all_parameters,
            partition_keys: vec![key("region"), key("accountid"), key("eventday")],
            storage_descriptor: parquet_storage(format!("ext/{lake_source}/"), columns),
        };
        let doc = self
            .tables
            .entry(name.clone())
            .or_insert_with(|| TableDocument {
                database_name: DATABASE.into(),
                table_input: input.clone(),
                partitions: Vec::new(),
            });
        if doc.table_input != input || !self.dir.join(format!("{name}.json")).exists() {
            doc.table_input = input;
            self.write(&name)?;
        }
        Ok(())
    }

    /// Records a partition of a table, if new.
    pub fn add_partition(
        &mut self,
        lake_source: &str,
        region: &str,
        account: &str,
        day: &str,
    ) -> std::io::Result<()> {
        let name = table_name(lake_source);
        let Some(doc) = self.tables.get_mut(&name) else {
            return Err(std::io::Error::other(format!("no catalog table {name}")));
        };
        let values = vec![region.to_string(), account.to_string(), day.to_string()];
        if doc.partitions.iter().any(|p| p.values == values) {
            return Ok(());
        }
        doc.partitions.push(PartitionInput {
            values,
            storage_descriptor: parquet_storage(
                format!("ext/{lake_source}/region={region}/accountId={account}/eventDay={day}/"),
                Vec::new(),
            ),
        });
        self.write(&name)
    }

    /// A table's document.
    pub fn table(&self, lake_source: &str) -> Option<&TableDocument> {
        self.tables.get(&table_name(lake_source))
    }

    fn write(&self, name: &str) -> std::io::Result<()> {
        let doc = &self.tables[name];
        let path = self.dir.join(format!("{name}.json"));
        let tmp = self.dir.join(format!(".{name}.json.tmp"));
        std::fs::create_dir_all(&self.dir)?;
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(doc).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(&tmp, &path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_and_partitions_persist() {
        let lake = std::env::temp_dir().join(format!("lakegate-catalog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&lake);
        let mut c = Catalog::open(&lake).unwrap();
        let cols = vec![GlueColumn {
            name: "time".into(),
            ty: "bigint".into(),
        }];
        c.ensure_table(
            "aws-vpc-flow-4001",
            "VPC".into(),
            BTreeMap::new(),
            cols.clone(),
        )
        .unwrap();
        c.add_partition("aws-vpc-flow-4001", "us-east-1", "external", "20240501")
            .unwrap();
        c.add_partition("aws-vpc-flow-4001", "us-east-1", "external", "20240501")
            .unwrap();
        let c = Catalog::open(&lake).unwrap();
        let t = c.table("aws-vpc-flow-4001").unwrap();
        assert_eq!(t.table_input.name, "ext_aws_vpc_flow_4001");
        assert_eq!(t.table_input.storage_descriptor.columns, cols);
        assert_eq!(t.partitions.len(), 1);
        assert_eq!(
            t.partitions[0].storage_descriptor.location,
            "ext/aws-vpc-flow-4001/region=us-east-1/accountId=external/eventDay=20240501/"
        );
        let text =
            std::fs::read_to_string(lake.join("catalog/lakegate/ext_aws_vpc_flow_4001.json"))
                .unwrap();
        assert!(
            text.contains("\"PartitionKeys\"") && text.contains("\"accountid\""),
            "{text}"
        );
        std::fs::remove_dir_all(&lake).unwrap();
    }
}
