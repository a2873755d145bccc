//! `lakegate.ingest.v1.Ingest`: frames, translates and validates each message's records on a
//! blocking thread with a pooled plugin instance, a slice of about 512 KiB at a time, hands each
//! result to the pipeline (translating a stream's next slice while the last one is made
//! durable), and answers once the pipeline says all of it is durable.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use lakegate_plugin_sdk::host::framing::{self, Framed, FramingError};
use lakegate_plugin_sdk::host::runner::{
    ManifestError, Report, RunOptions, Runner, StreamState as PluginStream,
};
use lakegate_plugin_sdk::Framing;
use lakegate_proto::ingest::v1::ingest_server::Ingest;
use lakegate_proto::ingest::v1::{IngestRequest, IngestResponse, Record, Rejection};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Request, Response, Status, Streaming};

use crate::config::{check_account, check_region};
use crate::host::Plugin;
use crate::lake::dead_letter::{DeadLetter, Raw};
use crate::lake::{Partitioned, Run};
use crate::pipeline::{now_ms, Durability, Pipeline};
use crate::sources::{Counters, Source, Sources};
use crate::wal::{Logged, WalEvent};

/// Rejections listed in a response; all are counted and dead-lettered.
const MAX_LISTED_REJECTIONS: usize = 100;

/// Input translated and made durable at a time. A message's records are cut into slices of
/// about this much, at line ends for the line framings and between records for a `json-records`
/// document, so the events of a large message never pile up in memory: a VPC flow line is ~9x
/// larger as OCSF JSON, and one 32 MiB message held ~900 MiB before this cut. A stream has two
/// slices in memory at most (one translated while the other is made durable); with 1 MiB
/// slices four VPC streams peaked at 263 MiB, with 512 KiB at 203 MiB.
const SLICE_BYTES: usize = 512 << 10;

/// The ingest service.
pub struct IngestService {
    sources: Arc<Sources>,
    pipeline: Pipeline,
    /// Slices being translated at once, over all streams: each holds a plugin instance, so
    /// this bounds the instances (and their memory) however many streams are open.
    translations: Arc<Semaphore>,
}

/// One stream's state: its source, framing, the plugin's state, and the tally so far.
struct StreamState {
    source: Arc<Source>,
    framing: Framing,
    plugin: PluginStream,
    next_record: u64,
    response: IngestResponse,
    /// The slice being translated, left running while the stream's next message is read.
    running: Option<Translation>,
    /// Whether the last translated slice ended in the state it started from: only then is the
    /// next one guessed, so that a plugin whose state changes with every slice is not
    /// translated twice over.
    steady: bool,
    /// The last slice handed to the log, not yet known to be durable: the stream's next slice
    /// is translated meanwhile, and the slice is counted in the response once it is durable.
    pending: Option<(Durability, Tally)>,
}

impl IngestService {
    pub fn new(sources: Arc<Sources>, pipeline: Pipeline) -> Self {
        // Two per core: every core can be translating while some streams' guesses wait to be
        // checked against the slice before them.
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        IngestService {
            sources,
            pipeline,
            translations: Arc::new(Semaphore::new(2 * cores)),
        }
    }

