//! `lakegate.ingest.v1.Ingest`: frames, translates and validates each message's records on a
//! blocking thread with a pooled plugin instance, hands the result to the pipeline, and answers
//! once the pipeline says it is durable.

use std::collections::BTreeMap;
use std::sync::Arc;

use lakegate_plugin_sdk::host::runner::{Report, RunOptions, StreamState as PluginStream};
use lakegate_plugin_sdk::Framing;
use lakegate_proto::ingest::v1::ingest_server::Ingest;
use lakegate_proto::ingest::v1::{IngestRequest, IngestResponse, Record, Rejection};
use tonic::{Request, Response, Status, Streaming};

use crate::config::{check_account, check_region};
use crate::lake::dead_letter::{DeadLetter, Raw};
use crate::pipeline::{now_ms, Pipeline};
use crate::sources::{Counters, Source, Sources};
use crate::wal::WalEvent;

/// Rejections listed in a response; all are counted and dead-lettered.
const MAX_LISTED_REJECTIONS: usize = 100;

/// The ingest service.
pub struct IngestService {
    pub sources: Arc<Sources>,
    pub pipeline: Pipeline,
}

/// One stream's state: its source, framing, the plugin's state, and the tally so far.
struct StreamState {
    source: Arc<Source>,
    framing: Framing,
    plugin: PluginStream,
    next_record: u64,
    response: IngestResponse,
}

impl IngestService {
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
        })
    }

    /// Translates one message's records and makes the outcome durable.
    async fn ingest(&self, state: &mut StreamState, records: Vec<Record>) -> Result<(), Status> {
        let source = state.source.clone();
        let framing = state.framing;
        let plugin = std::mem::take(&mut state.plugin);
        let first = state.next_record;
        state.next_record += records.len() as u64;
        let translated = tokio::task::spawn_blocking(move || {
            translate(&source, framing, plugin, first, records)
        })
        .await
        .map_err(|e| Status::internal(format!("translation task failed: {e}")))?;
        state.plugin = translated.plugin;
        let c = &state.source.counters;
        Counters::add(&c.received_records, translated.tally.records);
        Counters::add(&c.received_bytes, translated.tally.bytes);
        Counters::add(&c.read, translated.tally.read);
        Counters::add(&c.rejected, translated.letters.len() as u64);
        self.pipeline
            .append(state.source.clone(), translated.events, translated.letters)
            .await
            .map_err(|e| Status::unavailable(format!("not acknowledged: {e}")))?;
        let r = &mut state.response;
        let t = translated.tally;
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
        Ok(())
    }
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
    events: Vec<WalEvent>,
    letters: Vec<DeadLetter>,
    plugin: PluginStream,
    tally: Tally,
}

/// Runs records through the source's plugin; every record ends up as events or dead letters.
fn translate(
    source: &Source,
    framing: Framing,
    mut plugin: PluginStream,
    first: u64,
    records: Vec<Record>,
) -> Translated {
    let received_ms = now_ms();
    let options = RunOptions {
        source: source.name.clone(),
        framing: Some(framing),
        received_ms,
        ..RunOptions::default()
    };
    let mut events = Vec::new();
    let mut letters = Vec::new();
    let mut tally = Tally::default();
    source.with_runner(|runner| {
        for (i, record) in records.into_iter().enumerate() {
            let index = first + i as u64;
            tally.records += 1;
            tally.bytes += record.data.len() as u64;
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
            let partition = partition_values(source, &record);
            let (region, account) = match partition {
                Ok(values) => values,
                Err(reason) => {
                    tally.read += 1;
                    tally
                        .rejections
                        .push(rejection(index, 0, "metadata", None, &reason));
                    letters.push(letter(0, "metadata", None, reason, &record.data));
                    continue;
                }
            };
            let report: Report = match runner.run_continued(&record.data, &options, &mut plugin) {
                Ok(r) => r,
                Err(e) => {
                    // The framing was checked when the stream opened; keep the record anyway.
                    tally.read += 1;
                    tally
                        .rejections
                        .push(rejection(index, 0, "framing", None, &e.to_string()));
                    letters.push(letter(0, "framing", None, e.to_string(), &record.data));
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
                events.push(WalEvent {
                    class_uid: a.class_uid,
                    time: a.time,
                    region: region.clone(),
                    account: account.clone(),
                    json: a.json,
                });
            }
            for r in report.rejected {
                tally.rejections.push(rejection(
                    index,
                    r.record,
                    r.stage.name(),
                    r.path.clone(),
                    &r.reason,
                ));
                let mut letter = letter(r.record, r.stage.name(), r.path, r.reason, &r.raw);
                letter.context = r.context.iter().map(|raw| Raw::new(raw)).collect();
                letters.push(letter);
            }
        }
    });
    Translated {
        events,
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
        Ok(Response::new(state.response))
    }

    async fn send(
        &self,
        request: Request<IngestRequest>,
    ) -> Result<Response<IngestResponse>, Status> {
        let message = request.into_inner();
        let mut state = self.open(&message)?;
        self.ingest(&mut state, message.records).await?;
        Ok(Response::new(state.response))
    }
}
