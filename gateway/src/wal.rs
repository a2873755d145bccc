//! The write-ahead log: what the gateway acknowledges is here, fsynced, before the
//! acknowledgement leaves. Segments are append-only files of checksummed frames; a segment is
//! deleted once every event in it is in a committed Parquet file.
//!
//! Frame: `len: u32 LE | crc32(payload): u32 LE | payload`. Payload kinds:
//! - data (3): `seq u64 | source | n u32 | n x (class_uid u32 | time i64 | region | account |
//!   kind u8 | record)`: each event as its row (kind 1) or its JSON (kind 0).
//! - data (1), written before rows: the same, every event as JSON with no `kind`; still read.
//! - commit (2): `file | partition | n u32 | n x seq u64` — written and synced *before* the
//!   Parquet file is renamed into place. After a crash, a commit whose file exists means the
//!   events of those sequence numbers in that partition are in the lake and are not replayed;
//!   one whose file is missing never happened.
//!
//! Strings are `len u16 | bytes` except a `record` (`len u32 | bytes`).
//!
//! The log is also where the lake's buffered events are: an appended entry's events come back
//! as [`Span`]s (where a run of them lies in a segment, with its own checksum), which the lake
//! keeps instead of the events and reads with a [`LogReader`] when it writes their partition.
//!
//! A frame that is cut short or fails its checksum at the end of the last segment is a torn write
//! from a crash: the segment is truncated there, and nothing in it was acknowledged. Anywhere
//! else it is corruption: reported, and the rest of that segment is skipped.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lakegate_plugin_sdk::host::validate::schema_1_1_0;

/// Data written before events were logged as rows: JSON only.
const DATA_JSON: u8 = 1;
const COMMIT: u8 = 2;
const DATA: u8 = 3;
const HEADER: usize = 8;

/// One accepted OCSF event as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalEvent {
    pub class_uid: u32,
    pub time: i64,
    pub region: Arc<str>,
    pub account: Arc<str>,
    pub record: Logged,
}

/// An event as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Logged {
    /// Its row ([`lakegate_plugin_sdk::row`]), validated when it was logged.
    Row(Vec<u8>),
    /// Its JSON: only in entries written before the log kept rows.
    Json(String),
}

impl Logged {
    /// The event for a person (and the dead-letter area): its framing name and bytes, JSON
    /// unless a row cannot be rendered.
    pub fn readable(&self) -> (&'static str, Vec<u8>) {
        match self {
            Logged::Json(json) => ("ocsf-json", json.as_bytes().to_vec()),
            Logged::Row(row) => match schema_1_1_0().render_row(row) {
                Ok(json) => ("ocsf-json", json.into_bytes()),
                Err(_) => ("ocsf-row", row.clone()),
            },
        }
    }
}

/// A batch of events of one source, under one sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataEntry {
    pub seq: u64,
    pub source: String,
    pub events: Vec<WalEvent>,
}

/// Where a run of consecutive events of one data entry lies in the log: the bytes of their
/// encoding (`class_uid | time | region | account | kind | record` each), and their checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub segment: u64,
    /// Byte offset in the segment file.
    pub offset: u64,
    pub len: u32,
    pub crc: u32,
}

/// Where a recovered data entry's events lie, for [`Place::span`].
pub struct Place<'a> {
    segment: u64,
    /// File offset of the entry's payload.
    base: u64,
    payload: &'a [u8],
    /// Where each event starts in `payload`, and where the last one ends.
    starts: Vec<usize>,
    /// Whether events carry their kind (entries written before rows do not).
    rows: bool,
}

impl Place<'_> {
    /// The span of events `events` of the entry, if the entry keeps rows.
    pub fn span(&self, events: Range<usize>) -> Option<Span> {
        let (from, to) = (
            *self.starts.get(events.start)?,
            *self.starts.get(events.end)?,
        );
        self.rows.then(|| Span {
            segment: self.segment,
            offset: self.base + from as u64,
            len: (to - from) as u32,
            crc: crc32fast::hash(&self.payload[from..to]),
        })
    }
}

/// A Parquet file about to be committed, and the sequence numbers whose events (in that
/// partition) it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitEntry {
    /// Lake-relative path of the final file.
    pub file: String,
    /// Lake-relative partition directory.
    pub partition: String,
    pub seqs: Vec<u64>,
}

