//! The durable half of the gateway, on one thread: the write-ahead log (group commit: every
//! append that is waiting goes into one fsync), the dead-letter area, the partition buffers,
//! the Parquet writer and the catalog. Ingest handlers send it translated batches and wait for
//! the reply that says the batch is durable; only then do they acknowledge.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

use crate::config::Config;
use crate::lake::catalog::Catalog;
use crate::lake::dead_letter::{DeadLetter, DeadLetterWriter};
use crate::lake::{self, Buffers, LakeTable, PartitionKey, WriteError};
use crate::sources::{Counters, Source, Sources};
use crate::wal::{CommitEntry, DataEntry, Recovery, Wal, WalEvent};

/// What a flush wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Flushed {
    pub files: u64,
    pub events: u64,
}

/// A translated batch waiting to be made durable.
struct Append {
    source: Arc<Source>,
    events: Vec<WalEvent>,
    letters: Vec<DeadLetter>,
    reply: oneshot::Sender<Result<(), String>>,
}

enum Command {
    Append(Append),
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
        let mut tables = HashMap::new();
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
                tables.insert(table.lake_source.clone(), table.clone());
            }
        }
        let run = uuid::Uuid::now_v7().to_string();
        let mut state = State {
            lake: lake.clone(),
            zstd_level: config.flush.zstd_level,
            buffers: Buffers::new(config.flush.clone()),
            dead_letters: DeadLetterWriter::new(&lake, &run),
            catalog,
            sources,
            tables,
            interned: HashSet::new(),
            stats: Arc::new(Stats::default()),
        };
        let mut orphans = Vec::new();
        let (wal, recovery) = Wal::open(
            &lake.join("wal"),
            config.wal.segment_bytes,
            config.wal.fsync,
            &lake,
            |entry, committed| state.replay(entry, committed, &mut orphans),
        )?;
        if !orphans.is_empty() {
            state.dead_letters.append(&orphans)?;
            state.dead_letters.sync()?;
        }
        report_recovery(&recovery, removed, orphans.len(), state.buffers.usage().0);
        let stats = state.stats.clone();
        let (tx, rx) = mpsc::channel(64);
        let thread = std::thread::Builder::new()
            .name("lakegate-pipeline".into())
            .spawn(move || state.run(wal, rx, runtime))?;
        Ok((Pipeline { tx, stats }, thread))
    }

    /// Makes a translated batch durable; returns once it is (or why it could not be).
    pub async fn append(
        &self,
        source: Arc<Source>,
        events: Vec<WalEvent>,
        letters: Vec<DeadLetter>,
    ) -> Result<(), String> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Append(Append {
                source,
                events,
                letters,
                reply,
            }))
            .await
            .map_err(|_| "the gateway is shutting down".to_string())?;
        rx.await
            .map_err(|_| "the gateway is shutting down".to_string())?
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
            "events of sources no longer configured went to the dead-letter area"
        );
    }
}

struct State {
    lake: PathBuf,
    zstd_level: i32,
    buffers: Buffers,
    dead_letters: DeadLetterWriter,
    catalog: Catalog,
    sources: Arc<Sources>,
    tables: HashMap<String, Arc<LakeTable>>,
    interned: HashSet<Arc<str>>,
    stats: Arc<Stats>,
}

/// How long the thread waits for work before it checks partition ages.
const TICK: Duration = Duration::from_millis(200);

