//! Runs input through a translator: framing, batches, translation, validation, and a report of
//! every record's fate. The gateway and the native harness both use it.

use std::collections::BTreeMap;

use serde_json::Value;

use super::framing::{self, Framed};
use super::validate::{schema_1_1_0, Declarations, Repeats, Schema, Valid, Violation};
use crate::row::split_rows;
use crate::{BatchContext, EventFormat, Framing, Manifest, Translation};

/// Something that translates batches: a WebAssembly component in the gateway, or a plugin's
/// Rust code called directly in native tests.
pub trait Translator {
    /// The plugin's manifest.
    fn manifest(&self) -> &Manifest;
    /// Translates one batch of records packed as in WIT `batch`.
    fn translate(
        &mut self,
        context: &BatchContext,
        data: &[u8],
        ends: &[u32],
    ) -> Result<Translation, PluginFailure>;
}

/// A batch the plugin failed as a whole: it trapped, ran out of time or memory, or broke the
/// interface contract. Every record of the batch is dead-lettered with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct PluginFailure {
    /// What happened, e.g. `plugin exceeded its 1000 ms deadline`.
    pub reason: String,
}

/// Where in the pipeline a record was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// The host could not cut the record from the input.
    Framing,
    /// The plugin rejected the record.
    Translation,
    /// The plugin's output broke the OCSF schema or the plugin's declaration.
    Validation,
    /// The plugin failed the whole batch (trap, deadline, memory).
    Plugin,
}

impl Stage {
    /// Lower-case name for reports and metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Framing => "framing",
            Stage::Translation => "translation",
            Stage::Validation => "validation",
            Stage::Plugin => "plugin",
        }
    }
}

/// One input record that produced no accepted OCSF record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// 1-based record number in the input (see [`Framed::number`]).
    pub record: u64,
    /// Where it was rejected.
    pub stage: Stage,
    /// The attribute path or input field concerned, when known.
    pub path: Option<String>,
    /// Why.
    pub reason: String,
    /// The record's raw bytes, for the dead-letter area.
    pub raw: Vec<u8>,
    /// The records it may depend on: the latest records of its stream before it that produced
    /// nothing (such as a header line naming the fields), oldest first. Sending them again
    /// ahead of this record rebuilds the state the plugin read it with.
    pub context: Vec<Vec<u8>>,
}

/// Records kept as a stream's context, at most.
pub const MAX_CONTEXT_RECORDS: usize = 4;
/// Bytes of context kept, at most; the oldest records go first.
pub const MAX_CONTEXT_BYTES: usize = 64 << 10;

/// What one input stream carries from one piece to the next.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamState {
    /// The plugin's state (WIT `batch-context.carry`).
    pub carry: Option<Vec<u8>>,
    /// The latest records that produced nothing while the plugin held state (see
    /// [`Rejection::context`]).
    pub context: Vec<Vec<u8>>,
}

impl StreamState {
    /// Remembers a record that produced nothing, forgetting the oldest beyond the limits.
    fn consumed(&mut self, raw: &[u8]) {
        self.context.push(raw.to_vec());
        while self.context.len() > MAX_CONTEXT_RECORDS
            || self.context.iter().map(Vec::len).sum::<usize>() > MAX_CONTEXT_BYTES
        {
            self.context.remove(0);
        }
    }
}

/// One accepted OCSF record.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// The 1-based input record it came from.
    pub record: u64,
    /// Its `class_uid`.
    pub class_uid: u32,
    /// Its `time`, epoch milliseconds.
    pub time: i64,
    /// The record as JSON on one line: the plugin's own (interface 0.1) or its row rendered
    /// (0.2); empty when [`RunOptions::json`] is off.
    pub json: String,
    /// The record as a row ([`crate::row`]): the plugin's own (0.2), or written by the validator
    /// from its JSON (0.1). What the gateway logs and the lake's columns are built from.
    pub row: Vec<u8>,
}

impl Accepted {
    /// The record as a JSON value.
    pub fn event(&self) -> Value {
        serde_json::from_str(&self.json).unwrap_or(Value::Null)
    }
}