/// What recovery found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    pub segments: usize,
    pub data_entries: u64,
    pub commits: u64,
    /// Bytes cut from the end of the last segment (a torn write).
    pub torn_bytes: u64,
    /// Segments with a bad frame before their end, and the bytes skipped.
    pub corrupt: Vec<(PathBuf, u64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("write-ahead log {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

struct Segment {
    path: PathBuf,
    /// Highest data sequence number in it.
    max_seq: Option<u64>,
}

/// The open log.
pub struct Wal {
    dir: PathBuf,
    segment_bytes: u64,
    fsync: bool,
    segments: BTreeMap<u64, Segment>,
    /// The segment being appended to: each frame is one `write` (frames are built whole in
    /// memory, with room for their header, so nothing is copied into a buffer again).
    current: File,
    current_index: u64,
    current_len: u64,
    next_seq: u64,
    buf: Vec<u8>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{index:020}.wal"))
}

impl Wal {
    /// Opens the log in `dir`, replaying what is there: `data` is called with every data entry
    /// in order and where its events lie, except the events already in committed files
    /// (`committed(partition, seq)` is what the caller uses to skip them, built from the commits
    /// found first).
    pub fn open(
        dir: &Path,
        segment_bytes: u64,
        fsync: bool,
        lake: &Path,
        mut data: impl FnMut(DataEntry, &Place<'_>, &dyn Fn(&str, u64) -> bool),
    ) -> Result<(Wal, Recovery), WalError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut indexes: Vec<u64> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".wal"))
                    .and_then(|n| n.parse().ok())
            })
            .collect();
        indexes.sort_unstable();
        let mut recovery = Recovery {
            segments: indexes.len(),
            ..Recovery::default()
        };
        // Pass 1: commits whose file made it into the lake.
        let mut committed: std::collections::HashSet<(String, u64)> = Default::default();
        let last = indexes.last().copied();
        for &index in &indexes {
            let path = segment_path(dir, index);
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            let (frames, good_len) = frames(&bytes);
            if good_len < bytes.len() {
                if Some(index) == last {
                    recovery.torn_bytes = (bytes.len() - good_len) as u64;
                    let f = OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(io(&path))?;
                    f.set_len(good_len as u64).map_err(io(&path))?;
                    f.sync_all().map_err(io(&path))?;
                } else {
                    recovery
                        .corrupt
                        .push((path.clone(), (bytes.len() - good_len) as u64));
                }
            }
            for payload in frames {
                if payload[0] == COMMIT {
                    recovery.commits += 1;
                    let commit = decode_commit(payload).ok_or_else(|| bad_frame(&path))?;
                    if lake.join(&commit.file).is_file() {
                        for seq in commit.seqs {
                            committed.insert((commit.partition.clone(), seq));
                        }
                    }
                }
            }
        }
        // Pass 2: data entries, one segment in memory at a time.
        let is_committed =
            |partition: &str, seq: u64| committed.contains(&(partition.to_string(), seq));
        let mut segments = BTreeMap::new();
        let mut next_seq = 1;
        for &index in &indexes {
            let path = segment_path(dir, index);
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            let mut max_seq = None;
            for payload in frames(&bytes).0 {
                if payload[0] == DATA || payload[0] == DATA_JSON {
                    let (entry, starts) = decode_data(payload).ok_or_else(|| bad_frame(&path))?;
                    recovery.data_entries += 1;
                    max_seq = Some(entry.seq);
                    next_seq = next_seq.max(entry.seq + 1);
                    let place = Place {
                        segment: index,
                        base: (payload.as_ptr() as usize - bytes.as_ptr() as usize) as u64,
                        payload,
                        starts,
                        rows: payload[0] == DATA,
                    };
                    data(entry, &place, &is_committed);
                }
            }
            segments.insert(index, Segment { path, max_seq });
        }
        let current_index = last.map_or(1, |l| l + 1);
        let path = segment_path(dir, current_index);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        sync_dir(dir)?;
        segments.insert(
            current_index,
            Segment {
                path,
                max_seq: None,
            },
        );
        Ok((
            Wal {
                dir: dir.to_path_buf(),
                segment_bytes,
                fsync,
                segments,
                current: file,
                current_index,
                current_len: 0,
                next_seq,
                buf: Vec::new(),
            },
            recovery,
        ))
    }

    /// Appends a data entry (not yet durable: call [`Wal::sync`]) and returns its sequence
    /// number and the span of each run of its events in `runs`.
    pub fn append_data(
        &mut self,
        source: &str,
        events: &[WalEvent],
        runs: &[Range<usize>],
    ) -> Result<(u64, Vec<Span>), WalError> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.resize(HEADER, 0);
        buf.push(DATA);
        buf.extend_from_slice(&seq.to_le_bytes());
        put_str(&mut buf, source);
        buf.extend_from_slice(&(events.len() as u32).to_le_bytes());
        let mut starts = Vec::with_capacity(events.len() + 1);
        for e in events {
            starts.push(buf.len() - HEADER);
            encode_event(&mut buf, e);
        }
        starts.push(buf.len() - HEADER);
        let place = Place {
            segment: self.current_index,
            // The payload follows the frame's header at the end of the segment.
            base: self.current_len + HEADER as u64,
            payload: &buf[HEADER..],
            starts,
            rows: true,
        };
        let spans = runs
            .iter()
            .map(|r| place.span(r.clone()).expect("runs lie within the entry"))
            .collect();
        let written = self.write_frame(&mut buf);
        self.buf = buf;
        written?;
        if let Some(s) = self.segments.get_mut(&self.current_index) {
            s.max_seq = Some(seq);
        }
        Ok((seq, spans))
    }

    /// Appends a commit entry and makes it durable.
    pub fn commit(&mut self, commit: &CommitEntry) -> Result<(), WalError> {
        let mut buf = Vec::with_capacity(HEADER + 64 + commit.seqs.len() * 8);
        buf.resize(HEADER, 0);
        buf.push(COMMIT);
        put_str(&mut buf, &commit.file);
        put_str(&mut buf, &commit.partition);
        buf.extend_from_slice(&(commit.seqs.len() as u32).to_le_bytes());
        for s in &commit.seqs {
            buf.extend_from_slice(&s.to_le_bytes());
        }
        self.write_frame(&mut buf)?;
        self.sync()
    }

    /// Writes `frame`, whose first [`HEADER`] bytes are left for its header and the rest is
    /// the payload, at the end of the current segment.
    fn write_frame(&mut self, frame: &mut [u8]) -> Result<(), WalError> {
        let path = &self.segments[&self.current_index].path;
        let (header, payload) = frame.split_at_mut(HEADER);
        header[..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        header[4..].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
        self.current.write_all(frame).map_err(io(path))?;
        self.current_len += frame.len() as u64;
        Ok(())
    }

    /// Makes everything appended so far durable (one fsync for all of it), and starts a new
    /// segment when this one is full.
    pub fn sync(&mut self) -> Result<(), WalError> {
        let path = self.segments[&self.current_index].path.clone();
        if self.fsync {
            self.current.sync_data().map_err(io(&path))?;
        }
        if self.current_len >= self.segment_bytes {
            self.current_index += 1;
            let path = segment_path(&self.dir, self.current_index);
            let file = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&path)
                .map_err(io(&path))?;
            if self.fsync {
                sync_dir(&self.dir)?;
            }
            self.current = file;
            self.current_len = 0;
            self.segments.insert(
                self.current_index,
                Segment {
                    path,
                    max_seq: None,
                },
            );
        }
        Ok(())
    }

    /// Deletes the oldest closed segments whose every event is committed (all data sequence
    /// numbers below `min_live_seq`). Returns how many were deleted.
    pub fn release(&mut self, min_live_seq: u64) -> Result<usize, WalError> {
        let mut deleted = 0;
        while let Some((&index, segment)) = self.segments.first_key_value() {
            if index == self.current_index || segment.max_seq.is_some_and(|m| m >= min_live_seq) {
                break;
            }
            std::fs::remove_file(&segment.path).map_err(io(&segment.path))?;
            self.segments.remove(&index);
            deleted += 1;
        }
        Ok(deleted)
    }

    /// Deletes every segment, the current one included, and starts afresh: for a clean
    /// shutdown after everything was committed.
    pub fn clear(&mut self) -> Result<(), WalError> {
        let indexes: Vec<u64> = self.segments.keys().copied().collect();
        for index in indexes {
            let segment = self.segments.remove(&index).expect("listed above");
            std::fs::remove_file(&segment.path).map_err(io(&segment.path))?;
        }
        sync_dir(&self.dir)
    }

    /// The sequence number the next data entry gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Segments on disk, the current one included.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// The oldest segment on disk.
    pub fn first_segment(&self) -> u64 {
        self.segments
            .first_key_value()
            .map_or(self.current_index, |(&i, _)| i)
    }
}

