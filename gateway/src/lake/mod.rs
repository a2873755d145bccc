//! The local lake in the Amazon Security Lake custom-source layout:
//! `ext/<lake source>/region=<r>/accountId=<a>/eventDay=<YYYYMMDD>/<uuid v7>.parquet`,
//! one OCSF class per lake source, ZSTD Parquet sorted by `time`, files committed atomically
//! (written as a hidden temporary, fsynced, renamed).

pub mod catalog;
pub mod dead_letter;
pub mod rows;
pub mod schema;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_schema::SchemaRef;
use lakegate_plugin_sdk::host::columns::Column;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::config::FlushConfig;

/// One table: a (source, class) pair, stored as its own custom source.
#[derive(Debug)]
pub struct LakeTable {
    /// Custom-source name: the `ext/<lake_source>/` prefix.
    pub lake_source: Arc<str>,
    /// The gateway source it is fed by.
    pub source: String,
    pub class_uid: u32,
    pub class_name: String,
    pub ocsf_version: String,
    pub columns: Vec<Column>,
    pub schema: SchemaRef,
    /// Flush age for this table's partitions.
    pub max_age: Duration,
}

impl LakeTable {
    /// Builds a table from the columns a plugin declared.
    pub fn new(
        lake_source: String,
        source: String,
        class_uid: u32,
        class_name: String,
        ocsf_version: String,
        columns: Vec<Column>,
        max_age: Duration,
    ) -> LakeTable {
        let schema = schema::arrow_schema(
            &columns,
            vec![
                ("ocsf.version".into(), ocsf_version.clone()),
                ("ocsf.class_uid".into(), class_uid.to_string()),
            ],
        );
        LakeTable {
            lake_source: lake_source.into(),
            source,
            class_uid,
            class_name,
            ocsf_version,
            columns,
            schema,
            max_age,
        }
    }

    /// The Glue columns of this table.
    pub fn glue_columns(&self) -> Vec<catalog::GlueColumn> {
        self.schema
            .fields()
            .iter()
            .map(|f| catalog::GlueColumn {
                name: f.name().clone(),
                ty: schema::glue_type(f.data_type()),
            })
            .collect()
    }
}

/// `YYYYMMDD` of a day number (days since 1970-01-01, UTC).
pub fn day_string(day: i64) -> String {
    // Civil-from-days (Howard Hinnant's algorithm, public domain).
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}")
}

/// Where a record goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey {
    pub lake_source: Arc<str>,
    pub region: Arc<str>,
    pub account: Arc<str>,
    /// Days since 1970-01-01 of the record's `time`.
    pub day: i64,
}

impl PartitionKey {
    /// The lake-relative partition directory.
    pub fn dir(&self) -> String {
        format!(
            "ext/{}/region={}/accountId={}/eventDay={}",
            self.lake_source,
            self.region,
            self.account,
            day_string(self.day)
        )
    }
}

/// One buffered record.
struct Row {
    time: i64,
    json: Box<str>,
}

/// The records buffered for one partition.
struct Buffer {
    rows: Vec<Row>,
    bytes: usize,
    opened: Instant,
    max_age: Duration,
    /// WAL sequence numbers with rows here, ascending.
    seqs: Vec<u64>,
}

/// A partition's records, taken from the buffers to be written.
pub struct Sealed {
    pub key: PartitionKey,
    pub seqs: Vec<u64>,
    rows: Vec<Row>,
}

impl Sealed {
    /// Records in it.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True if it holds no records.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Drops the record at `index` (sorted order) and returns its JSON, for the dead-letter
    /// area: a record the table cannot hold.
    pub fn remove(&mut self, index: usize) -> String {
        self.rows.remove(index).json.into()
    }
}

/// The open partitions and their records, with the caps that bound memory.
pub struct Buffers {
    config: FlushConfig,
    open: HashMap<PartitionKey, Buffer>,
    bytes: usize,
}

impl Buffers {
    pub fn new(config: FlushConfig) -> Buffers {
        Buffers {
            config,
            open: HashMap::new(),
            bytes: 0,
        }
    }