/// Everything that happened to one input.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Records cut from the input, including those framing refused.
    pub read: u64,
    /// Accepted OCSF records, in input order.
    pub accepted: Vec<Accepted>,
    /// Rejected input records, in input order within each batch.
    pub rejected: Vec<Rejection>,
    /// Input records that yielded neither a record nor a diagnostic (e.g. header lines).
    pub consumed: u64,
    /// Input bytes.
    pub bytes: u64,
}

impl Report {
    /// Accepted records per `class_uid`.
    pub fn per_class(&self) -> BTreeMap<u32, u64> {
        let mut m = BTreeMap::new();
        for a in &self.accepted {
            *m.entry(a.class_uid).or_insert(0) += 1;
        }
        m
    }

    /// Rejections at one stage.
    pub fn rejected_at(&self, stage: Stage) -> impl Iterator<Item = &Rejection> {
        self.rejected.iter().filter(move |r| r.stage == stage)
    }
}

/// How to cut and batch the input.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The source name passed to the plugin.
    pub source: String,
    /// The framing; `None` uses the plugin's default (its first declared framing).
    pub framing: Option<Framing>,
    /// At most this many records per batch.
    pub batch_records: usize,
    /// At most about this many bytes per batch.
    pub batch_bytes: usize,
    /// Records larger than this are rejected at framing.
    pub max_record_bytes: usize,
    /// The clock value handed to the plugin.
    pub received_ms: i64,
    /// Keep each accepted record as JSON ([`Accepted::json`]): the plugin's own line, or its
    /// row rendered. The gateway, which needs only rows, turns it off.
    pub json: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            source: "test".into(),
            framing: None,
            batch_records: 1024,
            batch_bytes: 4 << 20,
            max_record_bytes: framing::DEFAULT_MAX_RECORD_BYTES,
            received_ms: 0,
            json: true,
        }
    }
}

/// Why a plugin cannot be run at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// The plugin targets an OCSF version this host does not validate.
    #[error("plugin `{plugin}` emits OCSF {found}, this host supports {supported}")]
    OcsfVersion {
        plugin: String,
        found: String,
        supported: String,
    },
    /// A declared class or attribute is not in the schema.
    #[error("plugin `{plugin}`: {reason}")]
    Declaration { plugin: String, reason: String },
    /// The plugin does not accept the requested framing.
    #[error("plugin `{plugin}` does not accept {framing} input (it accepts: {accepted})")]
    Framing {
        plugin: String,
        framing: &'static str,
        accepted: String,
    },
}

/// Checks a manifest against the schema the host validates with.
pub fn check_manifest(manifest: &Manifest) -> Result<&'static Schema, ManifestError> {
    let schema = schema_1_1_0();
    if manifest.ocsf_version != schema.version() {
        return Err(ManifestError::OcsfVersion {
            plugin: manifest.name.clone(),
            found: manifest.ocsf_version.clone(),
            supported: schema.version().into(),
        });
    }
    for class in &manifest.classes {
        schema
            .check_declaration(class)
            .map_err(|reason| ManifestError::Declaration {
                plugin: manifest.name.clone(),
                reason,
            })?;
    }
    Ok(schema)
}

/// A translator with its validation state, for running many inputs.
pub struct Runner<T> {
    translator: T,
    schema: &'static Schema,
    declarations: Declarations,
    /// The objects its rows repeat, checked once.
    repeats: Repeats,
}

impl<T: Translator> Runner<T> {
    /// Checks the translator's manifest and prepares validation.
    pub fn new(translator: T) -> Result<Self, ManifestError> {
        let schema = check_manifest(translator.manifest())?;
        let declarations = Declarations::new(schema, &translator.manifest().classes);
        Ok(Runner {
            translator,
            schema,
            declarations,
            repeats: Repeats::default(),
        })
    }

    /// The translator.
    pub fn translator(&self) -> &T {
        &self.translator
    }