/// Segment files a [`LogReader`] keeps open at most.
const MAX_OPEN_SEGMENTS: usize = 64;

/// Reads spans of events back from the log's segments.
pub struct LogReader {
    dir: PathBuf,
    files: BTreeMap<u64, File>,
}

impl LogReader {
    pub fn new(dir: &Path) -> LogReader {
        LogReader {
            dir: dir.to_path_buf(),
            files: BTreeMap::new(),
        }
    }

    /// Appends the bytes of `span` to `into`, and checks them against the span's checksum:
    /// `Err` if they cannot be read, `Ok(Err)` (with the bytes appended) if they do not match.
    pub fn read(&mut self, span: &Span, into: &mut Vec<u8>) -> Result<Result<(), String>, String> {
        let path = segment_path(&self.dir, span.segment);
        if self.files.len() >= MAX_OPEN_SEGMENTS && !self.files.contains_key(&span.segment) {
            // Small segments (a config choice) must not run the process out of descriptors.
            self.files.pop_first();
        }
        let file = match self.files.entry(span.segment) {
            std::collections::btree_map::Entry::Occupied(f) => f.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?)
            }
        };
        let from = into.len();
        // Read into the vector's spare room as it is, without zeroing it first.
        into.reserve(span.len as usize);
        let read = file
            .seek(SeekFrom::Start(span.offset))
            .and_then(|_| file.take(u64::from(span.len)).read_to_end(into));
        match read {
            Ok(n) if n == span.len as usize => {}
            outcome => {
                into.truncate(from);
                let why = match outcome {
                    Err(e) => e.to_string(),
                    Ok(n) => format!("the segment ends {n} bytes in"),
                };
                return Err(format!(
                    "{}: cannot read {} bytes at offset {}: {why}",
                    path.display(),
                    span.len,
                    span.offset
                ));
            }
        }
        if crc32fast::hash(&into[from..]) != span.crc {
            return Ok(Err(format!(
                "{}: {} bytes at offset {} no longer match their checksum",
                path.display(),
                span.len,
                span.offset
            )));
        }
        Ok(Ok(()))
    }

    /// Closes the files of segments below `segment` (deleted, or about to be).
    pub fn forget_below(&mut self, segment: u64) {
        self.files = self.files.split_off(&segment);
    }
}

