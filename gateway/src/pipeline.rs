//! The durable half of the gateway, on four threads:
//! - `lakegate-wal` makes batches durable: the write-ahead log (group commit: every append that
//!   is waiting goes into one fsync) and the dead-letter area. Ingest handlers send it translated
//!   batches and wait for its reply; only then do they acknowledge. It hands where each durable
//!   batch's events lie in the log on to the lake thread, in order.
//! - `lakegate-lake` owns the partition buffers (spans of the log, not records): it decides
//!   when a partition is due, hands it to the writer, and deletes the log segments nothing
//!   buffered or being written needs any more.
//! - `lakegate-writer` reads a due partition's events back from the log and builds its columns;
//!   `lakegate-commit` writes the Parquet file of the partition built before, commits it
//!   through the shared log and records it in the catalog. So neither acknowledgements nor
//!   buffering wait for an encoder, and building one file overlaps encoding the last.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

use crate::config::Config;
use crate::lake::catalog::Catalog;
use crate::lake::dead_letter::{DeadLetter, DeadLetterWriter};
use crate::lake::{self, Buffers, Events, LakeTable, PartitionKey, Run, Sealed};
use crate::sources::{Counters, Source, Sources};
use crate::wal::{
    self, CommitEntry, DataEntry, LogReader, Logged, Place, Recovery, Span, Wal, WalEvent,
};
use lakegate_plugin_sdk::host::validate::schema_1_1_0;

/// What a flush wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Flushed {
    pub files: u64,
    pub events: u64,
}

/// A translated batch waiting to be made durable.
struct Append {
    source: Arc<Source>,
    /// What the log keeps: the events as rows, each partition's together.
    events: Vec<WalEvent>,
    /// Each partition's run of `events`: the lake notes where in the log it is.
    runs: Vec<Run>,
    letters: Vec<DeadLetter>,
    reply: oneshot::Sender<Result<(), String>>,
}

enum Command {
    Append(Append),
    Flush { reply: oneshot::Sender<Flushed> },
}

/// What the WAL thread hands the lake thread, in log order.
enum Durable {
    Batch { seq: u64, parts: Vec<(Run, Span)> },
    Flush { reply: oneshot::Sender<Flushed> },
}

/// The handle ingest handlers use.
#[derive(Clone)]
pub struct Pipeline {
    tx: mpsc::Sender<Command>,
    stats: Arc<Stats>,
}

/// Gauges for metrics.
#[derive(Debug, Default)]
pub struct Stats {
    pub buffered_bytes: std::sync::atomic::AtomicU64,
    pub open_partitions: std::sync::atomic::AtomicU64,
    pub wal_syncs: std::sync::atomic::AtomicU64,
    pub wal_segments: std::sync::atomic::AtomicU64,
}

