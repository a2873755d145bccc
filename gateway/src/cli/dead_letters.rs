//! `lakegate dead-letters list` and `lakegate dead-letters replay`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use lakegate_proto::ingest::v1::ingest_client::IngestClient;
use lakegate_proto::ingest::v1::{IngestRequest, Record};

use crate::lake::dead_letter::{self, DeadLetter, Raw};

/// Letters per replay request.
const REPLAY_BATCH: usize = 500;

pub(super) fn list(lake: &Path, source: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let letters = dead_letter::read(lake, source)
        .with_context(|| format!("cannot read dead letters in {}", lake.display()))?;
    if json {
        for l in &letters {
            println!("{}", serde_json::to_string(l)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut by: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for l in &letters {
        *by.entry((&l.source, &l.stage)).or_default() += 1;
    }
    println!(
        "{} dead letters not yet replayed in {}",
        letters.len(),
        lake.display()
    );
    for ((source, stage), n) in by {
        println!("  {source:<24} {stage:<12} {n}");
    }
    for l in letters.iter().take(20) {
        let path = l
            .path
            .as_deref()
            .map(|p| format!(" at `{p}`"))
            .unwrap_or_default();
        println!(
            "{} {} {} (plugin {} {}) record {} line {}{path}: {}",
            l.id, l.source, l.stage, l.plugin, l.plugin_version, l.record, l.line, l.reason
        );
    }
    if letters.len() > 20 {
        println!("... {} more (use --json for all)", letters.len() - 20);
    }
    Ok(ExitCode::SUCCESS)
}

/// The framing a letter is sent again with: what framing refused is sent as it came; a record
/// framing had cut is one record, sent with the source's default framing (one JSON record per
/// line for `json-records` elements), so a source whose plugin was replaced still takes it.
fn replay_framing(letter: &DeadLetter) -> &str {
    match (letter.stage.as_str(), letter.framing.as_str()) {
        ("framing", framing) => framing,
        (_, "json-records") => "json-lines",
        _ => "",
    }
}

/// Sends dead letters through their source's current plugin again. Letters the gateway
/// acknowledges are marked replayed (records rejected again become new dead letters).
pub(super) fn replay(lake: &Path, source: Option<&str>, server: &str) -> anyhow::Result<ExitCode> {
    let letters = dead_letter::read(lake, source)?;
    let replayable: Vec<&DeadLetter> = letters.iter().filter(|l| l.stage != "lake").collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let endpoint = if server.contains("://") {
        server.to_string()
    } else {
        format!("http://{server}")
    };
    runtime.block_on(async {
        let mut client = IngestClient::connect(endpoint.clone())
            .await
            .with_context(|| format!("cannot connect to the gateway at {endpoint}"))?;
        // Letters that depend on earlier records of their stream (a header line) are sent after
        // those records, which produce nothing again and are not counted.
        let mut groups: BTreeMap<(&str, &str, &[Raw]), Vec<&DeadLetter>> = BTreeMap::new();
        for l in replayable {
            groups
                .entry((&l.source, replay_framing(l), &l.context))
                .or_default()
                .push(l);
        }
        let (mut sent, mut accepted, mut again) = (0, 0, 0);
        for ((source, framing, context), letters) in groups {
            for chunk in letters.chunks(REPLAY_BATCH) {
                let context = context.iter().map(|raw| Record {
                    data: raw.bytes().into(),
                    metadata: Default::default(),
                });
                let letters = chunk.iter().map(|l| Record {
                    data: l.raw_bytes().into(),
                    metadata: l.metadata.clone().into_iter().collect(),
                });
                let request = IngestRequest {
                    source: source.to_string(),
                    framing: framing.to_string(),
                    records: context.chain(letters).collect(),
                };
                let response = client
                    .send(request)
                    .await
                    .map_err(|s| anyhow::anyhow!("replay of {source} not acknowledged: {}", s.message()))?
                    .into_inner();
                dead_letter::mark_replayed(lake, source, chunk.iter().map(|l| l.id.as_str()))?;
                sent += chunk.len();
                accepted += response.accepted;
                again += response.dead_lettered;
            }
        }
        println!(
            "replayed {sent} dead letters: {accepted} accepted, {again} rejected again (new dead letters)"
        );
        Ok(ExitCode::SUCCESS)
    })
}