/// Encodes one event as a data entry keeps it.
pub fn encode_event(buf: &mut Vec<u8>, e: &WalEvent) {
    buf.extend_from_slice(&e.class_uid.to_le_bytes());
    buf.extend_from_slice(&e.time.to_le_bytes());
    put_str(buf, &e.region);
    put_str(buf, &e.account);
    let (kind, bytes) = match &e.record {
        Logged::Json(json) => (0, json.as_bytes()),
        Logged::Row(row) => (1, &row[..]),
    };
    buf.push(kind);
    buf.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    buf.extend_from_slice(bytes);
}

/// The time and row of each event in `bytes[from..]` (encoded events, as a [`Span`] holds
/// them), appended to `out` as `(time, range of the row in bytes)`. `None` if they do not
/// decode or an event is not a row.
pub fn rows_in(bytes: &[u8], from: usize, out: &mut Vec<(i64, Range<usize>)>) -> Option<()> {
    let mut r = Reader(bytes.get(from..)?);
    while !r.0.is_empty() {
        let event = r.event(true)?;
        if event.kind != 1 {
            return None;
        }
        let start = event.record.as_ptr() as usize - bytes.as_ptr() as usize;
        out.push((event.time, start..start + event.record.len()));
    }
    Some(())
}

/// One event of a data entry as it is encoded, borrowed.
struct EventRef<'a> {
    class_uid: u32,
    time: i64,
    region: &'a [u8],
    account: &'a [u8],
    /// 1: a row; 0: JSON.
    kind: u8,
    record: &'a [u8],
}