impl Pipeline {
    /// Opens the lake, replays the write-ahead log, and starts the thread. Returns when
    /// recovery is done.
    pub fn start(
        config: &Config,
        sources: Arc<Sources>,
        runtime: tokio::runtime::Handle,
    ) -> anyhow::Result<(Pipeline, std::thread::JoinHandle<()>)> {
        let lake = config.lake.clone();
        std::fs::create_dir_all(&lake)?;
        let removed = lake::remove_temporaries(&lake)?;
        let mut catalog = Catalog::open(&lake)?;
        for source in sources.by_name.values() {
            for table in source.tables.values() {
                catalog.ensure_table(
                    &table.lake_source,
                    format!(
                        "OCSF {} {} ({}) from lakegate source {} (plugin {} {})",
                        table.ocsf_version,
                        table.class_name,
                        table.class_uid,
                        source.name,
                        source.manifest.name,
                        source.manifest.version
                    ),
                    [
                        ("ocsf_version".to_string(), table.ocsf_version.clone()),
                        ("ocsf_class_uid".to_string(), table.class_uid.to_string()),
                    ]
                    .into(),
                    table.glue_columns(),
                )?;
            }
        }
        let run = uuid::Uuid::now_v7().to_string();
        let stats = Arc::new(Stats::default());
        let first_segment = Arc::new(AtomicU64::new(0));
        let mut state = State {
            buffers: Buffers::new(config.flush.clone()),
            sources: sources.clone(),
            stats: stats.clone(),
            received_seq: 0,
            released_below: 0,
            writing: BTreeMap::new(),
            next_job: 0,
            first_segment: first_segment.clone(),
        };
        let mut writer = Writer {
            dead_letters: DeadLetterWriter::new(&lake, &format!("{run}-lake")),
            sources: sources.clone(),
            reader: LogReader::new(&lake.join("wal")),
            arena: Vec::new(),
            first_segment,
        };
        let committer = Committer {
            lake: lake.clone(),
            zstd_level: config.flush.zstd_level,
            catalog,
            sources,
            flushed: Flushed::default(),
        };
        let mut orphans = Vec::new();
        let (wal, recovery) = Wal::open(
            &lake.join("wal"),
            config.wal.segment_bytes,
            config.wal.fsync,
            &lake,
            |entry, place, committed| state.replay(entry, place, committed, &mut orphans),
        )?;
        if !orphans.is_empty() {
            writer.dead_letters.append(&orphans)?;
            writer.dead_letters.sync()?;
        }
        report_recovery(&recovery, removed, orphans.len(), state.buffers.usage().0);
        state.received_seq = wal.next_seq().saturating_sub(1);
        let wal = Arc::new(Mutex::new(wal));
        let (tx, rx) = mpsc::channel(64);
        // One batch waiting for the lake thread, which only notes spans: when the writer falls
        // behind, the lake thread waits for it, and this queue pushes back on the WAL thread.
        let (to_lake, from_wal) = sync_channel(1);
        let logger = Logger {
            wal: wal.clone(),
            dead_letters: DeadLetterWriter::new(&lake, &run),
            stats: stats.clone(),
            to_lake,
        };
        let wal_thread = std::thread::Builder::new()
            .name("lakegate-wal".into())
            .spawn(move || logger.run(rx, runtime))?;
        // Two sealed partitions waiting for the writer: a sealed partition is only where its
        // records are in the log, so the lake thread goes on taking batches while a file is
        // written, and stops (pushing back on the WAL thread) only when the writer falls behind.
        let (jobs, for_writer) = sync_channel(2);
        let (done, from_writer) = std::sync::mpsc::channel();
        // No built partition waits between the writer and the committer: at most one is built
        // while the one before it is encoded.
        let (built, for_committer) = sync_channel(0);
        let committer_wal = wal.clone();
        let committed = done.clone();
        let committer_thread = std::thread::Builder::new()
            .name("lakegate-commit".into())
            .spawn(move || committer.run(&committer_wal, for_committer, committed))?;
        let writer_thread = std::thread::Builder::new()
            .name("lakegate-writer".into())
            .spawn(move || {
                writer.run(for_writer, built, done);
                // The committer ends once the writer's sender is gone: joining the writer
                // waits for both.
                let _ = committer_thread.join();
            })?;
        let lake_thread = std::thread::Builder::new()
            .name("lakegate-lake".into())
            .spawn(move || {
                state.run(&wal, from_wal, jobs, from_writer, writer_thread);
                let _ = wal_thread.join();
            })?;
        Ok((Pipeline { tx, stats }, lake_thread))
    }

    /// Hands a translated batch to the log, in order with the caller's earlier batches; the
    /// returned [`Durability`] resolves once it is durable (or says why it could not be). Waits
    /// while the log's queue is full.
    pub async fn submit(
        &self,
        source: Arc<Source>,
        events: Vec<WalEvent>,
        runs: Vec<Run>,
        letters: Vec<DeadLetter>,
    ) -> Result<Durability, String> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Append(Append {
                source,
                events,
                runs,
                letters,
                reply,
            }))
            .await
            .map_err(|_| "the gateway is shutting down".to_string())?;
        Ok(Durability(rx))
    }

    /// Writes every buffered partition now.
    pub async fn flush(&self) -> Result<Flushed, String> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Flush { reply })
            .await
            .map_err(|_| "the gateway is shutting down".to_string())?;
        rx.await
            .map_err(|_| "the gateway is shutting down".to_string())
    }

    /// Gauges.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}

