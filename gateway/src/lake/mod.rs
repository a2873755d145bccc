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

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{RecordBatch, UInt32Array};
use arrow_schema::SchemaRef;
use lakegate_plugin_sdk::host::columns::{Column, Layout, Table};
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter};
use parquet::basic::{Compression, Type as PhysicalType, ZstdLevel};
use parquet::file::properties::EnabledStatistics;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

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
    /// Where rows' members go among the columns.
    pub layout: Layout,
    pub schema: SchemaRef,
    /// Flush age for this table's partitions.
    pub max_age: Duration,
    /// The Parquet leaf columns that are not strings (numbers, times, booleans), written
    /// without a dictionary and with statistics; the others have a dictionary and none.
    plain_columns: Vec<ColumnPath>,
}

impl LakeTable {
    /// Builds a table from the columns a plugin declared.
    pub fn new(
        lake_source: String,
        source: String,
        class_uid: u32,
        class_name: String,
        ocsf_version: String,
        Table { columns, layout }: Table,
        max_age: Duration,
    ) -> LakeTable {
        let schema = schema::arrow_schema(
            &columns,
            vec![
                ("ocsf.version".into(), ocsf_version.clone()),
                ("ocsf.class_uid".into(), class_uid.to_string()),
            ],
        );
        let plain_columns = ArrowSchemaConverter::new()
            .convert(&schema)
            .map(|parquet| {
                parquet
                    .columns()
                    .iter()
                    .filter(|c| c.physical_type() != PhysicalType::BYTE_ARRAY)
                    .map(|c| c.path().clone())
                    .collect()
            })
            .unwrap_or_default();
        LakeTable {
            lake_source: lake_source.into(),
            source,
            class_uid,
            class_name,
            ocsf_version,
            columns,
            layout,
            schema,
            max_age,
            plain_columns,
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

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

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
    /// The partition of a record of `table` with these values and `time` (epoch milliseconds).
    pub fn new(table: &LakeTable, region: &Arc<str>, account: &Arc<str>, time: i64) -> Self {
        PartitionKey {
            lake_source: table.lake_source.clone(),
            region: region.clone(),
            account: account.clone(),
            day: time.div_euclid(DAY_MS),
        }
    }

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

/// Accepted records grouped by partition, to become one chunk of Arrow columns per partition
/// ([`Partitioned::build`]). Each record is known by a caller's number (its `member`), which
/// finds its row, and traces a row that does not fit back to its record.
#[derive(Default)]
pub struct Partitioned {
    groups: Vec<Group>,
    by_key: HashMap<PartitionKey, usize>,
    /// The group of the previous record: the next one is most often of the same partition,
    /// which it finds with four comparisons instead of hashing its key.
    last: Option<usize>,
}

struct Group {
    key: PartitionKey,
    table: Arc<LakeTable>,
    members: Vec<usize>,
}

/// One partition's records of a call, as columns of its table.
#[derive(Debug)]
pub struct Chunk {
    pub table: Arc<LakeTable>,
    pub key: PartitionKey,
    pub batch: RecordBatch,
}

/// A row its table cannot hold: the validator wrote it for that table, so this is a gateway
/// bug. Its record goes to the dead-letter area rather than into the lake.
#[derive(Debug)]
pub struct Misfit {
    pub member: usize,
    pub reason: String,
}

impl Partitioned {
    /// Adds record `member` of `table`, with these partition values and `time`.
    pub fn add(
        &mut self,
        table: &Arc<LakeTable>,
        region: &Arc<str>,
        account: &Arc<str>,
        time: i64,
        member: usize,
    ) {
        let day = time.div_euclid(DAY_MS);
        if let Some(group) = self.last.map(|i| &mut self.groups[i]) {
            let key = &group.key;
            if key.day == day
                && Arc::ptr_eq(&group.table, table)
                && Arc::ptr_eq(&key.region, region)
                && Arc::ptr_eq(&key.account, account)
            {
                group.members.push(member);
                return;
            }
        }
        let key = PartitionKey::new(table, region, account, time);
        let groups = &mut self.groups;
        let i = *self.by_key.entry(key.clone()).or_insert_with(|| {
            groups.push(Group {
                key,
                table: table.clone(),
                members: Vec::new(),
            });
            groups.len() - 1
        });
        groups[i].members.push(member);
        self.last = Some(i);
    }

    /// One chunk per partition from the records' rows (`row` finds a member's), and the rows
    /// that did not fit (the rest of their partition is built without them).
    pub fn build<'r>(self, row: impl Fn(usize) -> &'r [u8]) -> (Vec<Chunk>, Vec<Misfit>) {
        let mut chunks = Vec::with_capacity(self.groups.len());
        let mut misfits = Vec::new();
        for mut group in self.groups {
            let key = group.key;
            while !group.members.is_empty() {
                let table = &group.table;
                let rows = group.members.iter().map(|&m| row(m));
                match rows::build(&table.schema, &table.columns, &table.layout, rows) {
                    Ok(batch) => {
                        chunks.push(Chunk {
                            table: group.table,
                            key,
                            batch,
                        });
                        break;
                    }
                    Err(e) => {
                        misfits.push(Misfit {
                            member: group.members.remove(e.index),
                            reason: format!(
                                "does not fit table {}: {}",
                                table.lake_source, e.reason
                            ),
                        });
                    }
                }
            }
        }
        (chunks, misfits)
    }
}

/// How many rows a partition gathers in small chunks (a call's share of it may be a few
/// records) before they are concatenated into one: enough that a chunk's per-column overhead
/// is small.
const CHUNK_ROWS: usize = 4096;

/// The records buffered for one partition, as chunks of Arrow columns.
struct Buffer {
    table: Arc<LakeTable>,
    /// Chunks of at least [`CHUNK_ROWS`] rows.
    chunks: Vec<RecordBatch>,
    /// Smaller chunks, concatenated once they hold [`CHUNK_ROWS`] rows together.
    small: Vec<RecordBatch>,
    small_rows: usize,
    small_bytes: usize,
    /// The Arrow memory of all chunks.
    bytes: usize,
    opened: Instant,
    /// WAL sequence numbers with rows here, ascending.
    seqs: Vec<u64>,
}

impl Buffer {
    /// Concatenates the small chunks into one.
    fn gather_small(&mut self) {
        let small = std::mem::take(&mut self.small);
        self.small_rows = 0;
        self.bytes -= std::mem::take(&mut self.small_bytes);
        let chunk = match small.len() {
            0 => return,
            1 => small.into_iter().next().expect("one chunk"),
            _ => arrow_select::concat::concat_batches(&self.table.schema, &small)
                .expect("chunks of one table share its schema"),
        };
        self.bytes += chunk.get_array_memory_size();
        self.chunks.push(chunk);
    }
}

/// A partition's records, taken from the buffers to be written: one batch sorted by time.
pub struct Sealed {
    pub key: PartitionKey,
    pub seqs: Vec<u64>,
    pub batch: RecordBatch,
    table: Arc<LakeTable>,
}

impl Sealed {
    /// Records in it.
    pub fn rows(&self) -> usize {
        self.batch.num_rows()
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

    /// The buffer of `key`, opened if need be.
    fn open(&mut self, key: &PartitionKey, table: &Arc<LakeTable>) -> &mut Buffer {
        self.open.entry(key.clone()).or_insert_with(|| Buffer {
            table: table.clone(),
            chunks: Vec::new(),
            small: Vec::new(),
            small_rows: 0,
            small_bytes: 0,
            bytes: 0,
            opened: Instant::now(),
            seqs: Vec::new(),
        })
    }

    /// Buffers a chunk of WAL entry `seq` for `table`.
    pub fn insert(
        &mut self,
        table: &Arc<LakeTable>,
        key: &PartitionKey,
        seq: u64,
        chunk: RecordBatch,
    ) {
        // One lookup, and no key clone, for a partition that is open already.
        let buffer = match self.open.get_mut(key) {
            Some(buffer) => buffer,
            None => self.open(key, table),
        };
        let before = buffer.bytes;
        let size = chunk.get_array_memory_size();
        buffer.bytes += size;
        if chunk.num_rows() >= CHUNK_ROWS {
            buffer.chunks.push(chunk);
        } else {
            buffer.small_rows += chunk.num_rows();
            buffer.small_bytes += size;
            buffer.small.push(chunk);
            if buffer.small_rows >= CHUNK_ROWS {
                buffer.gather_small();
            }
        }
        if buffer.seqs.last() != Some(&seq) {
            buffer.seqs.push(seq);
        }
        let after = buffer.bytes;
        self.bytes = self.bytes + after - before;
    }

    /// Partitions due now: too old, too big, or over the memory and partition caps (largest
    /// first, then oldest), in a deterministic order.
    pub fn due(&self, now: Instant, all: bool) -> Vec<PartitionKey> {
        let mut due: Vec<PartitionKey> = self
            .open
            .iter()
            .filter(|(_, b)| {
                all || now.duration_since(b.opened) >= b.table.max_age
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
    pub fn restore(&mut self, sealed: Sealed) {
        let size = sealed.batch.get_array_memory_size();
        let buffer = self.open(&sealed.key, &sealed.table);
        buffer.chunks.push(sealed.batch);
        buffer.bytes += size;
        buffer.seqs.extend(sealed.seqs);
        buffer.seqs.sort_unstable();
        buffer.seqs.dedup();
        self.bytes += size;
    }

    /// Takes a partition's records out as one batch sorted by time.
    pub fn seal(&mut self, key: &PartitionKey) -> Option<Sealed> {
        let mut buffer = self.open.remove(key)?;
        self.bytes -= buffer.bytes;
        buffer.gather_small();
        // Each step lets go of its input, so sealing holds at most two copies of the records.
        let chunks = std::mem::take(&mut buffer.chunks);
        let batch = match chunks.len() {
            0 => return None,
            1 => chunks.into_iter().next().expect("one chunk"),
            _ => {
                let batch = arrow_select::concat::concat_batches(&buffer.table.schema, &chunks)
                    .expect("chunks of one table share its schema");
                drop(chunks);
                batch
            }
        };
        Some(Sealed {
            key: key.clone(),
            seqs: buffer.seqs,
            batch: sorted_by_time(batch),
            table: buffer.table,
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

/// `batch` with its rows in `time` order (stable: records of the same millisecond keep their
/// arrival order).
fn sorted_by_time(batch: RecordBatch) -> RecordBatch {
    let times = batch
        .column_by_name("time")
        .and_then(|c| c.as_primitive_opt::<Int64Type>())
        .expect("every table has a non-null INT64 `time`");
    if times.values().is_sorted() {
        return batch;
    }
    let mut order: Vec<u32> = (0..batch.num_rows() as u32).collect();
    order.sort_by_key(|&i| times.value(i as usize));
    arrow_select::take::take_record_batch(&batch, &UInt32Array::from(order))
        .expect("indices are in range")
}

/// Writes a sealed partition as a Parquet file under a hidden temporary name in its partition
/// directory, fsynced; returns the temporary and final lake-relative paths. The caller commits
/// (logs the commit, then renames).
pub fn write_parquet(
    lake: &Path,
    sealed: &Sealed,
    zstd_level: i32,
) -> Result<(PathBuf, String), String> {
    let (table, batch) = (&sealed.table, &sealed.batch);
    let dir = sealed.key.dir();
    let name = format!("{}.parquet", uuid::Uuid::now_v7());
    let final_rel = format!("{dir}/{name}");
    let abs_dir = lake.join(&dir);
    std::fs::create_dir_all(&abs_dir).map_err(|e| format!("{}: {e}", abs_dir.display()))?;
    let tmp = abs_dir.join(format!(".{name}.tmp"));
    let file = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(zstd_level).map_err(|e| e.to_string())?,
        ))
        // The writer checks page sizes after each write batch of 256 values, so a page can
        // overshoot its limit by one batch: limits of 768 KiB keep pages within Security Lake's
        // 1 MB for values up to 1 KiB (dictionary pages of 1.1 MB were seen with 1 MiB limits).
        .set_data_page_size_limit(768 << 10)
        .set_dictionary_page_size_limit(768 << 10)
        .set_write_batch_size(256)
        .set_max_row_group_row_count(Some(128 * 1024))
        .set_max_row_group_bytes(Some(256 << 20))
        .set_created_by(format!("lakegate {}", env!("CARGO_PKG_VERSION")));
    // Dictionaries pay for strings, which repeat (names, captions, accounts); numbers and
    // times rarely do, and ZSTD packs their plain values smaller than dictionary indexes
    // (measured: VPC files 19 % smaller, CloudTrail 3 %, and 15 % less CPU to write VPC).
    // Min/max statistics are kept for numbers and times (`time` lets a reader skip row groups
    // and pages of a time range); on strings they cost a comparison per value (17 % of the
    // encoder's work on VPC flow) and prune little in files sorted by time.
    props = props.set_statistics_enabled(EnabledStatistics::None);
    for column in &table.plain_columns {
        props = props
            .set_column_dictionary_enabled(column.clone(), false)
            .set_column_statistics_enabled(column.clone(), EnabledStatistics::Page);
    }
    let props = props.build();
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

    fn table() -> Arc<LakeTable> {
        use lakegate_plugin_sdk::host::columns::ColumnKind;
        let col = |name: &str, kind| Column {
            name: name.into(),
            kind,
            is_array: false,
            required: name == "time",
        };
        Arc::new(LakeTable::new(
            "s-1".into(),
            "s".into(),
            1,
            "c".into(),
            "1.1.0".into(),
            Table {
                columns: vec![
                    col("msg", ColumnKind::String),
                    col("time", ColumnKind::Long),
                ],
                layout: Layout::default(),
            },
            Duration::from_secs(3600),
        ))
    }

    /// A chunk of `table()` with these `(time, msg)` rows.
    fn chunk(rows: &[(i64, String)]) -> RecordBatch {
        let msg: arrow_array::StringArray = rows.iter().map(|(_, m)| Some(m.as_str())).collect();
        let time = arrow_array::Int64Array::from_iter_values(rows.iter().map(|(t, _)| *t));
        RecordBatch::try_new(table().schema.clone(), vec![Arc::new(msg), Arc::new(time)]).unwrap()
    }

    /// One row at `time` with a message of `len` bytes.
    fn record(time: i64, len: usize) -> RecordBatch {
        chunk(&[(time, "x".repeat(len))])
    }

    fn times(sealed: &Sealed) -> Vec<i64> {
        sealed.batch["time"]
            .as_primitive::<Int64Type>()
            .values()
            .to_vec()
    }

    #[test]
    fn records_are_grouped_by_partition_in_order_and_misfits_are_named() {
        use lakegate_plugin_sdk::host::validate::schema_1_1_0;
        let (declarations, ..) = rows::tests::table();
        let table = Arc::new(LakeTable::new(
            "s-4001".into(),
            "s".into(),
            4001,
            "Network Activity".into(),
            "1.1.0".into(),
            declarations.table(4001).unwrap().clone(),
            Duration::from_secs(3600),
        ));
        let times = [1, DAY_MS + 1, 2, 3, 4];
        let mut rows: Vec<Vec<u8>> = times
            .iter()
            .map(|&t| {
                let mut row = Vec::new();
                let text = rows::tests::record(t, "");
                schema_1_1_0()
                    .validate_row(&text, &declarations, &mut row)
                    .unwrap();
                row
            })
            .collect();
        rows[3].truncate(9);
        // Equal values in other allocations are the same partition.
        let (region, same_region, account): (Arc<str>, Arc<str>, Arc<str>) =
            ("us-east-1".into(), "us-east-1".into(), "external".into());
        let mut p = Partitioned::default();
        for (member, &time) in times.iter().enumerate() {
            let region = if member == 2 { &same_region } else { &region };
            p.add(&table, region, &account, time, member);
        }
        let (mut chunks, misfits) = p.build(|i| &rows[i]);
        chunks.sort_by_key(|c| c.key.day);
        let chunk_times: Vec<Vec<i64>> = chunks
            .iter()
            .map(|c| {
                c.batch["time"]
                    .as_primitive::<Int64Type>()
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(chunk_times, [vec![1, 2, 4], vec![DAY_MS + 1]]);
        assert_eq!(
            chunks[1].key.dir(),
            "ext/s-4001/region=us-east-1/accountId=external/eventDay=19700102"
        );
        assert_eq!(misfits.len(), 1);
        assert_eq!(misfits[0].member, 3);
        assert!(
            misfits[0].reason.contains("does not fit table s-4001"),
            "{}",
            misfits[0].reason
        );
    }

    #[test]
    fn caps_flush_the_largest_or_oldest_early() {
        let (a, b_, c) = (record(5, 900), record(5, 100), record(5, 5000));
        let size = |r: &RecordBatch| r.get_array_memory_size();
        let mut b = Buffers::new(FlushConfig {
            max_age: Duration::from_secs(3600),
            max_partition_bytes: 1 << 20,
            max_buffered_bytes: (size(&a) + size(&b_) + size(&c) - 1) as u64,
            max_open_partitions: 3,
            zstd_level: 3,
        });
        let (t, now) = (table(), Instant::now());
        b.insert(&t, &key(1), 1, a);
        b.insert(&t, &key(2), 1, b_);
        assert!(b.due(now, false).is_empty());
        b.insert(&t, &key(3), 2, c);
        // Over the cap by a byte: the largest (day 3) goes first, and that is enough.
        assert_eq!(b.due(now, false), vec![key(3)]);
        b.seal(&key(3));
        for d in 4..=5 {
            b.insert(&t, &key(d), 3, record(5, 30));
        }
        // Four open partitions, cap three: the oldest goes.
        assert_eq!(b.due(now, false), vec![key(1)]);
        assert_eq!(b.min_seq(), Some(1));
        let sealed = b.seal(&key(1)).unwrap();
        assert_eq!(sealed.seqs, vec![1]);
        assert_eq!(b.due(now, true).len(), 3);
    }

    #[test]
    fn rows_of_many_chunks_are_sealed_in_time_order_stably() {
        let (t, mut b) = (table(), Buffers::new(FlushConfig::default()));
        // Three chunks; every time appears three times, once per chunk, with its chunk in `msg`.
        for c in 0..3 {
            let rows: Vec<(i64, String)> = (0..CHUNK_ROWS)
                .map(|i| ((CHUNK_ROWS - i) as i64, c.to_string()))
                .collect();
            b.insert(&t, &key(0), 1, chunk(&rows));
        }
        let s = b.seal(&key(0)).unwrap();
        assert_eq!(s.rows(), 3 * CHUNK_ROWS);
        let times = times(&s);
        assert!(times.is_sorted(), "sorted by time");
        let msgs = s.batch["msg"].as_string::<i32>();
        let first_time: Vec<&str> = (0..3).map(|r| msgs.value(r)).collect();
        assert_eq!((times[0], first_time), (1, vec!["0", "1", "2"]), "stable");
    }

    #[test]
    fn sealed_rows_are_sorted_by_time() {
        let (t, mut b) = (table(), Buffers::new(FlushConfig::default()));
        for (seq, time) in [(1, 30), (1, 10), (2, 20)] {
            b.insert(&t, &key(0), seq, record(time, 0));
        }
        let s = b.seal(&key(0)).unwrap();
        assert_eq!(times(&s), [10, 20, 30]);
        assert_eq!(s.seqs, [1, 2]);
        assert_eq!(b.usage(), (0, 0));
    }

    #[test]
    fn small_chunks_are_gathered_and_a_failed_write_goes_back_whole() {
        let (t, mut b) = (table(), Buffers::new(FlushConfig::default()));
        let per_chunk = 100;
        let chunks = CHUNK_ROWS / per_chunk + 2;
        let mut added = 0;
        for c in 0..chunks {
            let rows: Vec<(i64, String)> = (0..per_chunk)
                .map(|i| (-((c * per_chunk + i) as i64), "m".into()))
                .collect();
            let chunk = chunk(&rows);
            added += chunk.get_array_memory_size();
            b.insert(&t, &key(0), c as u64 + 1, chunk);
        }
        // Gathered into one chunk once they held CHUNK_ROWS rows, then two more small ones;
        // the buffer counts what it holds, which one concatenated chunk makes smaller.
        let buffer = &b.open[&key(0)];
        assert_eq!((buffer.chunks.len(), buffer.small.len()), (1, 1));
        assert_eq!(buffer.chunks[0].num_rows(), (chunks - 1) * per_chunk);
        let (bytes, open) = b.usage();
        assert_eq!(open, 1);
        assert!(bytes < added, "{bytes} bytes held for {added} inserted");
        assert_eq!(
            bytes,
            buffer.chunks[0].get_array_memory_size() + buffer.small[0].get_array_memory_size()
        );
        let sealed = b.seal(&key(0)).unwrap();
        let n = (chunks * per_chunk) as i64;
        assert_eq!(times(&sealed), (1 - n..=0).collect::<Vec<_>>());
        assert_eq!(sealed.seqs, (1..=chunks as u64).collect::<Vec<_>>());
        // A failed write puts it back whole.
        b.restore(sealed);
        assert!(b.usage().0 > 0);
        let again = b.seal(&key(0)).unwrap();
        assert_eq!(again.rows(), n as usize);
        assert_eq!(b.usage(), (0, 0));
    }

    #[test]
    fn strings_are_dictionary_encoded_and_numbers_plain_with_statistics() {
        use parquet::basic::Encoding;
        use parquet::file::reader::{FileReader, SerializedFileReader};
        use parquet::file::statistics::Statistics;
        let (t, mut b) = (table(), Buffers::new(FlushConfig::default()));
        let rows: Vec<(i64, String)> = (0..100).map(|i| (i, "x".repeat(40))).collect();
        b.insert(&t, &key(0), 1, chunk(&rows));
        let sealed = b.seal(&key(0)).unwrap();
        let lake = std::env::temp_dir().join(format!("lakegate-dict-{}", std::process::id()));
        let (tmp, _) = write_parquet(&lake, &sealed, 3).unwrap();
        let reader = SerializedFileReader::new(std::fs::File::open(&tmp).unwrap()).unwrap();
        let group = reader.metadata().row_group(0);
        let column = |name: &str| {
            (0..group.num_columns())
                .map(|i| group.column(i))
                .find(|c| c.column_path().string() == name)
                .unwrap_or_else(|| panic!("no column {name}"))
        };
        let encodings = |name: &str| -> Vec<Encoding> { column(name).encodings().collect() };
        assert!(encodings("msg").contains(&Encoding::RLE_DICTIONARY));
        let time = encodings("time");
        assert!(time.contains(&Encoding::PLAIN), "{time:?}");
        assert!(!time.contains(&Encoding::RLE_DICTIONARY), "{time:?}");
        // `time` keeps its range, for readers that skip by it; strings have no statistics.
        let Some(Statistics::Int64(range)) = column("time").statistics() else {
            panic!("time has no INT64 statistics")
        };
        assert_eq!((range.min_opt(), range.max_opt()), (Some(&0), Some(&99)));
        assert!(column("msg").statistics().is_none());
        std::fs::remove_dir_all(&lake).unwrap();
    }
}