fn bad_frame(path: &Path) -> WalError {
    WalError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "a frame with a valid checksum does not decode (written by another version?)",
        ),
    }
}

fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// The payloads of the good frames, and the length of the good prefix.
fn frames(bytes: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut out = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= HEADER {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
        let Some(payload) = bytes.get(at + HEADER..at + HEADER + len) else {
            break;
        };
        if len == 0 || crc32fast::hash(payload) != crc {
            break;
        }
        out.push(payload);
        at += HEADER + len;
    }
    (out, at)
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    let s = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    buf.extend_from_slice(&(s.len() as u16).to_le_bytes());
    buf.extend_from_slice(s);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn str(&mut self, len: usize) -> Option<String> {
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
    fn short_str(&mut self) -> Option<String> {
        let n = self.u16()? as usize;
        self.str(n)
    }
    fn short_bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()? as usize;
        self.take(n)
    }
    /// The next event; entries written before rows (`kinded` false) have no kind: JSON.
    fn event(&mut self, kinded: bool) -> Option<EventRef<'a>> {
        let class_uid = self.u32()?;
        let time = self.u64()? as i64;
        let region = self.short_bytes()?;
        let account = self.short_bytes()?;
        let kind = if kinded { self.u8()? } else { 0 };
        let len = self.u32()? as usize;
        Some(EventRef {
            class_uid,
            time,
            region,
            account,
            kind,
            record: self.take(len)?,
        })
    }
}

/// A data entry, and where each of its events starts in `payload` (and the last one ends).
fn decode_data(payload: &[u8]) -> Option<(DataEntry, Vec<usize>)> {
    let mut r = Reader(&payload[1..]);
    let seq = r.u64()?;
    let source = r.short_str()?;
    let n = r.u32()? as usize;
    let mut events = Vec::with_capacity(n.min(1 << 16));
    let mut starts = Vec::with_capacity(n.min(1 << 16) + 1);
    let text = |bytes: &[u8]| std::str::from_utf8(bytes).ok().map(str::to_string);
    for _ in 0..n {
        starts.push(payload.len() - r.0.len());
        let e = r.event(payload[0] == DATA)?;
        let record = match e.kind {
            0 => Logged::Json(text(e.record)?),
            1 => Logged::Row(e.record.to_vec()),
            _ => return None,
        };
        events.push(WalEvent {
            class_uid: e.class_uid,
            time: e.time,
            region: text(e.region)?.into(),
            account: text(e.account)?.into(),
            record,
        });
    }
    starts.push(payload.len() - r.0.len());
    Some((
        DataEntry {
            seq,
            source,
            events,
        },
        starts,
    ))
}