/// A submitted batch on its way into the log.
pub struct Durability(oneshot::Receiver<Result<(), String>>);

impl Durability {
    /// Returns once the batch is durable, or why it could not be made so.
    pub async fn wait(self) -> Result<(), String> {
        self.0
            .await
            .map_err(|_| "the gateway is shutting down".to_string())?
    }
}

fn report_recovery(recovery: &Recovery, temporaries: usize, orphans: usize, buffered: usize) {
    if recovery.data_entries > 0 || recovery.torn_bytes > 0 || temporaries > 0 {
        info!(
            segments = recovery.segments,
            entries = recovery.data_entries,
            commits = recovery.commits,
            buffered_bytes = buffered,
            torn_bytes = recovery.torn_bytes,
            temporaries_removed = temporaries,
            "recovered the write-ahead log"
        );
    }
    for (path, bytes) in &recovery.corrupt {
        error!(segment = %path.display(), bytes, "write-ahead log segment is corrupt before its end: the rest of it is skipped");
    }
    if orphans > 0 {
        warn!(
            events = orphans,
            "recovered events the lake can no longer take (their source, class or declarations changed) went to the dead-letter area"
        );
    }
}

/// The lake thread's state: what is buffered, and which partitions are being written.
struct State {
    buffers: Buffers,
    sources: Arc<Sources>,
    stats: Arc<Stats>,
    /// The highest sequence number received from the WAL thread: everything logged after it
    /// is still on its way here and must stay in the log.
    received_seq: u64,
    /// Segments below this sequence number have been released.
    released_below: u64,
    /// The lowest sequence number of each partition handed to the writer and not yet written,
    /// by job: the log keeps them until the file is committed.
    writing: BTreeMap<u64, u64>,
    next_job: u64,
    /// The oldest segment still on disk, for the writer to close the files of older ones.
    first_segment: Arc<AtomicU64>,
}

/// The writer thread's state: reads partitions back and builds their columns, for the
/// [`Committer`] to encode and commit (one partition is built while the one before it is
/// encoded, so a burst of partitions, as at shutdown, keeps both cores busy).
struct Writer {
    dead_letters: DeadLetterWriter,
    sources: Arc<Sources>,
    reader: LogReader,
    /// The rows of the partition being built, read back (kept for the next one).
    arena: Vec<u8>,
    first_segment: Arc<AtomicU64>,
}

/// The second stage of the writer: writes a built partition's file and commits it.
struct Committer {
    lake: PathBuf,
    zstd_level: i32,
    catalog: Catalog,
    sources: Arc<Sources>,
    /// What the jobs of the flush now in progress wrote.
    flushed: Flushed,
}

/// Work for the committer, in order.
enum Built {
    /// A partition's columns, to be written as a file.
    Write {
        id: u64,
        sealed: Sealed,
        batch: RecordBatch,
        for_flush: bool,
    },
    /// Report what the flush's writes came to (every write before it is done).
    Report(oneshot::Sender<Flushed>),
}

/// Work for the writer thread, in order.
enum Job {
    /// Write a sealed partition (`for_flush`: counted in the next report).
    Write {
        id: u64,
        sealed: Sealed,
        for_flush: bool,
    },
    /// Report what the flush's writes came to.
    Report(oneshot::Sender<Flushed>),
}

/// A finished [`Job::Write`], back to the lake thread.
struct Done {
    id: u64,
    /// The partition, if it could not be written: buffered again, to be tried again.
    failed: Option<Sealed>,
}

/// A run of recovered events of one partition (see [`State::replay`]).
struct Replayed {
    table: Arc<LakeTable>,
    key: PartitionKey,
    /// Their positions in the entry.
    positions: std::ops::Range<usize>,
    /// The events, as rows.
    events: Vec<WalEvent>,
    /// Whether the log has every one of them as a row.
    logged_rows: bool,
}

/// The WAL thread's state.
struct Logger {
    wal: Arc<Mutex<Wal>>,
    dead_letters: DeadLetterWriter,
    stats: Arc<Stats>,
    to_lake: SyncSender<Durable>,
}

/// How long the lake thread waits for work before it checks partition ages.
const TICK: Duration = Duration::from_millis(200);