impl State {
    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.interned.get(s) {
            return a.clone();
        }
        let a: Arc<str> = s.into();
        self.interned.insert(a.clone());
        a
    }

    fn key(&mut self, table: &LakeTable, event: &WalEvent) -> PartitionKey {
        PartitionKey {
            lake_source: self.intern(&table.lake_source),
            region: self.intern(&event.region),
            account: self.intern(&event.account),
            day: event.time.div_euclid(86_400_000),
        }
    }

    /// Routes one acknowledged event to its partition buffer.
    fn buffer(&mut self, source: &Source, seq: u64, event: WalEvent) -> Result<(), String> {
        let table = source.tables.get(&event.class_uid).ok_or_else(|| {
            format!(
                "source `{}` has no table for class {}",
                source.name, event.class_uid
            )
        })?;
        let key = self.key(table, &event);
        self.buffers
            .insert(&key, table.max_age, seq, event.time, event.json);
        Ok(())
    }

    fn replay(
        &mut self,
        entry: DataEntry,
        committed: &dyn Fn(&str, u64) -> bool,
        orphans: &mut Vec<DeadLetter>,
    ) {
        let source = self.sources.by_name.get(&entry.source).cloned();
        for event in entry.events {
            let placed = source.as_ref().and_then(|s| {
                let table = s.tables.get(&event.class_uid)?;
                Some((s.clone(), self.key(table, &event)))
            });
            match placed {
                Some((source, key)) => {
                    if !committed(&key.dir(), entry.seq) {
                        let _ = self.buffer(&source, entry.seq, event);
                    }
                }
                None => orphans.push(lake_letter(
                    &entry.source,
                    source.as_deref(),
                    &event.json,
                    format!(
                        "recovered from the write-ahead log, but source `{}` no longer has a table for class {}",
                        entry.source, event.class_uid
                    ),
                )),
            }
        }
    }

    fn run(
        mut self,
        mut wal: Wal,
        mut rx: mpsc::Receiver<Command>,
        runtime: tokio::runtime::Handle,
    ) {
        loop {
            let first = runtime.block_on(async { tokio::time::timeout(TICK, rx.recv()).await });
            let mut commands = Vec::new();
            match first {
                Ok(Some(c)) => commands.push(c),
                Ok(None) => break,
                Err(_) => {}
            }
            while commands.len() < 256 {
                match rx.try_recv() {
                    Ok(c) => commands.push(c),
                    Err(_) => break,
                }
            }
            let mut flushes = Vec::new();
            let mut appends = Vec::new();
            for c in commands {
                match c {
                    Command::Append(append) => appends.push(append),
                    Command::Flush { reply } => flushes.push(reply),
                }
            }
            if !appends.is_empty() {
                self.append(&mut wal, appends);
            }
            let due = self.buffers.due(Instant::now(), !flushes.is_empty());
            let flushed = self.flush(&mut wal, due);
            for reply in flushes {
                let _ = reply.send(flushed);
            }
            let (bytes, open) = self.buffers.usage();
            use std::sync::atomic::Ordering::Relaxed;
            self.stats.buffered_bytes.store(bytes as u64, Relaxed);
            self.stats.open_partitions.store(open as u64, Relaxed);
            self.stats
                .wal_segments
                .store(wal.segment_count() as u64, Relaxed);
        }
        // Every sender is gone: the server has stopped. Write everything and leave the log empty.
        let due = self.buffers.due(Instant::now(), true);
        let flushed = self.flush(&mut wal, due);
        info!(
            files = flushed.files,
            events = flushed.events,
            "flushed on shutdown"
        );
        if self.buffers.usage().1 == 0 {
            if let Err(e) = wal.clear() {
                error!(error = %e, "cannot clear the write-ahead log");
            }
        }
    }

    /// Group commit: log every waiting batch, one fsync, then buffer and acknowledge.
    fn append(&mut self, wal: &mut Wal, appends: Vec<Append>) {
        let mut logged = Vec::with_capacity(appends.len());
        let mut failure = None;
        for Append {
            source,
            events,
            letters,
            reply,
        } in appends
        {
            let seq = if events.is_empty() {
                Ok(0)
            } else {
                wal.append_data(&source.name, &events)
                    .map_err(|e| e.to_string())
            };
            let written = seq.and_then(|seq| {
                self.dead_letters
                    .append(&letters)
                    .map(|()| seq)
                    .map_err(|e| format!("dead-letter area: {e}"))
            });
            match written {
                Ok(seq) => logged.push((source, seq, events, letters.len(), reply)),
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
        self.stats
            .wal_syncs
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Err(e) = synced {
            error!(error = %e, "cannot sync the write-ahead log");
            failure = Some(e);
        }
        for (source, seq, events, letters, reply) in logged {
            if let Some(e) = &failure {
                // Not durable: not acknowledged. The client sends it again.
                let _ = reply.send(Err(e.clone()));
                continue;
            }
            let count = events.len() as u64;
            for event in events {
                if let Err(e) = self.buffer(&source, seq, event) {
                    error!(error = %e, "unroutable event");
                }
            }
            Counters::add(&source.counters.events_acknowledged, count);
            Counters::add(&source.counters.dead_lettered, letters as u64);
            let _ = reply.send(Ok(()));
        }
    }

    /// Writes the given partitions, then releases what the log no longer needs.
    fn flush(&mut self, wal: &mut Wal, due: Vec<PartitionKey>) -> Flushed {
        let mut flushed = Flushed::default();
        for key in due {
            match self.flush_partition(wal, &key) {
                Ok(Some(rows)) => {
                    flushed.files += 1;
                    flushed.events += rows;
                }
                Ok(None) => {}
                Err(e) => {
                    error!(partition = %key.dir(), error = %e, "cannot write partition; its records stay buffered and logged")
                }
            }
        }
        let min_live = self.buffers.min_seq().unwrap_or(wal.next_seq());
        if let Err(e) = wal.release(min_live) {
            error!(error = %e, "cannot delete a write-ahead log segment");
        }
        flushed
    }

    fn flush_partition(
        &mut self,
        wal: &mut Wal,
        key: &PartitionKey,
    ) -> Result<Option<u64>, String> {
        let Some(mut sealed) = self.buffers.seal(key) else {
            return Ok(None);
        };
        let table = self.tables[&*key.lake_source].clone();
        let source = self.sources.by_name.get(&table.source).cloned();
        let (tmp, file) = loop {
            match lake::write_parquet(&self.lake, &table, &sealed, self.zstd_level) {
                Ok(written) => break written,
                Err(WriteError::Row(row)) => {
                    let json = sealed.remove(row.index);
                    let letter = lake_letter(
                        &table.source,
                        source.as_deref(),
                        &json,
                        format!("does not fit table {}: {}", table.lake_source, row.reason),
                    );
                    self.dead_letters
                        .append(&[letter])
                        .and_then(|()| self.dead_letters.sync())
                        .map_err(|e| format!("dead-letter area: {e}"))?;
                    if let Some(source) = &source {
                        Counters::add(&source.counters.dead_lettered, 1);
                    }
                    if sealed.is_empty() {
                        return Ok(None);
                    }
                }
                Err(WriteError::Io(e)) => {
                    self.buffers.restore(sealed, table.max_age);
                    return Err(e);
                }
            }
        };
        let rows = sealed.len() as u64;
        let commit = CommitEntry {
            file: file.clone(),
            partition: key.dir(),
            seqs: sealed.seqs.clone(),
        };
        if let Err(e) = wal
            .commit(&commit)
            .map_err(|e| e.to_string())
            .and_then(|()| lake::publish(&self.lake, &tmp, &file).map_err(|e| e.to_string()))
        {
            let _ = std::fs::remove_file(&tmp);
            self.buffers.restore(sealed, table.max_age);
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
        if let Some(source) = source {
            Counters::add(&source.counters.events_written, rows);
            Counters::add(&source.counters.files_written, 1);
            source
                .counters
                .last_write_ms
                .store(now_ms(), std::sync::atomic::Ordering::Relaxed);
        }
        info!(file = %file, rows, "committed");
        Ok(Some(rows))
    }
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
    json: &str,
    reason: String,
) -> DeadLetter {
    let mut letter = DeadLetter {
        id: uuid::Uuid::now_v7().to_string(),
        received_ms: now_ms(),
        source: source_name.to_string(),
        plugin: source.map(|s| s.manifest.name.clone()).unwrap_or_default(),
        plugin_version: source
            .map(|s| s.manifest.version.clone())
            .unwrap_or_default(),
        plugin_sha256: source.map(|s| s.info.sha256.clone()).unwrap_or_default(),
        framing: "ocsf-json".into(),
        stage: "lake".into(),
        record: 0,
        line: 0,
        path: None,
        reason,
        raw: None,
        raw_base64: None,
        metadata: Default::default(),
    };
    letter.set_raw(json.as_bytes());
    letter
}