fn decode_commit(payload: &[u8]) -> Option<CommitEntry> {
    let mut r = Reader(&payload[1..]);
    let file = r.short_str()?;
    let partition = r.short_str()?;
    let n = r.u32()? as usize;
    let seqs = (0..n).map(|_| r.u64()).collect::<Option<Vec<_>>>()?;
    Some(CommitEntry {
        file,
        partition,
        seqs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: i64) -> WalEvent {
        WalEvent {
            class_uid: 4001,
            time: n,
            region: "us-east-1".into(),
            account: "external".into(),
            record: Logged::Row(n.to_le_bytes().to_vec()),
        }
    }

    fn replay(dir: &Path, lake: &Path) -> (Vec<DataEntry>, Recovery, Wal) {
        let mut got = Vec::new();
        let (wal, rec) = Wal::open(dir, 1 << 20, true, lake, |e, _, committed| {
            let mut e = e;
            e.events.retain(|_| !committed("p", e.seq));
            got.push(e)
        })
        .unwrap();
        (got, rec, wal)
    }

    /// A scratch directory, removed when the test is done with it.
    struct Scratch(PathBuf);

    impl std::ops::Deref for Scratch {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn temp(name: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("lakegate-wal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }

    #[test]
    fn entries_survive_a_reopen_in_order() {
        let d = temp("reopen");
        let (_, _, mut wal) = replay(&d.join("wal"), &d);
        assert_eq!(
            wal.append_data("s", &[event(1), event(2)], &[]).unwrap().0,
            1
        );
        assert_eq!(wal.append_data("s", &[event(3)], &[]).unwrap().0, 2);
        wal.sync().unwrap();
        drop(wal);
        let (got, rec, wal) = replay(&d.join("wal"), &d);
        assert_eq!(rec.data_entries, 2);
        assert_eq!(got[0].events, vec![event(1), event(2)]);
        assert_eq!(got[1].seq, 2);
        assert_eq!(wal.next_seq(), 3);
    }

    #[test]
    fn json_events_and_entries_written_before_rows_are_read() {
        let d = temp("json");
        let (_, _, mut wal) = replay(&d.join("wal"), &d);
        let json = WalEvent {
            record: Logged::Json(r#"{"time":5}"#.into()),
            ..event(5)
        };
        wal.append_data("s", &[json.clone(), event(6)], &[])
            .unwrap();
        // A data entry as lakegate wrote it before it logged rows: every event as JSON.
        let mut old = vec![0; HEADER];
        old.push(DATA_JSON);
        old.extend_from_slice(&2u64.to_le_bytes());
        put_str(&mut old, "s");
        old.extend_from_slice(&1u32.to_le_bytes());
        old.extend_from_slice(&4001u32.to_le_bytes());
        old.extend_from_slice(&7i64.to_le_bytes());
        put_str(&mut old, "us-east-1");
        put_str(&mut old, "external");
        old.extend_from_slice(&10u32.to_le_bytes());
        old.extend_from_slice(br#"{"time":7}"#);
        wal.write_frame(&mut old).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let (got, _, wal) = replay(&d.join("wal"), &d);
        assert_eq!(got[0].events, vec![json, event(6)]);
        let old_event = WalEvent {
            record: Logged::Json(r#"{"time":7}"#.into()),
            ..event(7)
        };
        assert_eq!((got[1].seq, &got[1].events), (2, &vec![old_event]));
        assert_eq!(wal.next_seq(), 3);
    }

    #[test]
    fn spans_read_back_as_their_rows_and_recovery_finds_the_same_spans() {
        let d = temp("spans");
        let (_, _, mut wal) = replay(&d.join("wal"), &d);
        wal.append_data("s", &[event(1)], &[]).unwrap();
        let events = [event(2), event(3), event(4), event(5)];
        let (seq, spans) = wal.append_data("s", &events, &[0..1, 1..4]).unwrap();
        assert_eq!(seq, 2);
        // Not yet readable for sure: the lake gets spans only once they are synced.
        wal.sync().unwrap();
        let mut reader = LogReader::new(&d.join("wal"));
        let mut bytes = Vec::new();
        let mut rows = Vec::new();
        for span in &spans {
            let from = bytes.len();
            reader.read(span, &mut bytes).unwrap().unwrap();
            rows_in(&bytes, from, &mut rows).unwrap();
        }
        let times: Vec<i64> = rows.iter().map(|(t, _)| *t).collect();
        assert_eq!(times, [2, 3, 4, 5]);
        let (_, last) = &rows[3];
        assert_eq!(&bytes[last.clone()], 5i64.to_le_bytes());
        drop(wal);
        // Recovery places the entry's events where the append said they were.
        let mut found = Vec::new();
        Wal::open(&d.join("wal"), 1 << 20, true, &d, |e, place, _| {
            if e.seq == 2 {
                found = vec![place.span(0..1), place.span(1..4)];
            }
        })
        .unwrap();
        assert_eq!(found, spans.iter().copied().map(Some).collect::<Vec<_>>());
        // Bytes that changed on disk are named, not taken.
        let segment = segment_path(&d.join("wal"), spans[1].segment);
        let mut file = std::fs::read(&segment).unwrap();
        file[spans[1].offset as usize + 3] ^= 0x40;
        std::fs::write(&segment, file).unwrap();
        let mut reader = LogReader::new(&d.join("wal"));
        let damaged = reader.read(&spans[1], &mut Vec::new()).unwrap();
        assert!(damaged
            .unwrap_err()
            .contains("no longer match their checksum"));
    }

    #[test]
    fn a_reader_keeps_a_bounded_number_of_segments_open() {
        let d = temp("many");
        // One-byte segments: every sync starts a new one.
        let (mut wal, _) = Wal::open(&d.join("wal"), 1, false, &d, |_, _, _| {}).unwrap();
        let mut spans = Vec::new();
        for n in 0..(MAX_OPEN_SEGMENTS as i64 + 6) {
            let one = 0..1;
            let (_, s) = wal
                .append_data("s", &[event(n)], std::slice::from_ref(&one))
                .unwrap();
            wal.sync().unwrap();
            spans.extend(s);
        }
        let mut reader = LogReader::new(&d.join("wal"));
        let mut rows = Vec::new();
        for span in spans.iter().chain(&spans[..3]) {
            let mut bytes = Vec::new();
            reader.read(span, &mut bytes).unwrap().unwrap();
            rows_in(&bytes, 0, &mut rows).unwrap();
        }
        let times: Vec<i64> = rows.iter().map(|(t, _)| *t).collect();
        let want: Vec<i64> = (0..MAX_OPEN_SEGMENTS as i64 + 6).chain(0..3).collect();
        assert_eq!(times, want);
        assert!(reader.files.len() <= MAX_OPEN_SEGMENTS);
    }

    #[test]
    fn a_torn_tail_is_cut_and_earlier_entries_kept() {
        let d = temp("torn");
        let (_, _, mut wal) = replay(&d.join("wal"), &d);
        wal.append_data("s", &[event(1)], &[]).unwrap();
        wal.append_data("s", &[event(2)], &[]).unwrap();
        wal.sync().unwrap();
        drop(wal);
        // Cut the last frame in half, as a crash mid-write would.
        let seg = segment_path(&d.join("wal"), 1);
        let len = std::fs::metadata(&seg).unwrap().len();
        let f = OpenOptions::new().write(true).open(&seg).unwrap();
        f.set_len(len - 5).unwrap();
        let (got, rec, _) = replay(&d.join("wal"), &d);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].events, vec![event(1)]);
        assert!(rec.torn_bytes > 0);
        assert!(
            std::fs::metadata(&seg).unwrap().len() < len - 5,
            "tail truncated"
        );
    }

    #[test]
    fn a_flipped_bit_fails_the_checksum() {
        let d = temp("crc");
        let (_, _, mut wal) = replay(&d.join("wal"), &d);
        wal.append_data("s", &[event(1)], &[]).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let seg = segment_path(&d.join("wal"), 1);
        let mut bytes = std::fs::read(&seg).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 0x40;
        std::fs::write(&seg, bytes).unwrap();
        let (got, rec, _) = replay(&d.join("wal"), &d);
        assert!(got.is_empty(), "garbage is never replayed");
        assert!(rec.torn_bytes > 0);
    }

    #[test]
    fn commits_with_files_hide_their_events_and_segments_are_released() {
        let d = temp("commit");
        let (_, _, mut wal) = replay(&d.join("wal"), &d);
        let (seq, _) = wal.append_data("s", &[event(1)], &[]).unwrap();
        wal.sync().unwrap();
        // A commit whose file exists, and one whose file never appeared.
        std::fs::write(d.join("a.parquet"), b"x").unwrap();
        let commit = |file: &str| CommitEntry {
            file: file.into(),
            partition: "p".into(),
            seqs: vec![seq],
        };
        wal.commit(&commit("missing.parquet")).unwrap();
        let (got, _, _) = replay(&d.join("wal"), &d);
        assert_eq!(got[0].events.len(), 1, "missing file: events replayed");
        drop(got);
        let (_, _, mut wal) = replay(&d.join("wal"), &d);
        wal.commit(&commit("a.parquet")).unwrap();
        drop(wal);
        let (got, _, mut wal) = replay(&d.join("wal"), &d);
        assert!(got[0].events.is_empty(), "committed: not replayed");
        let before = wal.segment_count();
        assert!(wal.release(seq + 1).unwrap() >= 1);
        assert_eq!(
            wal.segment_count(),
            1,
            "only the current segment is left of {before}"
        );
    }
}