    /// Buffers one record of WAL entry `seq`.
    pub fn insert(
        &mut self,
        key: &PartitionKey,
        max_age: Duration,
        seq: u64,
        time: i64,
        json: String,
    ) {
        let buffer = match self.open.get_mut(key) {
            Some(buffer) => buffer,
            None => self.open.entry(key.clone()).or_insert(Buffer {
                rows: Vec::new(),
                bytes: 0,
                opened: Instant::now(),
                max_age,
                seqs: Vec::new(),
            }),
        };
        let size = json.len() + std::mem::size_of::<Row>();
        buffer.rows.push(Row {
            time,
            json: json.into_boxed_str(),
        });
        buffer.bytes += size;
        self.bytes += size;
        if buffer.seqs.last() != Some(&seq) {
            buffer.seqs.push(seq);
        }
    }

    /// Partitions due now: too old, too big, or over the memory and partition caps (largest
    /// first, then oldest), in a deterministic order.
    pub fn due(&self, now: Instant, all: bool) -> Vec<PartitionKey> {
        let mut due: Vec<PartitionKey> = self
            .open
            .iter()
            .filter(|(_, b)| {
                all || now.duration_since(b.opened) >= b.max_age
                    || b.bytes as u64 >= self.config.max_partition_bytes
            })
            .map(|(k, _)| k.clone())
            .collect();
        let (mut bytes, mut open) = (self.bytes as u64, self.open.len());
        for key in &due {
            bytes -= self.open[key].bytes as u64;
            open -= 1;
        }
        if bytes > self.config.max_buffered_bytes || open > self.config.max_open_partitions {
            let mut rest: Vec<(&PartitionKey, &Buffer)> =
                self.open.iter().filter(|(k, _)| !due.contains(k)).collect();
            // Largest first when memory is the problem, oldest first when partitions are.
            if bytes > self.config.max_buffered_bytes {
                rest.sort_by(|a, b| b.1.bytes.cmp(&a.1.bytes).then(a.0.cmp(b.0)));
            } else {
                rest.sort_by(|a, b| a.1.opened.cmp(&b.1.opened).then(a.0.cmp(b.0)));
            }
            for (key, buffer) in rest {
                if bytes <= self.config.max_buffered_bytes
                    && open <= self.config.max_open_partitions
                {
                    break;
                }
                bytes -= buffer.bytes as u64;
                open -= 1;
                due.push(key.clone());
            }
        }
        due.sort();
        due
    }

    /// Puts a sealed partition back after a failed write, to be tried again.
    pub fn restore(&mut self, sealed: Sealed, max_age: Duration) {
        let key = sealed.key.clone();
        let first = sealed.seqs.first().copied().unwrap_or_default();
        for row in sealed.rows {
            self.insert(&key, max_age, first, row.time, row.json.into());
        }
        if let Some(buffer) = self.open.get_mut(&key) {
            buffer.seqs.extend(sealed.seqs);
            buffer.seqs.sort_unstable();
            buffer.seqs.dedup();
        }
    }

    /// Takes a partition's records out, sorted by time.
    pub fn seal(&mut self, key: &PartitionKey) -> Option<Sealed> {
        let buffer = self.open.remove(key)?;
        self.bytes -= buffer.bytes;
        let mut rows = buffer.rows;
        rows.sort_by_key(|r| r.time);
        Some(Sealed {
            key: key.clone(),
            seqs: buffer.seqs,
            rows,
        })
    }

    /// The lowest WAL sequence number with records still buffered.
    pub fn min_seq(&self) -> Option<u64> {
        self.open
            .values()
            .filter_map(|b| b.seqs.first())
            .min()
            .copied()
    }

    /// Bytes buffered and partitions open.
    pub fn usage(&self) -> (usize, usize) {
        (self.bytes, self.open.len())
    }
}

/// Writes a sealed partition as a Parquet file under a hidden temporary name in its partition
/// directory, fsynced; returns the temporary and final lake-relative paths. The caller commits
/// (logs the commit, then renames).
pub fn write_parquet(
    lake: &Path,
    table: &LakeTable,
    sealed: &Sealed,
    zstd_level: i32,
) -> Result<(PathBuf, String), WriteError> {
    let batch = rows::build(
        &table.schema,
        &table.columns,
        sealed.rows.iter().map(|r| &*r.json),
    )
    .map_err(WriteError::Row)?;
    write_batch(lake, table, &sealed.key, &batch, zstd_level).map_err(WriteError::Io)
}

/// Why a partition could not be written.
#[derive(Debug)]
pub enum WriteError {
    /// One record does not fit the table: take it out and try again.
    Row(rows::RowError),
    /// The file could not be written: keep the records and try later.
    Io(String),
}

