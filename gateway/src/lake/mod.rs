//! The local lake in the Amazon Security Lake custom-source layout:
//! `ext/<lake source>/region=<r>/accountId=<a>/eventDay=<YYYYMMDD>/<uuid v7>.parquet`,
//! one OCSF class per lake source, ZSTD Parquet sorted by `time`, files committed atomically
//! (written as a hidden temporary, fsynced, renamed). Open partitions buffer where their
//! records are in the write-ahead log ([`Events`]), and read them back when they are written
//! ([`build`]).

pub mod catalog;
pub mod dead_letter;
pub mod rows;
pub mod schema;

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, SchemaRef};
use lakegate_plugin_sdk::host::columns::{Column, Layout, Table};
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnChunk};
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter};
use parquet::basic::{Compression, Encoding, Type as PhysicalType, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::EnabledStatistics;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use crate::config::FlushConfig;
use crate::wal::{self, LogReader, Span};

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
    /// Those of them that are 64-bit integers (`time`, `*_dt`, counters), written as
    /// differences (`DELTA_BINARY_PACKED`).
    delta_columns: Vec<ColumnPath>,
    /// The string bytes of the table's last batch, room for the next.
    string_sizes: Mutex<rows::StringSizes>,
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
        let leaves = ArrowSchemaConverter::new()
            .convert(&schema)
            .map(|parquet| parquet.columns().to_vec())
            .unwrap_or_default();
        let of_type = |keep: fn(PhysicalType) -> bool| -> Vec<ColumnPath> {
            leaves
                .iter()
                .filter(|c| keep(c.physical_type()))
                .map(|c| c.path().clone())
                .collect()
        };
        let plain_columns = of_type(|t| t != PhysicalType::BYTE_ARRAY);
        let delta_columns = of_type(|t| t == PhysicalType::INT64);
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
            delta_columns,
            string_sizes: Mutex::default(),
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

/// Accepted records grouped by partition, in the order the log keeps them: a partition's
/// records of one entry are one run, which the lake reads back in one piece when it writes the
/// partition. `T` is what the caller keeps of a record (its `member`).
pub struct Partitioned<T> {
    groups: Vec<Group<T>>,
    by_key: HashMap<PartitionKey, usize>,
}

/// How many of the latest groups a record is compared with before its key is hashed.
const RECENT_GROUPS: usize = 8;

struct Group<T> {
    key: PartitionKey,
    table: Arc<LakeTable>,
    members: Vec<T>,
}

/// One partition's run of a log entry's events.
#[derive(Debug, Clone)]
pub struct Run {
    pub table: Arc<LakeTable>,
    pub key: PartitionKey,
    /// Positions of the events in the entry.
    pub events: Range<usize>,
}

impl<T> Default for Partitioned<T> {
    fn default() -> Self {
        Partitioned {
            groups: Vec::new(),
            by_key: HashMap::new(),
        }
    }
}

impl<T> Partitioned<T> {
    /// Adds record `member` of `table`, with these partition values and `time`.
    pub fn add(
        &mut self,
        table: &Arc<LakeTable>,
        region: &Arc<str>,
        account: &Arc<str>,
        time: i64,
        member: T,
    ) {
        let day = time.div_euclid(DAY_MS);
        // A slice's records fall into a few partitions (two days of VPC flow alternate record by
        // record): four comparisons with each of the latest groups are cheaper than hashing the
        // key, which finds the rest.
        if let Some(group) = self.groups.iter_mut().rev().take(RECENT_GROUPS).find(|g| {
            g.key.day == day
                && Arc::ptr_eq(&g.table, table)
                && Arc::ptr_eq(&g.key.region, region)
                && Arc::ptr_eq(&g.key.account, account)
        }) {
            group.members.push(member);
            return;
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
    }

    /// The members in log order (partition by partition, in order of each partition's first
    /// record, each in the order added) and each partition's run of positions in it.
    pub fn into_runs(self) -> (Vec<T>, Vec<Run>) {
        let mut order = Vec::new();
        let runs = self
            .groups
            .into_iter()
            .map(|g| {
                let from = order.len();
                order.extend(g.members);
                Run {
                    table: g.table,
                    key: g.key,
                    events: from..order.len(),
                }
            })
            .collect();
        (order, runs)
    }
}

/// Where some of a partition's buffered events are, encoded as the log encodes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Events {
    /// In the write-ahead log, read back when the partition is written.
    Logged(Span),
    /// In memory: events recovered from log entries that kept JSON, as rows.
    Held(Arc<[u8]>),
}

impl Events {
    fn bytes(&self) -> usize {
        match self {
            Events::Logged(span) => span.len as usize,
            Events::Held(bytes) => bytes.len(),
        }
    }
}

/// The events buffered for one partition: where they are, not the events themselves.
struct Buffer {
    table: Arc<LakeTable>,
    events: Vec<Events>,
    /// The logged size of the events.
    bytes: usize,
    opened: Instant,
    /// WAL sequence numbers with events here, ascending.
    seqs: Vec<u64>,
}

/// A partition's events, taken from the buffers to be written.
pub struct Sealed {
    pub key: PartitionKey,
    pub seqs: Vec<u64>,
    pub table: Arc<LakeTable>,
    events: Vec<Events>,
}

/// The open partitions and where their events are, with the caps that bound them.
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

    /// Buffers `events` of WAL entry `seq` for `table`.
    pub fn insert(&mut self, table: &Arc<LakeTable>, key: &PartitionKey, seq: u64, events: Events) {
        // One lookup, and no key clone, for a partition that is open already.
        let buffer = match self.open.get_mut(key) {
            Some(buffer) => buffer,
            None => self.open.entry(key.clone()).or_insert_with(|| Buffer {
                table: table.clone(),
                events: Vec::new(),
                bytes: 0,
                opened: Instant::now(),
                seqs: Vec::new(),
            }),
        };
        let size = events.bytes();
        buffer.bytes += size;
        buffer.events.push(events);
        if buffer.seqs.last() != Some(&seq) {
            buffer.seqs.push(seq);
        }
        self.bytes += size;
    }

    /// Partitions due now: too old, too big, or over the buffered-bytes and partition caps
    /// (largest first, then oldest), in a deterministic order.
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
            // Largest first when bytes are the problem, oldest first when partitions are.
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
        let Sealed {
            key,
            seqs,
            table,
            events,
        } = sealed;
        for events in events {
            self.insert(&table, &key, seqs[0], events);
        }
        let buffer = self.open.get_mut(&key).expect("inserted above");
        buffer.seqs.extend(seqs);
        buffer.seqs.sort_unstable();
        buffer.seqs.dedup();
    }

    /// Takes a partition's events out, to be written.
    pub fn seal(&mut self, key: &PartitionKey) -> Option<Sealed> {
        let buffer = self.open.remove(key)?;
        self.bytes -= buffer.bytes;
        Some(Sealed {
            key: key.clone(),
            seqs: buffer.seqs,
            table: buffer.table,
            events: buffer.events,
        })
    }

    /// The lowest WAL sequence number with events still buffered.
    pub fn min_seq(&self) -> Option<u64> {
        self.open
            .values()
            .filter_map(|b| b.seqs.first())
            .min()
            .copied()
    }

    /// Bytes buffered (as logged) and partitions open.
    pub fn usage(&self) -> (usize, usize) {
        (self.bytes, self.open.len())
    }
}

