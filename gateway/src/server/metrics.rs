//! Prometheus metrics in the text exposition format, on `GET /metrics` of a small HTTP/1.1
//! listener.

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::pipeline::Pipeline;
use crate::sources::{Counters, Sources};

/// Renders every metric.
pub fn render(sources: &Sources, pipeline: &Pipeline) -> String {
    let mut out = String::new();
    type Read = fn(&Counters) -> u64;
    let counters: [(&str, &str, Read); 9] = [
        (
            "lakegate_received_records_total",
            "Record messages received",
            |c| Counters::get(&c.received_records),
        ),
        ("lakegate_received_bytes_total", "Raw bytes received", |c| {
            Counters::get(&c.received_bytes)
        }),
        (
            "lakegate_read_records_total",
            "Log records cut from received records by framing",
            |c| Counters::get(&c.read),
        ),
        (
            "lakegate_events_acknowledged_total",
            "OCSF events made durable in the write-ahead log",
            |c| Counters::get(&c.events_acknowledged),
        ),
        (
            "lakegate_events_written_total",
            "OCSF events in committed Parquet files",
            |c| Counters::get(&c.events_written),
        ),
        (
            "lakegate_rejected_records_total",
            "Log records rejected",
            |c| Counters::get(&c.rejected),
        ),
        (
            "lakegate_slices_retranslated_total",
            "Input slices translated again: the stream's state changed under a speculative translation",
            |c| Counters::get(&c.retranslated),
        ),
        ("lakegate_dead_letters_total", "Dead letters written", |c| {
            Counters::get(&c.dead_lettered)
        }),
        (
            "lakegate_files_written_total",
            "Parquet files committed",
            |c| Counters::get(&c.files_written),
        ),
    ];
    for (name, help, get) in counters {
        let _ = writeln!(out, "# HELP {name} {help}.\n# TYPE {name} counter");
        for s in sources.by_name.values() {
            let _ = writeln!(out, "{name}{{source=\"{}\"}} {}", s.name, get(&s.counters));
        }
    }
    let stats = pipeline.stats();
    let gauges = [
        (
            "lakegate_buffered_bytes",
            "Bytes of records (as logged) waiting in open partitions for their Parquet file",
            stats.buffered_bytes.load(Relaxed),
        ),
        (
            "lakegate_open_partitions",
            "Open partitions",
            stats.open_partitions.load(Relaxed),
        ),
        (
            "lakegate_wal_segments",
            "Write-ahead log segments on disk",
            stats.wal_segments.load(Relaxed),
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(
            out,
            "# HELP {name} {help}.\n# TYPE {name} gauge\n{name} {value}"
        );
    }
    let syncs = stats.wal_syncs.load(Relaxed);
    let _ = writeln!(
        out,
        "# HELP lakegate_wal_syncs_total Group commits (fsyncs) of the write-ahead log.\n# TYPE lakegate_wal_syncs_total counter\nlakegate_wal_syncs_total {syncs}"
    );
    out
}

/// Serves `/metrics` until the task is dropped.
pub async fn serve(listener: TcpListener, sources: Arc<Sources>, pipeline: Pipeline) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            continue;
        };
        let (sources, pipeline) = (sources.clone(), pipeline.clone());
        tokio::spawn(async move {
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let (status, body) = if request.starts_with(b"GET /metrics ") {
                ("200 OK", render(&sources, &pipeline))
            } else {
                (
                    "404 Not Found",
                    "only GET /metrics is served here\n".to_string(),
                )
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        });
    }
}