    /// Frames, translates and validates one whole input stream.
    pub fn run(&mut self, input: &[u8], options: &RunOptions) -> Result<Report, ManifestError> {
        self.run_continued(input, options, &mut StreamState::default())
    }

    /// Frames, translates and validates one piece of a longer stream: `stream` holds what
    /// earlier pieces left (e.g. a header line seen earlier), taken in and handed back for the
    /// next piece.
    pub fn run_continued(
        &mut self,
        input: &[u8],
        options: &RunOptions,
        stream: &mut StreamState,
    ) -> Result<Report, ManifestError> {
        let framing = self.framing(options)?;
        let framed = framing::split(input, framing, options.max_record_bytes);
        let mut report = self.translate_framed(framed, framing, options, stream);
        report.bytes = input.len() as u64;
        Ok(report)
    }

    /// The framing `options` ask for, or the plugin's default, if the plugin accepts it.
    fn framing(&self, options: &RunOptions) -> Result<Framing, ManifestError> {
        let manifest = self.translator.manifest();
        let framing = options
            .framing
            .or(manifest.framings.first().copied())
            .unwrap_or(Framing::JsonLines);
        if !manifest.framings.contains(&framing) {
            return Err(ManifestError::Framing {
                plugin: manifest.name.clone(),
                framing: framing.name(),
                accepted: manifest
                    .framings
                    .iter()
                    .map(|f| f.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(framing)
    }

    /// Translates and validates records that framing has already cut, such as a part of a large
    /// `json-records` document: each keeps its [`Framed::number`] in the whole input. `bytes`
    /// of the report counts the records' raw bytes.
    pub fn run_framed(
        &mut self,
        framed: Vec<Framed<'_>>,
        options: &RunOptions,
        stream: &mut StreamState,
    ) -> Result<Report, ManifestError> {
        let framing = self.framing(options)?;
        Ok(self.translate_framed(framed, framing, options, stream))
    }

    /// Translates and validates framed records, in batches; `framing` is accepted by the plugin.
    fn translate_framed(
        &mut self,
        framed: Vec<Framed<'_>>,
        framing: Framing,
        options: &RunOptions,
        stream: &mut StreamState,
    ) -> Report {
        let mut report = Report {
            bytes: framed.iter().map(|f| f.raw.len() as u64).sum(),
            read: framed.len() as u64,
            ..Report::default()
        };
        let mut batch: Vec<(u64, &[u8])> = Vec::new();
        let mut batch_bytes = 0;
        for Framed {
            number,
            record,
            raw,
        } in framed
        {
            match record {
                Ok(bytes) => {
                    batch_bytes += bytes.len();
                    batch.push((number, bytes));
                    if batch.len() >= options.batch_records || batch_bytes >= options.batch_bytes {
                        self.batch(&batch, framing, stream, options, &mut report);
                        batch.clear();
                        batch_bytes = 0;
                    }
                }
                Err(e) => report.rejected.push(Rejection {
                    record: number,
                    stage: Stage::Framing,
                    path: None,
                    reason: e.to_string(),
                    raw: raw.to_vec(),
                    context: Vec::new(),
                }),
            }
        }
        if !batch.is_empty() {
            self.batch(&batch, framing, stream, options, &mut report);
        }
        // Framing rejections are found before the batch around them runs: restore input order.
        report.rejected.sort_by_key(|r| r.record);
        report
    }

    /// The records of a translation, in order, however they are held.
    fn records<'t>(&self, t: &'t Translation) -> Box<dyn Iterator<Item = Emitted<'t>> + 't> {
        match t.format {
            EventFormat::JsonLines => Box::new(framing::split_lines(&t.events).map(|line| {
                std::str::from_utf8(line).map_or(
                    Emitted::Bad("plugin emitted a record that is not UTF-8"),
                    Emitted::Line,
                )
            })),
            EventFormat::Rows => Box::new(split_rows(&t.events).map(|row| {
                row.map_or(
                    Emitted::Bad("plugin emitted a row whose length overruns its batch"),
                    Emitted::Row,
                )
            })),
        }
    }

    /// Runs one batch, updating `stream` with the plugin's new state and context.
    fn batch(
        &mut self,
        batch: &[(u64, &[u8])],
        framing: Framing,
        stream: &mut StreamState,
        options: &RunOptions,
        report: &mut Report,
    ) {
        let mut data = Vec::with_capacity(batch.iter().map(|(_, r)| r.len()).sum());
        let mut ends = Vec::with_capacity(batch.len());
        for (_, record) in batch {
            data.extend_from_slice(record);
            ends.push(data.len() as u32);
        }
        let context = BatchContext {
            received_ms: options.received_ms,
            source: options.source.clone(),
            framing,
            carry: stream.carry.take(),
        };
        let result = self
            .translator
            .translate(&context, &data, &ends)
            .and_then(|t| check_shape(t, batch.len()));
        let translation = match result {
            Ok(t) => t,
            Err(failure) => {
                for (number, raw) in batch {
                    report.rejected.push(Rejection {
                        record: *number,
                        stage: Stage::Plugin,
                        path: None,
                        reason: failure.reason.clone(),
                        raw: raw.to_vec(),
                        context: stream.context.clone(),
                    });
                }
                // The stream's state is lost with the failed batch; the next batch starts afresh.
                stream.context.clear();
                return;
            }
        };
        let rejected_before = report.rejected.len();
        let mut outcome: Vec<Outcome> = vec![Outcome::Consumed; batch.len()];
        for d in &translation.diagnostics {
            outcome[d.record as usize] =
                Outcome::Rejected(Stage::Translation, d.path.clone(), d.reason.clone());
        }
        // The accepted events with their record's index: one list for the batch, not one per
        // record (an allocation for each).
        let mut events: Vec<(usize, Valid, String, Vec<u8>)> =
            Vec::with_capacity(translation.origins.len());
        let mut row = Vec::new();
        for (record, &origin) in self.records(&translation).zip(&translation.origins) {
            let i = origin as usize;
            if matches!(outcome[i], Outcome::Rejected(..)) {
                continue;
            }
            let checked = match record {
                Emitted::Line(line) => self
                    .schema
                    .validate_row(line, &self.declarations, &mut row)
                    .map(|valid| {
                        // An exact copy: the buffer keeps its capacity for the next record.
                        let json = if options.json {
                            line.to_string()
                        } else {
                            String::new()
                        };
                        (valid, json, row.clone())
                    }),
                Emitted::Row(emitted) => self
                    .schema
                    .validate_rows_bytes(emitted, &self.declarations, &mut self.repeats)
                    .map(|valid| {
                        let json = if options.json {
                            self.schema.render_row(emitted).unwrap_or_default()
                        } else {
                            String::new()
                        };
                        (valid, json, emitted.to_vec())
                    }),
                Emitted::Bad(reason) => Err(vec![Violation {
                    path: String::new(),
                    rule: reason.into(),
                }]),
            };
            match checked {
                Ok((valid, json, row)) => {
                    events.push((i, valid, json, row));
                    outcome[i] = Outcome::Translated;
                }
                Err(violations) => {
                    let path = violations
                        .first()
                        .map(|v| v.path.clone())
                        .filter(|p| !p.is_empty());
                    let reason = violations
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ");
                    outcome[i] = Outcome::Rejected(Stage::Validation, path, reason);
                }
            }
        }
        // Stable: a record's events keep the order the plugin emitted them in.
        events.sort_by_key(|event| event.0);
        report.accepted.reserve(events.len());
        let mut events = events.into_iter().peekable();
        for (i, outcome) in outcome.into_iter().enumerate() {
            let (number, raw) = batch[i];
            // Events of the records before this one that were not taken go: a record rejected
            // after some of its events were accepted.
            while events.next_if(|event| event.0 < i).is_some() {}
            let mine = std::iter::from_fn(|| events.next_if(|event| event.0 == i));
            match outcome {
                Outcome::Consumed => {
                    report.consumed += 1;
                    stream.consumed(raw);
                }
                Outcome::Translated => {
                    report
                        .accepted
                        .extend(mine.map(|(_, valid, json, row)| Accepted {
                            record: number,
                            class_uid: valid.class_uid,
                            time: valid.time,
                            json,
                            row,
                        }));
                }
                Outcome::Rejected(stage, path, reason) => report.rejected.push(Rejection {
                    record: number,
                    stage,
                    path,
                    reason,
                    raw: raw.to_vec(),
                    context: stream.context.clone(),
                }),
            }
        }
        // A plugin that holds no state after the batch read none of it with state: its records
        // need no context.
        stream.carry = translation.carry;
        if stream.carry.is_none() {
            stream.context.clear();
            for r in &mut report.rejected[rejected_before..] {
                r.context.clear();
            }
        }
    }
}

/// One record as a plugin emitted it.
enum Emitted<'t> {
    Line(&'t str),
    Row(&'t [u8]),
    /// Not a record that can be read at all.
    Bad(&'static str),
}

#[derive(Debug, Clone)]
enum Outcome {
    Consumed,
    Translated,
    Rejected(Stage, Option<String>, String),
}

/// Checks that a translation refers only to records of its batch.
fn check_shape(t: Translation, records: usize) -> Result<Translation, PluginFailure> {
    let origins = t.origins.len();
    let shape = match t.format {
        EventFormat::JsonLines if t.events.last().is_some_and(|&b| b != b'\n') => Err(format!(
            "plugin returned unterminated event lines but {origins} origins"
        )),
        EventFormat::JsonLines => {
            Ok((memchr::memchr_iter(b'\n', &t.events).count(), "event lines"))
        }
        EventFormat::Rows => Ok((split_rows(&t.events).count(), "rows")),
    };
    match shape {
        Ok((emitted, _)) if emitted == origins => {}
        Ok((emitted, what)) => {
            return Err(PluginFailure {
                reason: format!("plugin returned {emitted} {what} but {origins} origins"),
            })
        }
        Err(reason) => return Err(PluginFailure { reason }),
    }
    if let Some(bad) = t
        .origins
        .iter()
        .chain(t.diagnostics.iter().map(|d| &d.record))
        .find(|&&i| i as usize >= records)
    {
        return Err(PluginFailure {
            reason: format!("plugin referred to record {bad} of a {records}-record batch"),
        });
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::RowWrite;

    /// A translator that answers every batch with the same translation.
    struct Canned(Manifest, Translation);

    impl Translator for Canned {
        fn manifest(&self) -> &Manifest {
            &self.0
        }

        fn translate(
            &mut self,
            _: &BatchContext,
            _: &[u8],
            _: &[u32],
        ) -> Result<Translation, PluginFailure> {
            Ok(self.1.clone())
        }
    }

    fn manifest() -> Manifest {
        Manifest::new("canned", "0.1.0")
            .framing(Framing::TextLines)
            .class(
                6003,
                &[
                    "actor.user.name",
                    "api.operation",
                    "src_endpoint.ip",
                    "metadata",
                    "time",
                    "severity_id",
                ],
            )
    }

    const RECORD: &str = r#"{"class_uid":6003,"category_uid":6,"activity_id":1,"type_uid":600301,"severity_id":1,"time":7,"metadata":{"version":"1.1.0","product":{"vendor_name":"v","name":"p"}},"actor":{"user":{"name":"alice"}},"api":{"operation":"op"},"src_endpoint":{"ip":"192.0.2.1"}}"#;

    /// `record` (JSON) as the row the validator writes for it.
    fn row_of(record: &str) -> Vec<u8> {
        let declarations = Declarations::new(schema_1_1_0(), &manifest().classes);
        let mut row = Vec::new();
        schema_1_1_0()
            .validate_row(record, &declarations, &mut row)
            .unwrap();
        row
    }

    /// Rows as a translation's events: each preceded by its length.
    fn framed<'r>(rows: impl IntoIterator<Item = &'r [u8]>) -> Vec<u8> {
        let mut events = Vec::new();
        for row in rows {
            events.extend_from_slice(&(row.len() as u32).to_le_bytes());
            events.extend_from_slice(row);
        }
        events
    }

    fn reasons(report: &Report) -> Vec<(u64, &str, &str)> {
        report
            .rejected
            .iter()
            .map(|r| (r.record, r.stage.name(), r.reason.as_str()))
            .collect()
    }

    #[test]
    fn rows_are_checked_and_bad_ones_rejected_alone() {
        let row = row_of(RECORD);
        let mut events = framed([&row[..], &row[..row.len() - 1]]);
        // The last row's length runs past the end of the batch.
        events.extend_from_slice(&100u32.to_le_bytes());
        events.push(1);
        let translation = Translation {
            events,
            format: EventFormat::Rows,
            origins: vec![0, 1, 2],
            ..Translation::default()
        };
        let mut runner = Runner::new(Canned(manifest(), translation)).unwrap();
        let report = runner.run(b"a\nb\nc\n", &RunOptions::default()).unwrap();
        assert_eq!(report.accepted.len(), 1);
        assert_eq!(report.accepted[0].row, row, "a valid row is kept as it is");
        assert_eq!(report.accepted[0].event()["actor"]["user"]["name"], "alice");
        assert_eq!(
            reasons(&report),
            [
                (
                    2,
                    "validation",
                    "<record>: plugin emitted a row that does not follow the row format"
                ),
                (
                    3,
                    "validation",
                    "<record>: plugin emitted a row whose length overruns its batch"
                ),
            ]
        );
    }

    #[test]
    fn a_record_with_a_bad_event_is_rejected_whole_and_the_others_keep_their_order() {
        let good = row_of(RECORD);
        // A second valid row, told apart by its time.
        let other = row_of(&RECORD.replace(r#""time":7"#, r#""time":8"#));
        let bad = &good[..good.len() - 1];
        // Records 1 and 3 of the input emit two events each, out of input order; record 1's
        // second event is bad; record 4 emits nothing.
        let emitted: [(&[u8], u32); 5] =
            [(&good, 1), (&other, 2), (&good, 0), (bad, 0), (&good, 2)];
        let events = framed(emitted.map(|(row, _)| row));
        let translation = Translation {
            events,
            format: EventFormat::Rows,
            origins: emitted.iter().map(|(_, origin)| *origin).collect(),
            ..Translation::default()
        };
        let mut runner = Runner::new(Canned(manifest(), translation)).unwrap();
        let report = runner.run(b"a\nb\nc\nd\n", &RunOptions::default()).unwrap();
        let accepted: Vec<(u64, i64)> =
            report.accepted.iter().map(|a| (a.record, a.time)).collect();
        assert_eq!(accepted, [(2, 7), (3, 8), (3, 7)]);
        assert_eq!(report.rejected.len(), 1);
        assert_eq!(report.rejected[0].record, 1);
        assert_eq!(report.consumed, 1, "record 4");
    }

    #[test]
    fn json_lines_must_match_their_origins_and_end_with_a_newline() {
        let translation = |events: &str, origins: Vec<u32>| Translation {
            events: events.as_bytes().to_vec(),
            origins,
            ..Translation::default()
        };
        let run = |t: Translation| {
            let mut runner = Runner::new(Canned(manifest(), t)).unwrap();
            runner.run(b"a\n", &RunOptions::default()).unwrap()
        };
        let ok = run(translation(&format!("{RECORD}\n"), vec![0]));
        assert_eq!(ok.accepted[0].json, RECORD, "the plugin's own line is kept");
        let mut written = Vec::new();
        written.class(6003);
        assert!(
            ok.accepted[0].row.starts_with(&written),
            "and its row written"
        );
        for (t, reason) in [
            (
                translation(RECORD, vec![0]),
                "plugin returned unterminated event lines but 1 origins",
            ),
            (
                translation(&format!("{RECORD}\n"), vec![0, 0]),
                "plugin returned 1 event lines but 2 origins",
            ),
        ] {
            let report = run(t);
            assert_eq!(reasons(&report), [(1, "plugin", reason)]);
        }
    }
}