impl State {
    /// Buffers the events of a logged entry that no committed file holds, checked again.
    /// Events that cannot go back into the lake (their source or class is gone, or they no
    /// longer pass) become `orphans`, for the dead-letter area. The buffers note where in the
    /// log the rest are (events the log kept as JSON are held in memory, as rows).
    fn replay(
        &mut self,
        entry: DataEntry,
        place: &Place<'_>,
        committed: &dyn Fn(&str, u64) -> bool,
        orphans: &mut Vec<DeadLetter>,
    ) {
        let source = self.sources.by_name.get(&entry.source).cloned();
        let orphan = |record: &Logged, reason: String| {
            lake_letter(&entry.source, source.as_deref(), record, reason)
        };
        // Consecutive events of one partition that go back into it.
        let mut run: Option<Replayed> = None;
        let mut row = Vec::new();
        for (i, event) in entry.events.into_iter().enumerate() {
            let Some((source, table)) = source
                .as_ref()
                .and_then(|s| Some((s, s.tables.get(&event.class_uid)?)))
            else {
                orphans.push(orphan(
                    &event.record,
                    format!(
                        "recovered from the write-ahead log, but source `{}` no longer has a table for class {}",
                        entry.source, event.class_uid
                    ),
                ));
                continue;
            };
            let key = PartitionKey::new(table, &event.region, &event.account, event.time);
            if committed(&key.dir(), entry.seq) {
                continue;
            }
            let schema = schema_1_1_0();
            let checked = match &event.record {
                Logged::Row(logged) => schema.validate_row_bytes(logged, &source.declarations),
                Logged::Json(json) => schema.validate_row(json, &source.declarations, &mut row),
            };
            if let Err(violations) = checked {
                let reasons: Vec<String> = violations.iter().map(ToString::to_string).collect();
                orphans.push(orphan(
                    &event.record,
                    format!(
                        "recovered from the write-ahead log, but source `{}` no longer accepts it: {}",
                        entry.source,
                        reasons.join("; ")
                    ),
                ));
                continue;
            }
            let continues = run
                .as_ref()
                .is_some_and(|r| r.key == key && r.positions.end == i);
            if !continues {
                if let Some(done) = run.take() {
                    self.buffer_replayed(done, place, entry.seq);
                }
            }
            let r = run.get_or_insert_with(|| Replayed {
                table: table.clone(),
                key,
                positions: i..i,
                events: Vec::new(),
                logged_rows: true,
            });
            r.positions.end = i + 1;
            r.logged_rows &= matches!(event.record, Logged::Row(_));
            let record = match event.record {
                Logged::Row(logged) => logged,
                Logged::Json(_) => row.clone(),
            };
            r.events.push(WalEvent {
                record: Logged::Row(record),
                ..event
            });
        }
        if let Some(done) = run {
            self.buffer_replayed(done, place, entry.seq);
        }
    }

    /// Buffers a run of recovered events: where it is in the log if the log has it as rows,
    /// else its rows.
    fn buffer_replayed(&mut self, run: Replayed, place: &Place<'_>, seq: u64) {
        let span = run.logged_rows.then(|| place.span(run.positions)).flatten();
        let events = match span {
            Some(span) => Events::Logged(span),
            None => {
                let mut held = Vec::new();
                for event in &run.events {
                    wal::encode_event(&mut held, event);
                }
                Events::Held(held.into())
            }
        };
        self.buffers.insert(&run.table, &run.key, seq, events);
    }

