//! `lakegate ingest`: streams files to a gateway, one gRPC stream per file, and reports what
//! the gateway acknowledged. A file is safe to delete once its stream is acknowledged.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use lakegate_plugin_sdk::Framing;
use lakegate_proto::admin::v1::admin_client::AdminClient;
use lakegate_proto::admin::v1::{ListPluginsRequest, ListSourcesRequest};
use lakegate_proto::ingest::v1::ingest_client::IngestClient;
use lakegate_proto::ingest::v1::{IngestRequest, IngestResponse, Record};
use serde_json::json;
use tokio_stream::wrappers::ReceiverStream;

use super::plugin::guess_framing;

/// Line-framed files go in messages of about this size, cut at line ends.
const CHUNK_BYTES: usize = 1 << 20;

/// What to send where.
#[derive(Debug, clap::Args)]
pub(super) struct IngestArgs {
    /// The gateway's gRPC address.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub server: String,
    /// The source the files belong to.
    #[arg(long)]
    pub source: String,
    /// Input framing; by default guessed from the extension, else the source's.
    #[arg(long, value_parser = super::plugin::parse_framing)]
    pub framing: Option<Framing>,
    /// `region=` partition value for these files (default: the source's).
    #[arg(long)]
    pub region: Option<String>,
    /// `accountId=` partition value for these files (default: the source's).
    #[arg(long)]
    pub account_id: Option<String>,
    /// Print one JSON object (on the last line) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Stream this many files at once.
    #[arg(long, default_value_t = 1)]
    pub parallel: usize,
    /// Files to send, one stream each.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

pub(super) fn run(args: IngestArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(ingest(args))
}

async fn ingest(args: IngestArgs) -> anyhow::Result<ExitCode> {
    let endpoint = if args.server.contains("://") {
        args.server.clone()
    } else {
        format!("http://{}", args.server)
    };
    let channel = tonic::transport::Endpoint::from_shared(endpoint.clone())?
        .connect()
        .await
        .with_context(|| format!("cannot connect to the gateway at {endpoint}"))?;
    let (default_framing, accepted) = source_framings(channel.clone(), &args.source).await?;
    let client = IngestClient::new(channel).max_decoding_message_size(64 << 20);
    let mut reports = Vec::new();
    let mut all_acknowledged = true;
    let started = Instant::now();
    // Up to `parallel` streams at once (one per file), reported in the order given.
    let args = std::sync::Arc::new(args);
    let mut running = tokio::task::JoinSet::new();
    let mut results = Vec::new();
    for (index, file) in args.files.iter().enumerate() {
        if running.len() >= args.parallel.max(1) {
            results.push(running.join_next().await.expect("a task is running")?);
        }
        let framing = args
            .framing
            .or_else(|| guess_framing(&without_gz(file), &accepted))
            .unwrap_or(default_framing);
        let (mut client, args, file) = (client.clone(), args.clone(), file.clone());
        running.spawn(async move {
            let result = send_file(&mut client, &args, &file, framing).await;
            (index, result)
        });
    }
    while let Some(done) = running.join_next().await {
        results.push(done?);
    }
    results.sort_by_key(|(index, _)| *index);
    for (index, result) in results {
        let file = &args.files[index];
        match result {
            Ok(response) => {
                if !args.json {
                    print_file(file, &response);
                }
                reports.push(file_json(file, Some(&response), None));
            }
            Err(e) => {
                all_acknowledged = false;
                eprintln!("{}: NOT acknowledged: {e:#}", file.display());
                reports.push(file_json(file, None, Some(format!("{e:#}"))));
            }
        }
    }
    let total = |key: &str| -> u64 { reports.iter().map(|r| r[key].as_u64().unwrap_or(0)).sum() };
    let summary = json!({
        "source": args.source,
        "acknowledged": all_acknowledged,
        "files": reports.len(),
        "read": total("read"),
        "accepted": total("accepted"),
        "events": total("events"),
        "consumed": total("consumed"),
        "dead_lettered": total("dead_lettered"),
        "bytes": total("bytes"),
        "seconds": started.elapsed().as_secs_f64(),
        "per_file": reports,
    });
    if args.json {
        println!("{summary}");
    } else {
        println!(
            "total: {} files, {} log records read, {} accepted ({} OCSF events), {} dead-lettered{}",
            summary["files"],
            summary["read"],
            summary["accepted"],
            summary["events"],
            summary["dead_lettered"],
            if all_acknowledged { "" } else { "; SOME FILES WERE NOT ACKNOWLEDGED: send them again" }
        );
    }
    Ok(if all_acknowledged {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The source's default framing and the framings its plugin accepts.
async fn source_framings(
    channel: tonic::transport::Channel,
    source: &str,
) -> anyhow::Result<(Framing, Vec<Framing>)> {
    let mut admin = AdminClient::new(channel);
    let sources = admin
        .list_sources(ListSourcesRequest {})
        .await
        .context("cannot list the gateway's sources")?
        .into_inner()
        .sources;
    let Some(s) = sources.iter().find(|s| s.name == source) else {
        anyhow::bail!(
            "the gateway has no source `{source}`; it has: {}",
            sources
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let plugins = admin
        .list_plugins(ListPluginsRequest {})
        .await
        .context("cannot list the gateway's plugins")?
        .into_inner()
        .plugins;
    let accepted = plugins
        .iter()
        .find(|p| p.name == s.plugin)
        .map(|p| {
            p.framings
                .iter()
                .filter_map(|f| Framing::from_name(f))
                .collect()
        })
        .unwrap_or_default();
    let default = Framing::from_name(&s.framing).unwrap_or(Framing::JsonLines);
    Ok((default, accepted))
}

/// A file's contents, decompressed when it is gzip (as CloudTrail delivers), and its size when
/// that is known in advance.
fn open(file: &Path) -> anyhow::Result<(Box<dyn Read + Send>, Option<u64>)> {
    let mut f =
        std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut magic = [0u8; 2];
    let gzip = f.read(&mut magic)? == 2 && magic == [0x1f, 0x8b];
    let size = f.metadata()?.len();
    std::io::Seek::rewind(&mut f)?;
    Ok(if gzip {
        (Box::new(flate2::read::MultiGzDecoder::new(f)), None)
    } else {
        (Box::new(f), Some(size))
    })
}

/// `x.json.gz` -> `x.json`, for guessing the framing from the extension.
fn without_gz(file: &Path) -> PathBuf {
    if file.extension().is_some_and(|e| e == "gz") {
        file.with_extension("")
    } else {
        file.to_path_buf()
    }
}

async fn send_file(
    client: &mut IngestClient<tonic::transport::Channel>,
    args: &IngestArgs,
    file: &Path,
    framing: Framing,
) -> anyhow::Result<IngestResponse> {
    let (mut input, size) = open(file)?;
    let mut metadata = std::collections::HashMap::new();
    if let Some(r) = &args.region {
        metadata.insert("region".to_string(), r.clone());
    }
    if let Some(a) = &args.account_id {
        metadata.insert("account_id".to_string(), a.clone());
    }
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let source = args.source.clone();
    let name = file.display().to_string();
    let progress = std::io::stderr().is_terminal() && !args.json;
    // Reads the file in line-aligned chunks on a blocking thread; the bounded channel is the
    // backpressure: the file is read no faster than the gateway takes it.
    let reader = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let whole = framing == Framing::JsonRecords;
        let mut pending: Vec<u8> = Vec::new();
        let mut sent = 0u64;
        let mut first = true;
        loop {
            let mut buf = vec![0u8; CHUNK_BYTES];
            let n = input.read(&mut buf)?;
            buf.truncate(n);
            pending.extend_from_slice(&buf);
            let at_end = n == 0;
            if whole && !at_end {
                continue;
            }
            let cut = if at_end {
                pending.len()
            } else {
                match pending.iter().rposition(|&b| b == b'\n') {
                    Some(i) => i + 1,
                    None => continue,
                }
            };
            if cut > 0 || first {
                let data: Vec<u8> = pending.drain(..cut).collect();
                sent += data.len() as u64;
                let message = IngestRequest {
                    source: if first { source.clone() } else { String::new() },
                    framing: if first {
                        framing.name().into()
                    } else {
                        String::new()
                    },
                    records: vec![Record {
                        data: data.into(),
                        metadata: metadata.clone(),
                    }],
                };
                first = false;
                if tx.blocking_send(message).is_err() {
                    return Ok(()); // the call ended early; its error is reported by the caller
                }
                if progress {
                    eprint!(
                        "\r{name}: {:.1} MiB sent{}",
                        sent as f64 / 1048576.0,
                        size.map(|s| format!(" of {:.1}", s as f64 / 1048576.0))
                            .unwrap_or_default()
                    );
                    let _ = std::io::stderr().flush();
                }
            }
            if at_end {
                if progress {
                    eprintln!();
                }
                return Ok(());
            }
        }
    });
    let response = client.stream(ReceiverStream::new(rx)).await;
    reader.await??;
    Ok(response
        .map_err(|s| anyhow::anyhow!("{:?}: {}", s.code(), s.message()))?
        .into_inner())
}

fn print_file(file: &Path, r: &IngestResponse) {
    println!(
        "{}: {} log records read, {} accepted ({} OCSF events), {} consumed, {} dead-lettered",
        file.display(),
        r.read,
        r.accepted,
        r.events,
        r.consumed,
        r.dead_lettered
    );
    const SHOWN: usize = 10;
    for rej in r.rejections.iter().take(SHOWN) {
        let path = if rej.path.is_empty() {
            String::new()
        } else {
            format!(" at `{}`", rej.path)
        };
        println!(
            "  rejected record {} line {} ({}){path}: {}",
            rej.record, rej.line, rej.stage, rej.reason
        );
    }
    let shown = r.rejections.len().min(SHOWN);
    if r.dead_lettered as usize > shown {
        println!(
            "  ... and {} more (`--json` lists the first 100; `lakegate dead-letters list` all)",
            r.dead_lettered as usize - shown
        );
    }
}

fn file_json(file: &Path, r: Option<&IngestResponse>, error: Option<String>) -> serde_json::Value {
    match r {
        Some(r) => json!({
            "file": file.display().to_string(),
            "acknowledged": true,
            "read": r.read,
            "accepted": r.accepted,
            "events": r.events,
            "consumed": r.consumed,
            "dead_lettered": r.dead_lettered,
            "bytes": r.bytes,
            "events_per_class": r.events_per_class,
            "rejections": r.rejections.iter().map(|x| json!({
                "record": x.record, "line": x.line, "stage": x.stage, "path": x.path, "reason": x.reason,
            })).collect::<Vec<_>>(),
        }),
        None => json!({
            "file": file.display().to_string(),
            "acknowledged": false,
            "error": error,
        }),
    }
}