    /// A translation slot, once one is free.
    async fn slot(&self) -> Result<OwnedSemaphorePermit, Status> {
        self.translations
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Status::unavailable("the gateway is shutting down"))
    }

    fn open(&self, request: &IngestRequest) -> Result<StreamState, Status> {
        if request.source.is_empty() {
            return Err(Status::invalid_argument(
                "the first message must name the source",
            ));
        }
        let source = self
            .sources
            .get(&request.source)
            .map_err(Status::not_found)?
            .clone();
        let framing = if request.framing.is_empty() {
            source.framing
        } else {
            let framing = Framing::from_name(&request.framing).ok_or_else(|| {
                Status::invalid_argument(format!(
                    "unknown framing `{}` (json-lines, json-records, text-lines, syslog)",
                    request.framing
                ))
            })?;
            if !source.manifest.framings.contains(&framing) {
                return Err(Status::invalid_argument(format!(
                    "source `{}` (plugin {}) does not accept {} input; it accepts {}",
                    source.name,
                    source.manifest.name,
                    framing.name(),
                    source
                        .manifest
                        .framings
                        .iter()
                        .map(|f| f.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            framing
        };
        Ok(StreamState {
            response: IngestResponse {
                source: source.name.clone(),
                ..IngestResponse::default()
            },
            source,
            framing,
            plugin: PluginStream::default(),
            next_record: 0,
            running: None,
            steady: true,
            pending: None,
        })
    }

    /// Translates one message's records and makes the outcome durable, a slice at a time.
    async fn ingest(&self, state: &mut StreamState, records: Vec<Record>) -> Result<(), Status> {
        let first = state.next_record;
        state.next_record += records.len() as u64;
        // Cutting frames a `json-records` document whole: not on the async runtime's threads.
        let (source, framing) = (state.source.clone(), state.framing);
        let slices = tokio::task::spawn_blocking(move || {
            runs(
                cut(&source, framing, first, records),
                Piece::len,
                SLICE_BYTES,
            )
        })
        .await
        .map_err(task_failed)?;
        // Two slices translate at once: the next one speculatively, from the state the current
        // one starts with. A slice rarely changes the stream's state (JSON sources never carry
        // any), so the guess holds; when it does (a VPC flow header line), the next slice is
        // translated again from the state it really starts with, and the guess is dropped; no
        // guess follows a slice that changed the state. The last slice is left running: the
        // next message's first slice is guessed alongside it.
        for slice in slices {
            let Some(running) = state.running.take() else {
                let slot = self.slot().await?;
                state.running = Some(Translation::start(state, slice, slot));
                continue;
            };
            // The guess runs only on a free slot; with none, the next slice waits its turn.
            // The stream's state is the one `running` started from until it completes. A guess
            // keeps its slice, to translate it again if the guess turns out wrong.
            let free = state
                .steady
                .then(|| self.translations.clone().try_acquire_owned());
            let following = match free.and_then(Result::ok) {
                Some(slot) => Ok((Translation::start(state, slice.clone(), slot), slice)),
                None => Err(slice),
            };
            self.complete(state, running).await?;
            state.running = Some(match following {
                Ok((guess, _)) if guess.from == state.plugin => guess,
                Ok((_, slice)) => {
                    Counters::add(&state.source.counters.retranslated, 1);
                    Translation::start(state, slice, self.slot().await?)
                }
                Err(slice) => Translation::start(state, slice, self.slot().await?),
            });
        }
        Ok(())
    }

    /// Waits for a slice's translation and hands its outcome to the log; the stream's state
    /// is then the one the slice ends with.
    async fn complete(&self, state: &mut StreamState, running: Translation) -> Result<(), Status> {
        let translated = running.task.await.map_err(task_failed)?;
        state.steady = translated.plugin == running.from;
        state.plugin = translated.plugin;
        let c = &state.source.counters;
        Counters::add(&c.received_records, translated.tally.records);
        Counters::add(&c.received_bytes, translated.tally.bytes);
        Counters::add(&c.read, translated.tally.read);
        Counters::add(&c.rejected, translated.letters.len() as u64);
        let durability = self
            .pipeline
            .submit(
                state.source.clone(),
                translated.events,
                translated.runs,
                translated.letters,
            )
            .await
            .map_err(not_acknowledged)?;
        // One slice per stream waits for the log while the next ones are translated.
        if let Some(previous) = state.pending.replace((durability, translated.tally)) {
            state.settle(previous).await?;
        }
        Ok(())
    }

    /// The response, once every slice of the stream is translated and durable.
    async fn finish(&self, mut state: StreamState) -> Result<IngestResponse, Status> {
        if let Some(running) = state.running.take() {
            self.complete(&mut state, running).await?;
        }
        if let Some(pending) = state.pending.take() {
            state.settle(pending).await?;
        }
        Ok(state.response)
    }
}

/// A slice being translated on a blocking thread from the stream state `from`, holding a
/// translation slot until it is done.
struct Translation {
    from: PluginStream,
    task: tokio::task::JoinHandle<Translated>,
}

impl Translation {
    /// Starts translating `slice` from the stream's current state.
    fn start(state: &StreamState, slice: Vec<Piece>, slot: OwnedSemaphorePermit) -> Self {
        let (source, framing, from) = (state.source.clone(), state.framing, state.plugin.clone());
        let plugin = from.clone();
        let task = tokio::task::spawn_blocking(move || {
            let translated = translate(&source, framing, plugin, slice);
            drop(slot);
            translated
        });
        Translation { from, task }
    }
}

fn not_acknowledged(e: String) -> Status {
    Status::unavailable(format!("not acknowledged: {e}"))
}

impl StreamState {
    /// Waits for a submitted slice to be durable and counts it in the response.
    async fn settle(&mut self, (durability, tally): (Durability, Tally)) -> Result<(), Status> {
        durability.wait().await.map_err(not_acknowledged)?;
        self.add(tally);
        Ok(())
    }

    /// Adds what a slice came to to the response.
    fn add(&mut self, t: Tally) {
        let r = &mut self.response;
        r.records += t.records;
        r.bytes += t.bytes;
        r.read += t.read;
        r.accepted += t.accepted;
        r.events += t.events;
        r.consumed += t.consumed;
        r.dead_lettered += t.rejections.len() as u64;
        for (class, n) in t.per_class {
            *r.events_per_class.entry(class).or_default() += n;
        }
        let room = MAX_LISTED_REJECTIONS.saturating_sub(r.rejections.len());
        r.rejections.extend(t.rejections.into_iter().take(room));
    }
}

fn task_failed(e: tokio::task::JoinError) -> Status {
    Status::internal(format!("translation task failed: {e}"))
}

/// A part of one Record, translated and made durable with the other pieces of its slice.
#[derive(Clone)]
struct Piece {
    record: Arc<Record>,
    /// The Record's index in its stream.
    index: u64,
    /// The Record's first piece, which counts the Record and its bytes.
    first: bool,
    part: Part,
    /// The Record's partition values, or why its metadata is refused.
    partition: Result<(Arc<str>, Arc<str>), String>,
}

/// What of its Record a piece holds.
#[derive(Clone)]
enum Part {
    /// A run of whole lines (or the whole Record), with the Record's lines before it: its log
    /// records are numbered after them.
    Lines {
        range: Range<usize>,
        lines_before: u64,
    },
    /// Records framing has cut from a `json-records` document, numbered in the whole document.
    Framed(Vec<FramedRange>),
}

/// A [`Framed`] record as ranges of its Record, so that it can go to a blocking thread.
#[derive(Clone)]
struct FramedRange {
    number: u64,
    record: Result<Range<usize>, FramingError>,
    raw: Range<usize>,
}

impl Piece {
    /// Input bytes in it.
    fn len(&self) -> usize {
        match &self.part {
            Part::Lines { range, .. } => range.len(),
            Part::Framed(records) => records.iter().map(|f| f.raw.len()).sum(),
        }
    }

    /// The bytes it spans in its Record.
    fn span(&self) -> &[u8] {
        let data = &self.record.data;
        match &self.part {
            Part::Lines { range, .. } => &data[range.clone()],
            Part::Framed(records) => match (records.first(), records.last()) {
                (Some(first), Some(last)) => &data[first.raw.start..last.raw.end],
                _ => &[],
            },
        }
    }

    /// The number of its log records in their Record, from their number in the piece.
    fn number(&self, in_piece: u64) -> u64 {
        match &self.part {
            Part::Lines { lines_before, .. } => lines_before + in_piece,
            Part::Framed(_) => in_piece,
        }
    }

    /// Frames (unless framed already), translates and validates it.
    fn run(
        &self,
        runner: &mut Runner<Plugin>,
        options: &RunOptions,
        stream: &mut PluginStream,
    ) -> Result<Report, ManifestError> {
        let data = &self.record.data;
        match &self.part {
            Part::Lines { range, .. } => {
                runner.run_continued(&data[range.clone()], options, stream)
            }
            Part::Framed(records) => {
                let framed = records
                    .iter()
                    .map(|f| Framed {
                        number: f.number,
                        record: f.record.clone().map(|r| &data[r]),
                        raw: &data[f.raw.clone()],
                    })
                    .collect();
                runner.run_framed(framed, options, stream)
            }
        }
    }
}

/// Cuts a message's records into pieces of at most [`SLICE_BYTES`] of input: runs of whole
/// lines for the line framings (a line longer than that is a piece of its own), runs of the
/// records of a `json-records` document otherwise. A Record whose metadata is refused is one
/// piece (it is dead-lettered whole).
fn cut(source: &Source, framing: Framing, first: u64, records: Vec<Record>) -> Vec<Piece> {
    let mut pieces = Vec::new();
    for (i, record) in records.into_iter().enumerate() {
        let partition = partition_values(source, &record);
        let record = Arc::new(record);
        let parts = match (&partition, framing) {
            (Err(_), _) => vec![Part::Lines {
                range: 0..record.data.len(),
                lines_before: 0,
            }],
            (Ok(_), Framing::JsonRecords) => framed_pieces(&record.data, SLICE_BYTES),
            (Ok(_), _) => line_pieces(&record.data, SLICE_BYTES)
                .into_iter()
                .map(|(range, lines_before)| Part::Lines {
                    range,
                    lines_before,
                })
                .collect(),
        };
        for (n, part) in parts.into_iter().enumerate() {
            pieces.push(Piece {
                record: record.clone(),
                index: first + i as u64,
                first: n == 0,
                part,
                partition: partition.clone(),
            });
        }
    }
    pieces
}

/// A `json-records` document framed, as runs of its records of at most `limit` bytes (a larger
/// record is a run of its own); one empty run when it has no records.
fn framed_pieces(data: &[u8], limit: usize) -> Vec<Part> {
    let base = data.as_ptr() as usize;
    let range_of = |bytes: &[u8]| {
        let start = bytes.as_ptr() as usize - base;
        start..start + bytes.len()
    };
    let framed = framing::split(
        data,
        Framing::JsonRecords,
        framing::DEFAULT_MAX_RECORD_BYTES,
    )
    .into_iter()
    .map(|f| FramedRange {
        number: f.number,
        record: f.record.map(range_of),
        raw: range_of(f.raw),
    });
    let mut parts = runs(framed, |f| f.raw.len(), limit);
    if parts.is_empty() {
        parts.push(Vec::new());
    }
    parts.into_iter().map(Part::Framed).collect()
}

/// `data` as runs of whole lines of at most `limit` bytes (a longer line is a run of its own),
/// each with the number of lines before it. Empty data is one empty run.
fn line_pieces(data: &[u8], limit: usize) -> Vec<(Range<usize>, u64)> {
    let mut pieces = Vec::new();
    let (mut start, mut lines_before) = (0, 0);
    loop {
        let end = if data.len() - start <= limit {
            data.len()
        } else {
            let cap = start + limit;
            match memchr::memrchr(b'\n', &data[start..cap]) {
                Some(at) => start + at + 1,
                None => memchr::memchr(b'\n', &data[cap..]).map_or(data.len(), |at| cap + at + 1),
            }
        };
        pieces.push((start..end, lines_before));
        if end == data.len() {
            return pieces;
        }
        lines_before += memchr::memchr_iter(b'\n', &data[start..end]).count() as u64;
        start = end;
    }
}

/// `items` in order, grouped into runs of at most `limit` bytes by `len` (an item larger than
/// that is a run of its own): a document's records into pieces, pieces into slices.
fn runs<T>(
    items: impl IntoIterator<Item = T>,
    len: impl Fn(&T) -> usize,
    limit: usize,
) -> Vec<Vec<T>> {
    let mut runs: Vec<Vec<T>> = Vec::new();
    let mut bytes = 0;
    for item in items {
        let n = len(&item);
        match runs.last_mut() {
            Some(run) if bytes + n <= limit => {
                bytes += n;
                run.push(item);
            }
            _ => {
                bytes = n;
                runs.push(vec![item]);
            }
        }
    }
    runs
}

#[derive(Default)]
struct Tally {
    records: u64,
    bytes: u64,
    read: u64,
    accepted: u64,
    events: u64,
    consumed: u64,
    per_class: BTreeMap<u32, u64>,
    rejections: Vec<Rejection>,
}

struct Translated {
    /// The events, each partition's together.
    events: Vec<WalEvent>,
    /// Each partition's run of `events`.
    runs: Vec<Run>,
    letters: Vec<DeadLetter>,
    plugin: PluginStream,
    tally: Tally,
}

/// Runs pieces of records through the source's plugin; every log record ends up as events or
/// dead letters. The validator writes each event as a row of its table as it checks it; the
/// rows go into the log grouped by partition, and the lake reads them back from there when it
/// writes their partition.
fn translate(
    source: &Source,
    framing: Framing,
    mut plugin: PluginStream,
    pieces: Vec<Piece>,
) -> Translated {
    let received_ms = now_ms();
    let options = RunOptions {
        source: source.name.clone(),
        framing: Some(framing),
        received_ms,
        json: false,
        ..RunOptions::default()
    };
    let mut partitioned = Partitioned::default();
    let mut letters = Vec::new();
    let mut tally = Tally::default();
    source.with_runner(|runner| {
        for piece in pieces {
            let (record, index) = (&piece.record, piece.index);
            let data = piece.span();
            if piece.first {
                tally.records += 1;
                tally.bytes += record.data.len() as u64;
            }
            let letter =
                |line: u64, stage: &str, path: Option<String>, reason: String, raw: &[u8]| {
                    let plugin = Some((&source.manifest, &source.info));
                    DeadLetter {
                        received_ms,
                        framing: framing.name().into(),
                        record: index,
                        line,
                        path,
                        metadata: record.metadata.clone().into_iter().collect(),
                        ..DeadLetter::new(&source.name, plugin, stage, reason, raw)
                    }
                };
            let (region, account) = match &piece.partition {
                Ok(values) => values,
                Err(reason) => {
                    tally.read += 1;
                    tally
                        .rejections
                        .push(rejection(index, 0, "metadata", None, reason));
                    letters.push(letter(0, "metadata", None, reason.clone(), data));
                    continue;
                }
            };
            let report: Report = match piece.run(runner, &options, &mut plugin) {
                Ok(r) => r,
                Err(e) => {
                    // The framing was checked when the stream opened; keep the record anyway.
                    tally.read += 1;
                    tally
                        .rejections
                        .push(rejection(index, 0, "framing", None, &e.to_string()));
                    letters.push(letter(0, "framing", None, e.to_string(), data));
                    continue;
                }
            };
            tally.read += report.read;
            tally.consumed += report.consumed;
            let mut last_accepted = None;
            for a in report.accepted {
                if last_accepted != Some(a.record) {
                    tally.accepted += 1;
                    last_accepted = Some(a.record);
                }
                tally.events += 1;
                *tally.per_class.entry(a.class_uid).or_default() += 1;
                let table = source
                    .tables
                    .get(&a.class_uid)
                    .expect("validation accepts declared classes only, and each has a table");
                let event = WalEvent {
                    class_uid: a.class_uid,
                    time: a.time,
                    region: region.clone(),
                    account: account.clone(),
                    record: Logged::Row(a.row),
                };
                partitioned.add(table, region, account, a.time, event);
            }
            for r in report.rejected {
                let line = piece.number(r.record);
                tally.rejections.push(rejection(
                    index,
                    line,
                    r.stage.name(),
                    r.path.clone(),
                    &r.reason,
                ));
                let mut letter = letter(line, r.stage.name(), r.path, r.reason, &r.raw);
                letter.context = r.context.iter().map(|raw| Raw::new(raw)).collect();
                letters.push(letter);
            }
        }
    });
    // The log keeps each partition's events of this slice together: one run each.
    let (events, runs) = partitioned.into_runs();
    Translated {
        events,
        runs,
        letters,
        plugin,
        tally,
    }
}

fn rejection(record: u64, line: u64, stage: &str, path: Option<String>, reason: &str) -> Rejection {
    Rejection {
        record,
        line,
        stage: stage.into(),
        path: path.unwrap_or_default(),
        reason: reason.into(),
    }
}

/// The record's `region` and `account_id` metadata, or the source's; shared by its events.
fn partition_values(source: &Source, record: &Record) -> Result<(Arc<str>, Arc<str>), String> {
    let region = match record.metadata.get("region") {
        Some(r) => {
            check_region(r).map_err(|e| format!("metadata region: {e}"))?;
            r.clone()
        }
        None => source.region.clone(),
    };
    let account = match record.metadata.get("account_id") {
        Some(a) => {
            check_account(a).map_err(|e| format!("metadata account_id: {e}"))?;
            a.clone()
        }
        None => source.account.clone(),
    };
    Ok((region.into(), account.into()))
}

#[tonic::async_trait]
impl Ingest for IngestService {
    async fn stream(
        &self,
        request: Request<Streaming<IngestRequest>>,
    ) -> Result<Response<IngestResponse>, Status> {
        let mut stream = request.into_inner();
        let mut state: Option<StreamState> = None;
        while let Some(message) = stream.message().await? {
            let st = match &mut state {
                Some(st) => {
                    if !message.source.is_empty() && message.source != st.source.name {
                        return Err(Status::invalid_argument(format!(
                            "a stream carries one source: `{}` after `{}`",
                            message.source, st.source.name
                        )));
                    }
                    st
                }
                None => state.insert(self.open(&message)?),
            };
            self.ingest(st, message.records).await?;
        }
        let state =
            state.ok_or_else(|| Status::invalid_argument("empty stream: no source named"))?;
        Ok(Response::new(self.finish(state).await?))
    }

    async fn send(
        &self,
        request: Request<IngestRequest>,
    ) -> Result<Response<IngestResponse>, Status> {
        let message = request.into_inner();
        let mut state = self.open(&message)?;
        self.ingest(&mut state, message.records).await?;
        Ok(Response::new(self.finish(state).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_cut_at_line_ends_and_lines_keep_their_numbers() {
        let data = b"aaaa\nbb\n\ncccccccccc\nd";
        let pieces = line_pieces(data, 8);
        let text: Vec<(&str, u64)> = pieces
            .iter()
            .map(|(r, before)| (std::str::from_utf8(&data[r.clone()]).unwrap(), *before))
            .collect();
        // The 10-byte line is longer than the limit: a piece of its own.
        assert_eq!(
            text,
            [("aaaa\nbb\n", 0), ("\n", 2), ("cccccccccc\n", 3), ("d", 4)]
        );
        assert_eq!(line_pieces(b"", 8), [(0..0, 0)]);
        assert_eq!(line_pieces(data, usize::MAX), [(0..data.len(), 0)]);
    }

    #[test]
    fn json_records_are_cut_between_records_and_keep_their_numbers() {
        let data = br#"{"Records": [{"a": 1}, {"b": 22}, {"c": 333}, "x"]}"#;
        let parts = framed_pieces(data, 20);
        let runs: Vec<Vec<(u64, &str)>> = parts
            .iter()
            .map(|part| match part {
                Part::Framed(records) => records
                    .iter()
                    .map(|f| (f.number, std::str::from_utf8(&data[f.raw.clone()]).unwrap()))
                    .collect(),
                Part::Lines { .. } => panic!("a json-records document is framed"),
            })
            .collect();
        assert_eq!(
            runs,
            [
                vec![(1, r#"{"a": 1}"#), (2, r#"{"b": 22}"#)],
                vec![(3, r#"{"c": 333}"#), (4, r#""x""#)]
            ]
        );
        // A document framing refuses is one run holding the error; no records, one empty run.
        let broken = framed_pieces(b"nope", 20);
        assert!(matches!(&broken[..], [Part::Framed(r)] if r.len() == 1 && r[0].record.is_err()));
        assert!(matches!(&framed_pieces(b"[]", 20)[..], [Part::Framed(r)] if r.is_empty()));
    }

    #[test]
    fn slices_hold_pieces_in_order_up_to_the_limit() {
        let record = Arc::new(Record {
            data: vec![b'x'; 10].into(),
            metadata: Default::default(),
        });
        let piece = |range: Range<usize>| Piece {
            record: record.clone(),
            index: 0,
            first: range.start == 0,
            part: Part::Lines {
                range,
                lines_before: 0,
            },
            partition: Ok(("r".into(), "a".into())),
        };
        let grouped = runs(vec![piece(0..3), piece(3..6), piece(6..10)], Piece::len, 6);
        let lens: Vec<Vec<usize>> = grouped
            .iter()
            .map(|slice| slice.iter().map(Piece::len).collect())
            .collect();
        assert_eq!(lens, [vec![3, 3], vec![4]]);
    }
}