/// A sealed partition's events that cannot go into its file: what they are and why.
#[derive(Debug)]
pub struct Misfit {
    /// A row ([`lakegate_plugin_sdk::row`]), or the encoded events of a span that does not
    /// read back as rows.
    pub bytes: Vec<u8>,
    pub is_row: bool,
    pub reason: String,
}

/// Reads a sealed partition's events back and builds them into one batch of its table, sorted
/// by time (stably: records of the same millisecond keep their arrival order), each column
/// built once. Events that cannot be read or do not fit the table are `misfits`, for the
/// dead-letter area; an I/O error fails the whole partition (it stays buffered). The rows are
/// read into `arena`, which the caller keeps from one partition to the next: a fresh buffer of
/// a partition's size had its pages faulted in anew for every file (a third of the gateway's
/// page faults on VPC flow).
pub fn build(
    sealed: &Sealed,
    reader: &mut LogReader,
    arena: &mut Vec<u8>,
    misfits: &mut Vec<Misfit>,
) -> Result<Option<RecordBatch>, String> {
    let table = &sealed.table;
    let total = sealed.events.iter().map(Events::bytes).sum();
    arena.clear();
    arena.reserve(total);
    let mut rows: Vec<(i64, Range<usize>)> = Vec::new();
    for events in &sealed.events {
        let from = arena.len();
        let read = match events {
            Events::Logged(span) => reader.read(span, arena)?,
            Events::Held(bytes) => {
                arena.extend_from_slice(bytes);
                Ok(())
            }
        };
        let before = rows.len();
        let decoded = read.and_then(|()| {
            wal::rows_in(arena, from, &mut rows).ok_or_else(|| {
                "logged events that do not decode as rows (a gateway bug)".to_string()
            })
        });
        match decoded {
            Ok(()) => {}
            Err(reason) => {
                rows.truncate(before);
                misfits.push(Misfit {
                    bytes: arena.split_off(from),
                    is_row: false,
                    reason: format!("cannot read events back from the write-ahead log: {reason}"),
                });
            }
        }
    }
    rows.sort_by_key(|(time, _)| *time);
    let mut sizes = table
        .string_sizes
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    while !rows.is_empty() {
        let batch = rows::build(
            &table.schema,
            &table.columns,
            &table.layout,
            rows.iter().enumerate().map(|(i, (_, r))| {
                if let Some((_, ahead)) = rows.get(i + PREFETCH_AHEAD) {
                    prefetch(&arena[ahead.clone()]);
                }
                &arena[r.clone()]
            }),
            &mut sizes,
            total,
        );
        match batch {
            Ok(batch) => return Ok(Some(batch)),
            Err(e) => {
                let (_, row) = rows.remove(e.index);
                misfits.push(Misfit {
                    bytes: arena[row].to_vec(),
                    is_row: true,
                    reason: format!("does not fit table {}: {}", table.lake_source, e.reason),
                });
            }
        }
    }
    Ok(None)
}