fn write_batch(
    lake: &Path,
    table: &LakeTable,
    key: &PartitionKey,
    batch: &arrow_array::RecordBatch,
    zstd_level: i32,
) -> Result<(PathBuf, String), String> {
    let dir = key.dir();
    let name = format!("{}.parquet", uuid::Uuid::now_v7());
    let final_rel = format!("{dir}/{name}");
    let abs_dir = lake.join(&dir);
    std::fs::create_dir_all(&abs_dir).map_err(|e| format!("{}: {e}", abs_dir.display()))?;
    let tmp = abs_dir.join(format!(".{name}.tmp"));
    let file = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(zstd_level).map_err(|e| e.to_string())?,
        ))
        .set_data_page_size_limit(1 << 20)
        .set_dictionary_page_size_limit(1 << 20)
        .set_write_batch_size(256)
        .set_max_row_group_size(128 * 1024)
        .set_created_by(format!("lakegate {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut writer =
        ArrowWriter::try_new(file, table.schema.clone(), Some(props)).map_err(|e| e.to_string())?;
    writer.write(batch).map_err(|e| e.to_string())?;
    let file = writer.into_inner().map_err(|e| e.to_string())?;
    file.sync_all()
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    Ok((tmp, final_rel))
}

/// Renames a written temporary into place and syncs the directory: the file appears whole.
pub fn publish(lake: &Path, tmp: &Path, final_rel: &str) -> std::io::Result<()> {
    let dest = lake.join(final_rel);
    std::fs::rename(tmp, &dest)?;
    if let Some(dir) = dest.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Removes temporaries left by a crash (never renamed, so never committed).
pub fn remove_temporaries(lake: &Path) -> std::io::Result<usize> {
    fn walk(dir: &Path, removed: &mut usize) -> std::io::Result<()> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(());
        };
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                walk(&path, removed)?;
            } else if path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.') && n.ends_with(".parquet.tmp"))
            {
                std::fs::remove_file(&path)?;
                *removed += 1;
            }
        }
        Ok(())
    }
    let mut removed = 0;
    walk(&lake.join("ext"), &mut removed)?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_format_as_utc_dates() {
        assert_eq!(day_string(0), "19700101");
        assert_eq!(day_string(1_714_521_600_000 / 86_400_000), "20240501");
        assert_eq!(day_string(-1), "19691231");
        assert_eq!(day_string(11_016), "20000229");
    }

    fn key(day: i64) -> PartitionKey {
        PartitionKey {
            lake_source: "s-1".into(),
            region: "us-east-1".into(),
            account: "external".into(),
            day,
        }
    }

    #[test]
    fn caps_flush_the_largest_or_oldest_early() {
        let mut b = Buffers::new(FlushConfig {
            max_age: Duration::from_secs(3600),
            max_partition_bytes: 1 << 20,
            max_buffered_bytes: 2000,
            max_open_partitions: 3,
            zstd_level: 3,
        });
        let age = Duration::from_secs(3600);
        let now = Instant::now();
        b.insert(&key(1), age, 1, 5, "x".repeat(900));
        b.insert(&key(2), age, 1, 5, "x".repeat(100));
        assert!(b.due(now, false).is_empty());
        b.insert(&key(3), age, 2, 5, "x".repeat(1200));
        // Over 2,000 bytes: the largest (day 3) goes first, and that is enough.
        assert_eq!(b.due(now, false), vec![key(3)]);
        b.seal(&key(3));
        for d in 4..=5 {
            b.insert(&key(d), age, 3, 5, "x".into());
        }
        // Four open partitions, cap three: the oldest goes.
        assert_eq!(b.due(now, false), vec![key(1)]);
        assert_eq!(b.min_seq(), Some(1));
        let sealed = b.seal(&key(1)).unwrap();
        assert_eq!(sealed.seqs, vec![1]);
        assert_eq!(b.due(now, true).len(), 3);
    }

    #[test]
    fn sealed_rows_are_sorted_by_time() {
        let mut b = Buffers::new(FlushConfig::default());
        for (seq, t) in [(1, 30), (1, 10), (2, 20)] {
            b.insert(
                &key(0),
                Duration::from_secs(1),
                seq,
                t,
                format!("{{\"time\":{t}}}"),
            );
        }
        let s = b.seal(&key(0)).unwrap();
        assert_eq!(
            s.rows.iter().map(|r| r.time).collect::<Vec<_>>(),
            [10, 20, 30]
        );
        assert_eq!(s.seqs, [1, 2]);
        assert_eq!(b.usage(), (0, 0));
    }
}