    fn run(
        mut self,
        wal: &Mutex<Wal>,
        from_wal: Receiver<Durable>,
        jobs: SyncSender<Job>,
        from_writer: Receiver<Done>,
        writer: std::thread::JoinHandle<()>,
    ) {
        loop {
            let mut flushes = Vec::new();
            match from_wal.recv_timeout(TICK) {
                Ok(first) => {
                    let mut next = Some(first);
                    while let Some(d) = next {
                        match d {
                            Durable::Batch { seq, parts } => {
                                self.received_seq = self.received_seq.max(seq);
                                for (run, span) in parts {
                                    self.buffers.insert(
                                        &run.table,
                                        &run.key,
                                        seq,
                                        Events::Logged(span),
                                    );
                                }
                            }
                            Durable::Flush { reply } => flushes.push(reply),
                        }
                        next = from_wal.try_recv().ok();
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            self.settle(&from_writer);
            let for_flush = !flushes.is_empty();
            self.hand_over(
                &jobs,
                self.buffers.due(Instant::now(), for_flush),
                for_flush,
            );
            for reply in flushes {
                let _ = jobs.send(Job::Report(reply));
            }
            self.release(wal);
            let (bytes, open) = self.buffers.usage();
            self.stats.buffered_bytes.store(bytes as u64, Relaxed);
            self.stats.open_partitions.store(open as u64, Relaxed);
        }
        // The WAL thread is gone, so the server has stopped: write everything, empty the log.
        let (reply, flushed) = oneshot::channel();
        self.hand_over(&jobs, self.buffers.due(Instant::now(), true), true);
        let _ = jobs.send(Job::Report(reply));
        drop(jobs);
        let _ = writer.join();
        self.settle(&from_writer);
        let flushed = flushed.blocking_recv().unwrap_or_default();
        info!(
            files = flushed.files,
            events = flushed.events,
            "flushed on shutdown"
        );
        if self.buffers.usage().1 == 0 && self.writing.is_empty() {
            if let Err(e) = lock(wal).clear() {
                error!(error = %e, "cannot clear the write-ahead log");
            }
        }
    }

    /// Seals the given partitions and hands them to the writer (waiting while it is behind).
    fn hand_over(&mut self, jobs: &SyncSender<Job>, due: Vec<PartitionKey>, for_flush: bool) {
        for key in due {
            let Some(sealed) = self.buffers.seal(&key) else {
                continue;
            };
            let id = self.next_job;
            self.next_job += 1;
            self.writing.insert(id, sealed.seqs[0]);
            if let Err(e) = jobs.send(Job::Write {
                id,
                sealed,
                for_flush,
            }) {
                // The writer is gone (it panicked): keep the partition, in the log as well.
                if let Job::Write { sealed, .. } = e.0 {
                    self.writing.remove(&id);
                    self.buffers.restore(sealed);
                }
            }
        }
    }

    /// Takes in what the writer finished: partitions it could not write are buffered again.
    fn settle(&mut self, from_writer: &Receiver<Done>) {
        while let Ok(done) = from_writer.try_recv() {
            self.writing.remove(&done.id);
            if let Some(sealed) = done.failed {
                self.buffers.restore(sealed);
            }
        }
    }

    /// Deletes the log segments nothing buffered or being written needs any more.
    fn release(&mut self, wal: &Mutex<Wal>) {
        let min_live = [self.buffers.min_seq(), self.writing.values().min().copied()]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.received_seq + 1);
        // Only when the oldest needed entry moved: the lock waits behind the WAL thread's fsync.
        if min_live > self.released_below {
            let mut wal = lock(wal);
            match wal.release(min_live) {
                Ok(_) => {
                    self.released_below = min_live;
                    self.first_segment.store(wal.first_segment(), Relaxed);
                }
                Err(e) => error!(error = %e, "cannot delete a write-ahead log segment"),
            }
            self.stats
                .wal_segments
                .store(wal.segment_count() as u64, Relaxed);
        }
    }
}

impl Writer {
    /// Builds each sealed partition's columns and hands them to the committer, in order.
    fn run(
        mut self,
        jobs: Receiver<Job>,
        committer: SyncSender<Built>,
        done: std::sync::mpsc::Sender<Done>,
    ) {
        for job in jobs {
            let built = match job {
                Job::Write {
                    id,
                    sealed,
                    for_flush,
                } => match self.build(&sealed) {
                    Ok(Some(batch)) => Built::Write {
                        id,
                        sealed,
                        batch,
                        for_flush,
                    },
                    // Nothing left to write: the log no longer needs these entries for it.
                    Ok(None) => {
                        let _ = done.send(Done { id, failed: None });
                        continue;
                    }
                    Err(e) => {
                        error!(partition = %sealed.key.dir(), error = %e, "cannot write partition; its records stay buffered and logged");
                        let _ = done.send(Done {
                            id,
                            failed: Some(sealed),
                        });
                        continue;
                    }
                },
                Job::Report(reply) => Built::Report(reply),
            };
            if let Err(e) = committer.send(built) {
                // The committer is gone (it panicked): keep the partition.
                if let Built::Write { id, sealed, .. } = e.0 {
                    let _ = done.send(Done {
                        id,
                        failed: Some(sealed),
                    });
                }
            }
        }
    }

    /// Reads a sealed partition back from the log and builds its columns (`None`: nothing is
    /// left to write); events that do not fit go to the dead-letter area.
    fn build(&mut self, sealed: &Sealed) -> Result<Option<RecordBatch>, String> {
        let source_name = &sealed.table.source;
        let mut misfits = Vec::new();
        let batch = lake::build(sealed, &mut self.reader, &mut self.arena, &mut misfits);
        self.reader.forget_below(self.first_segment.load(Relaxed));
        let batch = batch?;
        if !misfits.is_empty() {
            let source = self.sources.by_name.get(source_name).cloned();
            dead_letter_misfits(
                &mut self.dead_letters,
                source_name,
                source.as_deref(),
                misfits,
            )?;
        }
        Ok(batch)
    }
}

impl Committer {
    fn run(
        mut self,
        wal: &Mutex<Wal>,
        built: Receiver<Built>,
        done: std::sync::mpsc::Sender<Done>,
    ) {
        for job in built {
            match job {
                Built::Write {
                    id,
                    sealed,
                    batch,
                    for_flush,
                } => {
                    let failed = match self.write(wal, &sealed, &batch) {
                        Ok(rows) => {
                            if for_flush {
                                self.flushed.files += 1;
                                self.flushed.events += rows;
                            }
                            None
                        }
                        Err(e) => {
                            error!(partition = %sealed.key.dir(), error = %e, "cannot write partition; its records stay buffered and logged");
                            Some(sealed)
                        }
                    };
                    let _ = done.send(Done { id, failed });
                }
                Built::Report(reply) => {
                    let _ = reply.send(std::mem::take(&mut self.flushed));
                }
            }
        }
    }

    /// Writes a built partition's file and commits it; returns the rows written, or why the
    /// partition could not be written.
    fn write(
        &mut self,
        wal: &Mutex<Wal>,
        sealed: &Sealed,
        batch: &RecordBatch,
    ) -> Result<u64, String> {
        let key = &sealed.key;
        let (tmp, file) = lake::write_parquet(&self.lake, sealed, batch, self.zstd_level)?;
        let rows = batch.num_rows() as u64;
        let commit = CommitEntry {
            file: file.clone(),
            partition: key.dir(),
            seqs: sealed.seqs.clone(),
        };
        if let Err(e) = lock(wal)
            .commit(&commit)
            .map_err(|e| e.to_string())
            .and_then(|()| lake::publish(&self.lake, &tmp, &file).map_err(|e| e.to_string()))
        {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        if let Err(e) = self.catalog.add_partition(
            &key.lake_source,
            &key.region,
            &key.account,
            &lake::day_string(key.day),
        ) {
            error!(error = %e, "cannot update the catalog");
        }
        if let Some(source) = self.sources.by_name.get(&sealed.table.source) {
            Counters::add(&source.counters.events_written, rows);
            Counters::add(&source.counters.files_written, 1);
            source.counters.last_write_ms.store(now_ms(), Relaxed);
        }
        info!(file = %file, rows, "committed");
        Ok(rows)
    }
}

/// Sends the events a partition's file cannot take to the dead-letter area, durably.
fn dead_letter_misfits(
    dead_letters: &mut DeadLetterWriter,
    source_name: &str,
    source: Option<&Source>,
    misfits: Vec<lake::Misfit>,
) -> Result<(), String> {
    let letters: Vec<DeadLetter> = misfits
        .into_iter()
        .map(|m| {
            error!(source = source_name, reason = %m.reason, "an acknowledged event cannot go into the lake: dead-lettered");
            if m.is_row {
                lake_letter(source_name, source, &Logged::Row(m.bytes), m.reason)
            } else {
                let plugin = source.map(|s| (&s.manifest, &s.info));
                DeadLetter {
                    framing: "lakegate-wal-events".into(),
                    ..DeadLetter::new(source_name, plugin, "lake", m.reason, &m.bytes)
                }
            }
        })
        .collect();
    if let Some(source) = source {
        Counters::add(&source.counters.dead_lettered, letters.len() as u64);
    }
    dead_letters
        .append(&letters)
        .and_then(|()| dead_letters.sync())
        .map_err(|e| format!("dead-letter area: {e}"))
}

impl Logger {
    fn run(mut self, mut rx: mpsc::Receiver<Command>, runtime: tokio::runtime::Handle) {
        while let Some(first) = runtime.block_on(rx.recv()) {
            let mut commands = vec![first];
            while commands.len() < 256 {
                match rx.try_recv() {
                    Ok(c) => commands.push(c),
                    Err(_) => break,
                }
            }
            let mut appends = Vec::new();
            for c in commands {
                match c {
                    Command::Append(append) => appends.push(append),
                    Command::Flush { reply } => {
                        // Everything logged before it is handed on first.
                        self.append(std::mem::take(&mut appends));
                        let _ = self.to_lake.send(Durable::Flush { reply });
                    }
                }
            }
            self.append(appends);
        }
        // Dropping `to_lake` tells the lake thread to flush and finish.
    }

    /// Group commit: log every waiting batch, one fsync, then acknowledge them and hand them on.
    fn append(&mut self, appends: Vec<Append>) {
        if appends.is_empty() {
            return;
        }
        let mut logged = Vec::with_capacity(appends.len());
        let mut wal = lock(&self.wal);
        for Append {
            source,
            events,
            runs,
            letters,
            reply,
        } in appends
        {
            let ranges: Vec<_> = runs.iter().map(|r| r.events.clone()).collect();
            let seq = if events.is_empty() {
                Ok((0, Vec::new()))
            } else {
                wal.append_data(&source.name, &events, &ranges)
                    .map_err(|e| e.to_string())
            };
            let written = seq.and_then(|seq| {
                self.dead_letters
                    .append(&letters)
                    .map(|()| seq)
                    .map_err(|e| format!("dead-letter area: {e}"))
            });
            // The log has the events now; the lake notes where.
            match written {
                Ok((seq, spans)) => {
                    let parts: Vec<(Run, Span)> = runs.into_iter().zip(spans).collect();
                    logged.push((source, seq, events.len(), parts, letters.len(), reply))
                }
                Err(e) => {
                    error!(error = %e, "cannot log a batch");
                    let _ = reply.send(Err(e));
                }
            }
        }
        let synced = wal.sync().map_err(|e| e.to_string()).and_then(|()| {
            self.dead_letters
                .sync()
                .map_err(|e| format!("dead-letter area: {e}"))
        });
        drop(wal);
        self.stats
            .wal_syncs
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Err(e) = &synced {
            error!(error = %e, "cannot sync the write-ahead log");
        }
        for (source, seq, events, parts, letters, reply) in logged {
            if let Err(e) = &synced {
                // Not durable: not acknowledged. The client sends it again.
                let _ = reply.send(Err(e.clone()));
                continue;
            }
            Counters::add(&source.counters.events_acknowledged, events as u64);
            Counters::add(&source.counters.dead_lettered, letters as u64);
            let _ = reply.send(Ok(()));
            if !parts.is_empty() {
                // Blocks while the lake thread is behind: that is the backpressure.
                let _ = self.to_lake.send(Durable::Batch { seq, parts });
            }
        }
    }
}

/// The log, even if a thread panicked while holding it (its state is checked on every append).
fn lock(wal: &Mutex<Wal>) -> std::sync::MutexGuard<'_, Wal> {
    wal.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A dead letter for an OCSF record the lake could not take (stage `lake`).
fn lake_letter(
    source_name: &str,
    source: Option<&Source>,
    record: &Logged,
    reason: String,
) -> DeadLetter {
    let plugin = source.map(|s| (&s.manifest, &s.info));
    let (framing, raw) = record.readable();
    DeadLetter {
        framing: framing.into(),
        ..DeadLetter::new(source_name, plugin, "lake", reason, &raw)
    }
}