/// How many rows ahead of the one being appended [`build`] asks the CPU to load: sorted by
/// time, rows are read in an order unrelated to where they lie in the arena, and a row's first
/// bytes were a cache miss (a quarter of the cycles of the row walk).
const PREFETCH_AHEAD: usize = 2;

/// Asks the CPU to start loading the first cache lines of `bytes` (the rest follow as the
/// hardware prefetcher sees them read in order). A hint: it changes no value.
#[inline]
fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in bytes.chunks(64).take(4) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch reads nothing the program sees and cannot fault; `line` is a
        // valid slice anyway.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// Writes a sealed partition as a Parquet file under a hidden temporary name in its partition
/// directory, fsynced; returns the temporary and final lake-relative paths. The caller commits
/// (logs the commit, then renames).
pub fn write_parquet(
    lake: &Path,
    sealed: &Sealed,
    batch: &RecordBatch,
    zstd_level: i32,
) -> Result<(PathBuf, String), String> {
    let table = &sealed.table;
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
    // Times and counters as differences from one value to the next: records sorted by time
    // differ by little, which bit-packs into a few bits where ZSTD would chew through eight
    // bytes each (measured: 2.8 % fewer instructions for the whole gateway on VPC flow, 0.5 %
    // on CloudTrail, and VPC files 7.5 % smaller; 32-bit enums and ports, which repeat or
    // scatter, did no better than plain).
    for column in &table.delta_columns {
        props = props.set_column_encoding(column.clone(), Encoding::DELTA_BINARY_PACKED);
    }
    for column in strings_without_dictionary(batch) {
        props = props.set_column_dictionary_enabled(column, false);
    }
    let props = props.build();
    let file = encode(file, &table.schema, props, batch).map_err(|e| e.to_string())?;
    file.sync_all()
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    Ok((tmp, final_rel))
}

/// How many values of a string column [`strings_without_dictionary`] looks at.
const DICTIONARY_SAMPLE: usize = 128;

