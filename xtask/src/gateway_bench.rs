//! `cargo xtask bench gateway`: the whole gateway (gRPC ingest, WASM translation, validation,
//! write-ahead log with fsync, Parquet) against the DuckDB peer of `../shared/peers`, on the same
//! generated CloudTrail and VPC flow data, measured in the same run.
//!
//! For each dataset: the peer at 1 and 2 threads (its own RESULT lines), then lakegate with one
//! stream and with two parallel streams (the input cut into shards, as the peer's CloudTrail is).
//! Wall time runs from the first byte sent to the exit of the gateway after SIGTERM (every record
//! in a committed Parquet file); CPU is the gateway's plus the sending client's; peak RSS is the
//! gateway's high-water mark (VmHWM). A run with the input sent twice shows whether memory grows
//! with the input.
//!
//! The machine is shared and noisy (the same run takes a third more CPU from one time to the
//! next), so the whole set runs `LAKEGATE_BENCH_ROUNDS` times (default 3), the peer and lakegate
//! in turn, and the tables show each job's median wall and CPU time and its highest peak RSS.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::run;

/// One measured run.
#[derive(Debug, Clone)]
struct Measure {
    name: String,
    records: u64,
    bytes: u64,
    secs: f64,
    cpu: f64,
    rss_mb: f64,
    /// Parquet files written and their total size.
    files: u64,
    out_bytes: u64,
}

impl Measure {
    fn rec_per_cpu(&self) -> f64 {
        self.records as f64 / self.cpu
    }
    fn rec_per_s(&self) -> f64 {
        self.records as f64 / self.secs
    }
}

fn field(line: &str, key: &str) -> Option<f64> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
}

pub(crate) fn run_bench(root: &Path) -> Result<()> {
    let peers = root.join("../shared/peers");
    if !peers.join("run_peer.sh").exists() {
        bail!(
            "{} is missing: the gateway benchmark compares with its DuckDB peer",
            peers.display()
        );
    }
    let n_ct: u64 = env_or("LAKEGATE_BENCH_CT", 200_000);
    let n_vpc: u64 = env_or("LAKEGATE_BENCH_VPC", 600_000);
    let work = root.join("target/bench");
    let peer_work = work.join("peers");
    std::fs::create_dir_all(&peer_work)?;
    run(crate::cargo()
        .current_dir(root)
        .args(["build", "--release", "-p", "lakegate"]))?;
    let lakegate = root.join("target/release/lakegate");
    let rounds = env_or("LAKEGATE_BENCH_ROUNDS", 3).max(1);
    let (mut peer_rounds, mut our_rounds) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        println!("== round {round} of {rounds}");
        peer_rounds.push(peer_run(&peers, &peer_work, n_ct, n_vpc)?);
        our_rounds.push(gateway_runs(&lakegate, &work, &peer_work, n_ct, n_vpc)?);
    }
    let (peer, ours) = (medians(&peer_rounds), medians(&our_rounds));
    print_tables(&peer, &ours);
    Ok(())
}

/// Each job's median over the rounds (jobs matched by name): wall and CPU time each the median
/// of its own, peak RSS the highest.
fn medians(rounds: &[Vec<Measure>]) -> Vec<Measure> {
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    rounds[0]
        .iter()
        .map(|first| {
            let runs: Vec<&Measure> = rounds
                .iter()
                .filter_map(|r| r.iter().find(|m| m.name == first.name))
                .collect();
            Measure {
                secs: median(runs.iter().map(|m| m.secs).collect()),
                cpu: median(runs.iter().map(|m| m.cpu).collect()),
                rss_mb: runs.iter().map(|m| m.rss_mb).fold(0.0, f64::max),
                ..first.clone()
            }
        })
        .collect()
}

/// The peer's four runs (CloudTrail and VPC flow at 1 and 2 threads).
fn peer_run(peers: &Path, peer_work: &Path, n_ct: u64, n_vpc: u64) -> Result<Vec<Measure>> {
    println!("== DuckDB peer ({n_ct} CloudTrail, {n_vpc} VPC flow records)");
    let out = Command::new("bash")
        .arg(peers.join("run_peer.sh"))
        .args([n_ct.to_string(), n_vpc.to_string()])
        .env("WORK", peer_work)
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run the peer")?;
    let text = String::from_utf8_lossy(&out.stdout);
    print!("{text}");
    let peer: Vec<Measure> = text
        .lines()
        .filter(|l| l.starts_with("RESULT"))
        .filter_map(|l| {
            Some(Measure {
                name: l.split_whitespace().nth(1)?.to_string(),
                records: field(l, "records")? as u64,
                bytes: field(l, "bytes")? as u64,
                secs: field(l, "secs")?,
                cpu: field(l, "cpu_s")?,
                rss_mb: field(l, "peak_rss_mb")?,
                files: field(l, "files")? as u64,
                out_bytes: field(l, "out_bytes")? as u64,
            })
        })
        .collect();
    if !out.status.success() || peer.len() < 4 {
        bail!("the peer did not report its four runs");
    }
    Ok(peer)
}