/// The string leaf columns of `batch` that are better written without a dictionary, judged by
/// up to [`DICTIONARY_SAMPLE`] values spread over each: those with one value (ZSTD packs a
/// repeated string to almost nothing, and a dictionary would hash every value to find the one
/// it has: VPC flow's captions and metadata) and those whose values are mostly distinct (ids,
/// addresses: the dictionary would overflow its page and be dropped midway, after hashing every
/// value and storing each once more). Columns with a few values repeated (regions, user agents,
/// operation names) keep theirs: CloudTrail's files are 9 % larger without.
fn strings_without_dictionary(batch: &RecordBatch) -> Vec<ColumnPath> {
    fn walk(array: &dyn Array, path: &mut Vec<String>, out: &mut Vec<ColumnPath>) {
        use arrow_array::cast::AsArray;
        match array.data_type() {
            DataType::Utf8 => {
                let strings = array.as_string::<i32>();
                let step = (strings.len() / DICTIONARY_SAMPLE).max(1);
                let mut sample: Vec<&str> = (0..strings.len())
                    .step_by(step)
                    .filter(|&i| strings.is_valid(i))
                    .map(|i| strings.value(i))
                    .collect();
                // Sorted, equal values are neighbours: cheaper than hashing each one.
                sample.sort_unstable();
                let distinct = 1 + sample.windows(2).filter(|w| w[0] != w[1]).count();
                if !sample.is_empty() && (distinct == 1 || distinct * 2 > sample.len()) {
                    out.push(ColumnPath::new(path.clone()));
                }
            }
            DataType::Struct(fields) => {
                for (field, child) in fields.iter().zip(array.as_struct().columns()) {
                    path.push(field.name().clone());
                    walk(child, path, out);
                    path.pop();
                }
            }
            DataType::List(item) => {
                path.extend(["list".to_string(), item.name().clone()]);
                walk(array.as_list::<i32>().values(), path, out);
                path.truncate(path.len() - 2);
            }
            DataType::Map(entries, _) => {
                path.push(entries.name().clone());
                walk(array.as_map().entries(), path, out);
                path.pop();
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    let mut path = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        path.push(field.name().clone());
        walk(column, &mut path, &mut out);
        path.pop();
    }
    out
}

/// Rows in a row group at most (and 256 MB by their Arrow size).
const ROW_GROUP_ROWS: usize = 128 * 1024;
const ROW_GROUP_BYTES: usize = 256 << 20;

/// Writes `batch` as Parquet to `file`, each row group's columns encoded on up to as many
/// threads as there are cores (columns are independent; their chunks are then written in order).
fn encode(
    file: std::fs::File,
    schema: &SchemaRef,
    props: WriterProperties,
    batch: &RecordBatch,
) -> parquet::errors::Result<std::fs::File> {
    let (mut writer, factory) =
        ArrowWriter::try_new(file, schema.clone(), Some(props))?.into_serialized_writer()?;
    let rows = batch.num_rows();
    let per_row = batch.get_array_memory_size() / rows.max(1) + 1;
    let group_rows = ROW_GROUP_ROWS.min(ROW_GROUP_BYTES / per_row).max(1);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    for (index, offset) in (0..rows).step_by(group_rows).enumerate() {
        let group = batch.slice(offset, group_rows.min(rows - offset));
        let mut leaves = Vec::new();
        for (field, column) in schema.fields().iter().zip(group.columns()) {
            leaves.extend(compute_leaves(field, column)?);
        }
        // Columns are taken one at a time from a shared queue, so a costly one does not hold
        // up the rest.
        let queue = Mutex::new(
            factory
                .create_column_writers(index)?
                .into_iter()
                .zip(leaves)
                .enumerate(),
        );
        let encode_columns = || -> parquet::errors::Result<Vec<(usize, ArrowColumnChunk)>> {
            let mut done = Vec::new();
            loop {
                let next = queue.lock().unwrap_or_else(PoisonError::into_inner).next();
                let Some((i, (mut column, leaf))) = next else {
                    return Ok(done);
                };
                column.write(&leaf)?;
                done.push((i, column.close()?));
            }
        };
        let mut chunks = std::thread::scope(|scope| {
            let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(encode_columns)).collect();
            let mut chunks = encode_columns()?;
            for helper in helpers {
                let joined = helper.join().unwrap_or_else(|_| {
                    Err(ParquetError::General("a column encoder panicked".into()))
                });
                chunks.extend(joined?);
            }
            Ok::<_, ParquetError>(chunks)
        })?;
        chunks.sort_unstable_by_key(|(i, _)| *i);
        let mut row_group = writer.next_row_group()?;
        for (_, chunk) in chunks {
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
    }
    writer.into_inner()
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
    use crate::wal::{Wal, WalEvent};

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

    /// A batch of `table()` with these `(time, msg)` rows.
    fn chunk(rows: &[(i64, String)]) -> RecordBatch {
        let msg: arrow_array::StringArray = rows.iter().map(|(_, m)| Some(m.as_str())).collect();
        let time = arrow_array::Int64Array::from_iter_values(rows.iter().map(|(t, _)| *t));
        RecordBatch::try_new(table().schema.clone(), vec![Arc::new(msg), Arc::new(time)]).unwrap()
    }

    /// Events held in memory that take `len` bytes.
    fn held(len: usize) -> Events {
        Events::Held(vec![0; len].into())
    }

    /// The Network Activity table of the row tests, as a lake table.
    fn network_table() -> (
        Arc<LakeTable>,
        lakegate_plugin_sdk::host::validate::Declarations,
    ) {
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
        (table, declarations)
    }

    #[test]
    fn nested_string_columns_are_judged_under_their_parquet_paths() {
        let (table, declarations) = network_table();
        let rows: Vec<Vec<u8>> = (0..300)
            .map(|i| {
                // The same product and hop everywhere; a new `unmapped` value in every record.
                let text = rows::tests::record(
                    i,
                    &format!(r#", "unmapped": {{"k": "v{i}"}}, "src_endpoint": {{"ip": "10.0.0.1", "intermediate_ips": ["10.1.1.1"]}}"#),
                )
                .replace(r#""src_endpoint": {"ip": "10.0.0.1"}, "#, "");
                let mut row = Vec::new();
                lakegate_plugin_sdk::host::validate::schema_1_1_0()
                    .validate_row(&text, &declarations, &mut row)
                    .unwrap_or_else(|v| panic!("{text}: {v:?}"));
                row
            })
            .collect();
        let batch = rows::build(
            &table.schema,
            &table.columns,
            &table.layout,
            rows.iter().map(|r| &r[..]),
            &mut rows::StringSizes::default(),
            usize::MAX,
        )
        .unwrap();
        let mut plain: Vec<String> = strings_without_dictionary(&batch)
            .iter()
            .map(ColumnPath::string)
            .collect();
        plain.sort();
        // Every path names a leaf of the file's schema, or the writer would ignore it.
        let leaves = ArrowSchemaConverter::new().convert(&table.schema).unwrap();
        for path in &plain {
            assert!(
                leaves.columns().iter().any(|c| c.path().string() == *path),
                "{path} is no Parquet column"
            );
        }
        assert_eq!(
            plain,
            [
                // Captions the lake filled in from the ids, the same in every record.
                "activity_name",
                "category_name",
                "class_name",
                "dst_endpoint.ip",
                "metadata.product.name",
                "metadata.product.vendor_name",
                "metadata.version",
                "severity",
                "src_endpoint.intermediate_ips.list.element",
                "src_endpoint.ip",
                "type_name",
                "unmapped.key_value.key",
                "unmapped.key_value.value",
            ]
        );
    }

    /// A logged event of the Network Activity table at `time`, told apart by `bytes`.
    fn event(
        declarations: &lakegate_plugin_sdk::host::validate::Declarations,
        time: i64,
        bytes: i64,
    ) -> WalEvent {
        let mut row = Vec::new();
        let text = rows::tests::record(time, &format!(r#", "traffic": {{"bytes": {bytes}}}"#));
        lakegate_plugin_sdk::host::validate::schema_1_1_0()
            .validate_row(&text, declarations, &mut row)
            .unwrap();
        WalEvent {
            class_uid: 4001,
            time,
            region: "us-east-1".into(),
            account: "external".into(),
            record: wal::Logged::Row(row),
        }
    }

    /// `(time, traffic.bytes)` of each row of a built batch.
    fn time_and_tag(batch: &RecordBatch) -> Vec<(i64, i64)> {
        use arrow_array::cast::AsArray;
        use arrow_array::types::Int64Type;
        let times = batch["time"].as_primitive::<Int64Type>();
        let traffic = batch["traffic"].as_struct();
        let tags = traffic.column_by_name("bytes").unwrap();
        let tags = tags.as_primitive::<Int64Type>();
        (0..batch.num_rows())
            .map(|i| (times.value(i), tags.value(i)))
            .collect()
    }

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lakegate-lake-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn records_are_grouped_by_partition_in_log_order() {
        let (table, _) = network_table();
        let times = [1, DAY_MS + 1, 2, 3, 2 * DAY_MS, 4];
        // Equal values in other allocations are the same partition.
        let (region, same_region, account): (Arc<str>, Arc<str>, Arc<str>) =
            ("us-east-1".into(), "us-east-1".into(), "external".into());
        let mut p = Partitioned::default();
        for (member, &time) in times.iter().enumerate() {
            let region = if member == 2 { &same_region } else { &region };
            p.add(&table, region, &account, time, member);
        }
        let (order, runs) = p.into_runs();
        assert_eq!(order, [0, 2, 3, 5, 1, 4]);
        let runs: Vec<(i64, Range<usize>)> =
            runs.into_iter().map(|r| (r.key.day, r.events)).collect();
        assert_eq!(runs, [(0, 0..4), (1, 4..5), (2, 5..6)]);
        let key = PartitionKey::new(&table, &region, &account, DAY_MS + 1);
        assert_eq!(
            key.dir(),
            "ext/s-4001/region=us-east-1/accountId=external/eventDay=19700102"
        );
    }

    #[test]
    fn caps_flush_the_largest_or_oldest_early() {
        let mut b = Buffers::new(FlushConfig {
            max_age: Duration::from_secs(3600),
            max_partition_bytes: 1 << 20,
            max_buffered_bytes: 900 + 100 + 5000 - 1,
            max_open_partitions: 3,
            zstd_level: 3,
        });
        let (t, now) = (table(), Instant::now());
        b.insert(&t, &key(1), 1, held(900));
        b.insert(&t, &key(2), 1, held(100));
        assert!(b.due(now, false).is_empty());
        b.insert(&t, &key(3), 2, held(5000));
        // Over the cap by a byte: the largest (day 3) goes first, and that is enough.
        assert_eq!(b.due(now, false), vec![key(3)]);
        b.seal(&key(3));
        for d in 4..=5 {
            b.insert(&t, &key(d), 3, held(30));
        }
        // Four open partitions, cap three: the oldest goes.
        assert_eq!(b.due(now, false), vec![key(1)]);
        assert_eq!(b.min_seq(), Some(1));
        let sealed = b.seal(&key(1)).unwrap();
        assert_eq!(sealed.seqs, vec![1]);
        assert_eq!(b.due(now, true).len(), 3);
        // A partition past its own size is due by itself.
        b.insert(&t, &key(6), 4, held(1 << 20));
        assert_eq!(b.due(now, false), vec![key(6)]);
    }

    #[test]
    fn a_partition_is_read_back_from_the_log_and_built_once_sorted_by_time() {
        let dir = temp("build");
        let (table, declarations) = network_table();
        let (mut log, _) = Wal::open(&dir.join("wal"), 1 << 20, false, &dir, |_, _, _| {}).unwrap();
        let mut b = Buffers::new(FlushConfig::default());
        let key = PartitionKey::new(&table, &"us-east-1".into(), &"external".into(), 0);
        // Two entries; every time appears in both, and `traffic.bytes` says which entry and
        // which of the entry's events it is. The second entry has another partition's event
        // in the middle of it, which the partition's runs leave out.
        let mut logged = Vec::new();
        for entry in 0..2 {
            let mut events: Vec<WalEvent> = (0..3)
                .map(|i| event(&declarations, 30 - 10 * i, entry * 10 + i))
                .collect();
            let mut run = 0..3;
            if entry == 1 {
                events.insert(1, event(&declarations, DAY_MS, 99));
                events.swap(0, 1);
                run = 1..4;
            }
            let (seq, spans) = log
                .append_data("s", &events, std::slice::from_ref(&run))
                .unwrap();
            logged.push((seq, spans[0]));
        }
        log.sync().unwrap();
        for (seq, span) in &logged {
            b.insert(&table, &key, *seq, Events::Logged(*span));
        }
        assert_eq!(b.usage(), ((logged[0].1.len + logged[1].1.len) as usize, 1));
        let sealed = b.seal(&key).unwrap();
        assert_eq!(sealed.seqs, [1, 2]);
        let mut reader = LogReader::new(&dir.join("wal"));
        let mut misfits = Vec::new();
        let batch = build(&sealed, &mut reader, &mut Vec::new(), &mut misfits)
            .unwrap()
            .unwrap();
        assert!(misfits.is_empty(), "{misfits:?}");
        assert_eq!(
            time_and_tag(&batch),
            [(10, 2), (10, 12), (20, 1), (20, 11), (30, 0), (30, 10)],
            "sorted by time; equal times in the order they were logged"
        );
        // A failed write puts it back whole, to be built again.
        b.restore(sealed);
        assert_eq!(b.usage().1, 1);
        let again = b.seal(&key).unwrap();
        assert_eq!(again.seqs, [1, 2]);
        let rebuilt = build(&again, &mut reader, &mut Vec::new(), &mut misfits)
            .unwrap()
            .unwrap();
        assert_eq!(rebuilt.num_rows(), 6);
        assert_eq!(b.usage(), (0, 0));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rows_that_do_not_fit_and_damaged_log_bytes_become_misfits_the_rest_is_written() {
        let dir = temp("misfits");
        let (table, declarations) = network_table();
        let (mut log, _) = Wal::open(&dir.join("wal"), 1 << 20, false, &dir, |_, _, _| {}).unwrap();
        let key = PartitionKey::new(&table, &"us-east-1".into(), &"external".into(), 0);
        let mut short = event(&declarations, 5, 1);
        if let wal::Logged::Row(row) = &mut short.record {
            row.truncate(9);
        }
        let events = [
            event(&declarations, 7, 0),
            short,
            event(&declarations, 3, 2),
        ];
        let whole = |n: usize| [Range { start: 0, end: n }];
        let (_, good) = log.append_data("s", &events, &whole(3)).unwrap();
        let (_, damaged) = log
            .append_data("s", &[event(&declarations, 1, 3)], &whole(1))
            .unwrap();
        log.sync().unwrap();
        // A bit flips on disk in the second entry's event.
        let segment = dir
            .join("wal")
            .join(format!("{:020}.wal", damaged[0].segment));
        let mut bytes = std::fs::read(&segment).unwrap();
        bytes[damaged[0].offset as usize + 20] ^= 1;
        std::fs::write(&segment, bytes).unwrap();
        let mut b = Buffers::new(FlushConfig::default());
        b.insert(&table, &key, 1, Events::Logged(good[0]));
        b.insert(&table, &key, 2, Events::Logged(damaged[0]));
        let sealed = b.seal(&key).unwrap();
        let mut misfits = Vec::new();
        let mut reader = LogReader::new(&dir.join("wal"));
        let batch = build(&sealed, &mut reader, &mut Vec::new(), &mut misfits)
            .unwrap()
            .unwrap();
        assert_eq!(time_and_tag(&batch), [(3, 2), (7, 0)]);
        assert_eq!(misfits.len(), 2, "{misfits:?}");
        let damaged_misfit = &misfits[0];
        assert!(!damaged_misfit.is_row);
        assert!(
            damaged_misfit
                .reason
                .contains("no longer match their checksum"),
            "{}",
            damaged_misfit.reason
        );
        assert_eq!(damaged_misfit.bytes.len(), damaged[0].len as usize);
        assert!(misfits[1].is_row);
        assert!(
            misfits[1].reason.contains("does not fit table s-4001"),
            "{}",
            misfits[1].reason
        );
        // A log that is gone is an error for the whole partition, which stays buffered.
        drop(reader);
        std::fs::remove_dir_all(dir.join("wal")).unwrap();
        let err = build(
            &sealed,
            &mut LogReader::new(&dir.join("wal")),
            &mut Vec::new(),
            &mut misfits,
        );
        assert!(err.is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn row_groups_hold_at_most_128_ki_rows_and_read_back_whole() {
        use arrow_array::cast::AsArray;
        use arrow_array::types::Int64Type;
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let rows: Vec<(i64, String)> = (0..300_000).map(|i| (i, format!("m{}", i % 7))).collect();
        let batch = chunk(&rows);
        let dir = temp("groups");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f.parquet");
        let props = WriterProperties::builder().build();
        let file = std::fs::File::create(&path).unwrap();
        encode(file, &table().schema, props, &batch).unwrap();
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap()).unwrap();
        let groups: Vec<i64> = reader
            .metadata()
            .row_groups()
            .iter()
            .map(|g| g.num_rows())
            .collect();
        assert_eq!(groups, [131_072, 131_072, 37_856]);
        let mut times = Vec::new();
        let mut msgs = Vec::new();
        for b in reader.build().unwrap() {
            let b = b.unwrap();
            times.extend_from_slice(b["time"].as_primitive::<Int64Type>().values());
            msgs.extend(
                b["msg"]
                    .as_string::<i32>()
                    .iter()
                    .map(|m| m.unwrap().to_string()),
            );
        }
        assert_eq!(times, (0..300_000).collect::<Vec<i64>>());
        assert!(msgs.iter().zip(&rows).all(|(m, (_, want))| m == want));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn repeated_strings_are_dictionary_encoded_and_times_as_differences_with_statistics() {
        use parquet::file::metadata::ColumnChunkMetaData;
        use parquet::file::reader::{FileReader, SerializedFileReader};
        use parquet::file::statistics::Statistics;
        let (t, mut b) = (table(), Buffers::new(FlushConfig::default()));
        b.insert(&t, &key(0), 1, held(0));
        let sealed = b.seal(&key(0)).unwrap();
        let lake = std::env::temp_dir().join(format!("lakegate-dict-{}", std::process::id()));
        // The column chunks of `msg` and `time` in a file of 1,000 rows with these messages.
        let write = |msg: &dyn Fn(i64) -> String| -> [ColumnChunkMetaData; 2] {
            let rows: Vec<(i64, String)> = (0..1000).map(|i| (i, msg(i))).collect();
            let (tmp, _) = write_parquet(&lake, &sealed, &chunk(&rows), 3).unwrap();
            let reader = SerializedFileReader::new(std::fs::File::open(&tmp).unwrap()).unwrap();
            let group = reader.metadata().row_group(0).clone();
            ["msg", "time"].map(|name| {
                (0..group.num_columns())
                    .map(|i| group.column(i).clone())
                    .find(|c| c.column_path().string() == name)
                    .unwrap_or_else(|| panic!("no column {name}"))
            })
        };
        let dictionary =
            |c: &ColumnChunkMetaData| c.encodings().any(|e| e == Encoding::RLE_DICTIONARY);
        // A few values, repeated: a dictionary. (Eleven of them, as the sample takes every
        // seventh of 1,000 rows: every seventh of seven values would be one value.)
        let [msg, time] = write(&|i| format!("user agent {}", i % 11));
        assert!(
            dictionary(&msg),
            "{:?}",
            msg.encodings().collect::<Vec<_>>()
        );
        assert!(!dictionary(&time));
        assert!(
            time.encodings().any(|e| e == Encoding::DELTA_BINARY_PACKED)
                && !time.encodings().any(|e| e == Encoding::PLAIN),
            "{:?}",
            time.encodings().collect::<Vec<_>>()
        );
        // `time` keeps its range, for readers that skip by it; strings have no statistics.
        let Some(Statistics::Int64(range)) = time.statistics() else {
            panic!("time has no INT64 statistics")
        };
        assert_eq!((range.min_opt(), range.max_opt()), (Some(&0), Some(&999)));
        assert!(msg.statistics().is_none());
        // One value throughout, or a different one in each row: plain.
        let [constant, _] = write(&|_| "x".repeat(40));
        let [unique, _] = write(&|i| format!("request {i:08}"));
        for (what, c) in [("constant", constant), ("unique", unique)] {
            assert!(
                !dictionary(&c),
                "{what}: {:?}",
                c.encodings().collect::<Vec<_>>()
            );
            assert!(c.encodings().any(|e| e == Encoding::PLAIN), "{what}");
        }
        std::fs::remove_dir_all(&lake).unwrap();
    }
}