/// lakegate's six runs: each dataset with one stream, two streams and the input twice.
fn gateway_runs(
    lakegate: &Path,
    work: &Path,
    peer_work: &Path,
    n_ct: u64,
    n_vpc: u64,
) -> Result<Vec<Measure>> {
    let ct = peer_work.join(format!("ct_{n_ct}_s42.jsonl"));
    let vpc = peer_work.join(format!("vpc_{n_vpc}_s42.log"));
    let ct_shards = shards(&ct, &work.join("ct-shards"), 8, false)?;
    let vpc_shards = shards(&vpc, &work.join("vpc-shards"), 2, true)?;

    let mut ours = Vec::new();
    for (name, source, files, parallel) in [
        ("lakegate-ct-1stream", "aws-cloudtrail", vec![ct.clone()], 1),
        ("lakegate-ct-2streams", "aws-cloudtrail", ct_shards, 2),
        // The same input twice over: memory must not grow with it.
        (
            "lakegate-ct-double",
            "aws-cloudtrail",
            vec![ct.clone(), ct.clone()],
            1,
        ),
        ("lakegate-vpc-1stream", "aws-vpc-flow", vec![vpc.clone()], 1),
        ("lakegate-vpc-2streams", "aws-vpc-flow", vpc_shards, 2),
        (
            "lakegate-vpc-double",
            "aws-vpc-flow",
            vec![vpc.clone(), vpc.clone()],
            1,
        ),
    ] {
        let m = gateway_run(lakegate, work, name, source, &files, parallel)?;
        println!(
            "RESULT {} records={} bytes={} secs={:.3} cpu_s={:.3} rec_per_s={:.0} rec_per_cpu_s={:.0} peak_rss_mb={:.0} files={} out_bytes={}",
            m.name, m.records, m.bytes, m.secs, m.cpu, m.rec_per_s(), m.rec_per_cpu(), m.rss_mb, m.files, m.out_bytes
        );
        ours.push(m);
    }
    Ok(ours)
}

/// The per-job table and the targets' table, as the README shows them.
fn print_tables(peer: &[Measure], ours: &[Measure]) {
    println!("\n| job | records | wall s | records/s | MB/s | CPU s | records per CPU-s | peak RSS MiB | Parquet files | MB written |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for m in peer.iter().chain(ours) {
        println!(
            "| {} | {} | {:.2} | {:.0} | {:.1} | {:.2} | {:.0} | {:.0} | {} | {:.1} |",
            m.name,
            m.records,
            m.secs,
            m.rec_per_s(),
            m.bytes as f64 / 1e6 / m.secs,
            m.cpu,
            m.rec_per_cpu(),
            m.rss_mb,
            m.files,
            m.out_bytes as f64 / 1e6
        );
    }
    println!("\n| dataset | records per CPU-s: lakegate / peer (target 1.5x) | wall records/s, 2 streams / peer's best (target 2.5x) | peak RSS MiB, 1 stream: input -> twice the input (2 streams) (target <= 256, flat) |");
    println!("|---|---|---|---|");
    for (ds, peer_prefix, ours_prefix) in [
        ("CloudTrail", "duckdb-ct", "lakegate-ct"),
        ("VPC flow", "duckdb-vpc", "lakegate-vpc"),
    ] {
        let p: Vec<&Measure> = peer
            .iter()
            .filter(|m| m.name.starts_with(peer_prefix))
            .collect();
        let o = |suffix: &str| {
            ours.iter()
                .find(|m| m.name == format!("{ours_prefix}-{suffix}"))
        };
        let (Some(one), Some(two), Some(double)) = (o("1stream"), o("2streams"), o("double"))
        else {
            continue;
        };
        let peer_cpu = p.iter().map(|m| m.rec_per_cpu()).fold(0.0, f64::max);
        let peer_wall = p.iter().map(|m| m.rec_per_s()).fold(0.0, f64::max);
        let best_cpu = one.rec_per_cpu().max(two.rec_per_cpu());
        println!(
            "| {ds} | {:.2}x ({:.0} vs {:.0}) | {:.2}x ({:.0} vs {:.0}) | {:.0} -> {:.0} ({:.0}) |",
            best_cpu / peer_cpu,
            best_cpu,
            peer_cpu,
            two.rec_per_s() / peer_wall,
            two.rec_per_s(),
            peer_wall,
            one.rss_mb,
            double.rss_mb,
            two.rss_mb
        );
    }
}

fn env_or(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Cuts a line file into `n` shards of whole lines (cached); with `header`, the first line is
/// repeated at the top of every shard (a VPC flow log's field list).
fn shards(input: &Path, dir: &Path, n: usize, header: bool) -> Result<Vec<PathBuf>> {
    let paths: Vec<PathBuf> = (0..n).map(|i| dir.join(format!("part-{i}"))).collect();
    if paths.iter().all(|p| p.exists()) {
        return Ok(paths);
    }
    std::fs::create_dir_all(dir)?;
    let text = std::fs::read(input)?;
    let mut lines: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let head = if header { Some(lines.remove(0)) } else { None };
    let per = lines.len().div_ceil(n);
    for (i, path) in paths.iter().enumerate() {
        let mut out = Vec::new();
        if let Some(h) = head {
            out.extend_from_slice(h);
            out.push(b'\n');
        }
        for l in lines.iter().skip(i * per).take(per) {
            out.extend_from_slice(l);
            out.push(b'\n');
        }
        std::fs::write(path, out)?;
    }
    Ok(paths)
}

/// CPU seconds (user + system) and VmHWM (MiB) of a live process.
fn sample(pid: u32) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm_kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    Some((ticks / 100.0, hwm_kb / 1024.0))
}

/// The last CPU readings of the gateway and its client, and the gateway's peak memory.
struct Watch {
    server: u32,
    client: u32,
    server_cpu: f64,
    client_cpu: f64,
    rss_mb: f64,
}

impl Watch {
    /// Samples both processes every 20 ms until `child` exits.
    fn until_exit(&mut self, child: &mut std::process::Child) -> Result<()> {
        loop {
            if let Some((c, _)) = sample(self.client) {
                self.client_cpu = c;
            }
            if let Some((c, h)) = sample(self.server) {
                self.server_cpu = c;
                self.rss_mb = f64::max(self.rss_mb, h);
            }
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn gateway_run(
    lakegate: &Path,
    work: &Path,
    name: &str,
    source: &str,
    files: &[PathBuf],
    parallel: usize,
) -> Result<Measure> {
    let lake = work.join("lake");
    let _ = std::fs::remove_dir_all(&lake);
    let mut server = Command::new(lakegate)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--lake",
        ])
        .arg(&lake)
        .stdout(Stdio::piped())
        .spawn()?;
    let mut banner = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.take().context("stdout")?),
        &mut banner,
    )?;
    let addr = banner
        .split("serving gRPC on ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .context("no banner from lakegate serve")?
        .to_string();
    let pid = server.id();
    let (cpu0, _) = sample(pid).context("gateway stats")?;
    let started = Instant::now();
    let mut client = Command::new(lakegate)
        .args([
            "ingest",
            "--json",
            "--server",
            &addr,
            "--source",
            source,
            "--parallel",
        ])
        .arg(parallel.to_string())
        .args(files)
        .stdout(Stdio::piped())
        .spawn()?;
    let mut watch = Watch {
        server: pid,
        client: client.id(),
        server_cpu: 0.0,
        client_cpu: 0.0,
        rss_mb: 0.0,
    };
    watch.until_exit(&mut client)?;
    let output = client.wait_with_output()?;
    let summary: serde_json::Value = serde_json::from_slice(
        output
            .stdout
            .split(|&b| b == b'\n')
            .rfind(|l| !l.is_empty())
            .unwrap_or_default(),
    )
    .context("ingest summary")?;
    if summary["acknowledged"] != true {
        bail!("{name}: not acknowledged: {summary}");
    }
    run(Command::new("kill").args(["-TERM", &pid.to_string()]))?;
    watch.until_exit(&mut server)?;
    let secs = started.elapsed().as_secs_f64();
    let (files, out_bytes) = parquet_files(&lake.join("ext"));
    Ok(Measure {
        name: name.to_string(),
        records: summary["read"].as_u64().unwrap_or(0),
        bytes: summary["bytes"].as_u64().unwrap_or(0),
        secs,
        cpu: watch.server_cpu - cpu0 + watch.client_cpu,
        rss_mb: watch.rss_mb,
        files,
        out_bytes,
    })
}

/// How many Parquet files are under `dir`, and their total size.
fn parquet_files(dir: &Path) -> (u64, u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    let (mut files, mut bytes) = (0, 0);
    for path in entries.flatten().map(|e| e.path()) {
        if path.is_dir() {
            let (f, b) = parquet_files(&path);
            (files, bytes) = (files + f, bytes + b);
        } else if path.extension().is_some_and(|e| e == "parquet") {
            files += 1;
            bytes += std::fs::metadata(&path).map_or(0, |m| m.len());
        }
    }
    (files, bytes)
}
