//! `lakegate serve` end to end: the real binary, real plugins, gRPC from `lakegate ingest` and
//! from a tonic client, and the lake read back by pyarrow (tests/independent/lake_reader.py),
//! which shares no code with the gateway.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lakegate_proto::admin::v1::admin_client::AdminClient;
use lakegate_proto::admin::v1::FlushRequest;
use lakegate_proto::ingest::v1::ingest_client::IngestClient;
use lakegate_proto::ingest::v1::{IngestRequest, IngestResponse, Record};
use serde_json::Value;
use support::{golden, plugin, root, text};

/// A running gateway.
struct Gateway {
    child: Child,
    addr: String,
    metrics: String,
}

/// A fresh lake directory (and room for a config file beside it).
fn lake(name: &str) -> PathBuf {
    let dir = root().join("target/serve-tests").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir.join("lake")
}

impl Gateway {
    fn start(lake: &Path, config: Option<&str>) -> Gateway {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lakegate"));
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .arg("--lake")
        .arg(lake)
        .arg("--plugin-dir")
        .arg(root().join("target/plugins"))
        .env("LAKEGATE_CACHE_DIR", root().join("target/test-cache"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(lake.with_extension("log"))
                .expect("log file"),
        );
        if let Some(config) = config {
            let path = lake.with_extension("toml");
            std::fs::write(&path, config).expect("config");
            cmd.arg("--config").arg(path);
        }
        let mut child = cmd.spawn().expect("lakegate starts");
        let stdout = child.stdout.take().expect("piped");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("reads the banner");
        let addr = line
            .split("serving gRPC on ")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .unwrap_or_else(|| {
                panic!(
                    "no banner: {line:?}; log:\n{}",
                    std::fs::read_to_string(lake.with_extension("log")).unwrap_or_default()
                )
            })
            .to_string();
        let metrics = line
            .split("metrics on http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .expect("metrics address")
            .to_string();
        Gateway {
            child,
            addr,
            metrics,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `lakegate ingest --json`: exit success and the summary object.
    fn ingest(&self, source: &str, files: &[&str], extra: &[&str]) -> (bool, Value, String) {
        let o = Command::new(env!("CARGO_BIN_EXE_lakegate"))
            .args([
                "ingest",
                "--json",
                "--server",
                &self.url(),
                "--source",
                source,
            ])
            .args(extra)
            .args(files)
            .output()
            .expect("lakegate ingest runs");
        let out = text(&o);
        let last = String::from_utf8_lossy(&o.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .to_string();
        let summary = serde_json::from_str(&last).unwrap_or(Value::Null);
        (o.status.success(), summary, out)
    }

    /// SIGTERM, and the exit status: the gateway flushes and exits cleanly.
    /// `lakegate dead-letters replay` of one source through this gateway; its output.
    fn replay(&self, lake: &Path, source: &str) -> String {
        let o = Command::new(env!("CARGO_BIN_EXE_lakegate"))
            .args(["dead-letters", "replay", "--source", source])
            .args(["--server", &self.url(), "--lake"])
            .arg(lake)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        text(&o)
    }

    fn stop(mut self) -> bool {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        self.child.wait().expect("waits").success()
    }

    fn kill_9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("waits");
    }

    /// The admin API's flush: what it wrote.
    fn flush(&self) -> lakegate_proto::admin::v1::FlushResponse {
        runtime().block_on(async {
            let mut admin = AdminClient::connect(self.url()).await.unwrap();
            admin.flush(FlushRequest {}).await.unwrap().into_inner()
        })
    }

    fn metrics(&self) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&self.metrics).expect("metrics port");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        body
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `Send` call of one Record.
fn send_one(url: &str, source: &str, framing: &str, data: Vec<u8>) -> IngestResponse {
    runtime().block_on(async {
        let mut client = IngestClient::connect(url.to_string()).await.unwrap();
        let request = IngestRequest {
            source: source.into(),
            records: vec![Record {
                data: data.into(),
                metadata: Default::default(),
            }],
            framing: framing.into(),
        };
        client.send(request).await.unwrap().into_inner()
    })
}

/// Records, log records read, accepted and dead-lettered.
fn counts(r: &IngestResponse) -> (u64, u64, u64, u64) {
    (r.records, r.read, r.accepted, r.dead_lettered)
}

/// The dead letters of one source not yet replayed (`lakegate dead-letters list --json`).
fn dead_letters(lake: &Path, source: &str) -> Vec<Value> {
    let o = Command::new(env!("CARGO_BIN_EXE_lakegate"))
        .args([
            "dead-letters",
            "list",
            "--json",
            "--source",
            source,
            "--lake",
        ])
        .arg(lake)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// The lake as pyarrow reads it.
fn read_lake(lake: &Path) -> Value {
    let python = std::env::var("LAKEGATE_PYTHON").unwrap_or_else(|_| "python3".into());
    let o = Command::new(&python)
        .arg(root().join("tests/independent/lake_reader.py"))
        .arg(lake)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}; `cargo xtask test` sets up tests/independent/requirements.txt"));
    assert!(
        o.status.success(),
        "lake_reader.py failed (needs pyarrow from tests/independent/requirements.txt; `cargo xtask test` installs it):\n{}",
        text(&o)
    );
    serde_json::from_slice(&o.stdout).expect("reader prints JSON")
}

/// Rows per lake source (`ext/<name>/`).
fn rows_per_source(lake: &Value) -> BTreeMap<String, u64> {
    let mut rows = BTreeMap::new();
    for f in lake["files"].as_array().unwrap() {
        *rows
            .entry(f["source"].as_str().unwrap().to_string())
            .or_default() += f["rows"].as_u64().unwrap();
    }
    rows
}

/// Acknowledged events per lake source, from `lakegate ingest --json` summaries.
fn acknowledged(source: &str, summary: &Value, into: &mut BTreeMap<String, u64>) {
    for file in summary["per_file"].as_array().unwrap() {
        assert_eq!(file["acknowledged"], true, "{file}");
        for (class, n) in file["events_per_class"].as_object().unwrap() {
            *into.entry(format!("{source}-{class}")).or_default() += n.as_u64().unwrap();
        }
    }
}

#[test]
fn samples_of_all_three_plugins_land_in_the_security_lake_layout() {
    let lake = lake("e2e");
    let gw = Gateway::start(&lake, None);
    let mut acked = BTreeMap::new();
    let mut dead = 0;
    // CloudTrail delivers gzip: `ingest` reads it as is (framing guessed from `.json` under `.gz`).
    let gz = lake.parent().unwrap().join("s3-object-records.json.gz");
    let mut encoder = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    std::io::Write::write_all(
        &mut encoder,
        &std::fs::read(golden("aws-cloudtrail", "s3-object-records.input.json")).unwrap(),
    )
    .unwrap();
    encoder.finish().unwrap();
    let sends: [(&str, Vec<String>, &[&str]); 3] = [
        (
            "aws-cloudtrail",
            [
                golden("aws-cloudtrail", "aws-reference.input.jsonl"),
                golden("aws-cloudtrail", "s3-object-records.input.json"),
                golden("aws-cloudtrail", "edge-cases.input.jsonl"),
                gz.display().to_string(),
            ]
            .to_vec(),
            // Partition values from the records' metadata instead of the source's defaults.
            &["--region", "eu-west-1", "--account-id", "123456789012"],
        ),
        (
            "aws-vpc-flow",
            [
                "default-v2.input.log",
                "aws-reference-v5.input.log",
                "custom-v3-header.input.log",
            ]
            .map(|f| golden("aws-vpc-flow", f))
            .to_vec(),
            &[],
        ),
        (
            "okta-system-log",
            ["panther-scenarios.input.jsonl", "edge-cases.input.jsonl"]
                .map(|f| golden("okta-system-log", f))
                .to_vec(),
            &["--account-id", "external_acme"],
        ),
    ];
    for (source, files, extra) in &sends {
        let files: Vec<&str> = files.iter().map(String::as_str).collect();
        let (ok, summary, out) = gw.ingest(source, &files, extra);
        assert!(ok, "{out}");
        if *source == "aws-cloudtrail" {
            let per_file = summary["per_file"].as_array().unwrap();
            assert_eq!(
                per_file[3]["events"], per_file[1]["events"],
                "gzip = plain: {out}"
            );
        }
        assert_eq!(summary["acknowledged"], true, "{out}");
        acknowledged(source, &summary, &mut acked);
        dead += summary["dead_lettered"].as_u64().unwrap();
    }
    assert!(acked.values().sum::<u64>() > 100, "{acked:?}");
    let metrics = gw.metrics();
    assert!(
        metrics.contains("lakegate_events_acknowledged_total{source=\"aws-vpc-flow\"} ")
            && metrics.contains("# TYPE lakegate_dead_letters_total counter"),
        "{metrics}"
    );

    // Health and reflection answer as grpcurl would ask.
    let addr = gw.url();
    runtime().block_on(async {
        use tonic_health::pb::health_check_response::ServingStatus;
        use tonic_health::pb::health_client::HealthClient;
        use tonic_health::pb::HealthCheckRequest;
        let channel = tonic::transport::Endpoint::from_shared(addr)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut health = HealthClient::new(channel.clone());
        let status = health
            .check(HealthCheckRequest {
                service: "lakegate.ingest.v1.Ingest".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32);

        use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
        use tonic_reflection::pb::v1::ServerReflectionRequest;
        let mut reflection = ServerReflectionClient::new(channel);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut responses = reflection
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        let Some(MessageResponse::ListServicesResponse(list)) =
            responses.message().await.unwrap().unwrap().message_response
        else {
            panic!("not a service list")
        };
        let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        for want in [
            "lakegate.ingest.v1.Ingest",
            "lakegate.admin.v1.Admin",
            "grpc.health.v1.Health",
        ] {
            assert!(names.iter().any(|n| n == want), "{names:?}");
        }
    });

    // The admin API: flush now, and the counters agree with what was acknowledged.
    let url = gw.url();
    let (flushed, sources) = runtime().block_on(async {
        let mut admin = AdminClient::connect(url).await.unwrap();
        let flushed = admin.flush(FlushRequest {}).await.unwrap().into_inner();
        let sources = admin
            .list_sources(lakegate_proto::admin::v1::ListSourcesRequest {})
            .await
            .unwrap()
            .into_inner()
            .sources;
        (flushed, sources)
    });
    assert_eq!(flushed.events, acked.values().sum::<u64>());
    for s in &sources {
        let c = s.counters.as_ref().unwrap();
        let want: u64 = acked
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("{}-", s.name)))
            .map(|(_, v)| v)
            .sum();
        assert_eq!(
            (c.events_acknowledged, c.events_written),
            (want, want),
            "{}",
            s.name
        );
        assert!(
            c.files_written > 0 && c.last_write_ms > 0 && c.received_bytes > 0,
            "{c:?}"
        );
    }
    assert!(gw.stop(), "SIGTERM: flush and exit 0");
    let wal_left = std::fs::read_dir(lake.join("wal")).unwrap().count();
    assert_eq!(
        wal_left, 0,
        "a clean shutdown leaves an empty write-ahead log"
    );

    let read = read_lake(&lake);
    assert!(
        read["other_files"].as_array().unwrap().is_empty(),
        "{}",
        read["other_files"]
    );
    assert_eq!(
        rows_per_source(&read),
        acked,
        "rows in the lake = events acknowledged"
    );
    for f in read["files"].as_array().unwrap() {
        let path = f["path"].as_str().unwrap();
        let source = f["source"].as_str().unwrap();
        let class: u64 = source.rsplit('-').next().unwrap().parse().unwrap();
        assert_eq!(
            f["classes"],
            serde_json::json!([class]),
            "one class per file: {path}"
        );
        assert_eq!(f["sorted"], true, "sorted by time: {path}");
        assert_eq!(
            f["in_day"], true,
            "eventDay is each record's UTC day: {path}"
        );
        assert_eq!(f["codecs"], serde_json::json!(["ZSTD"]), "{path}");
        assert_eq!(f["bare_repeated"], serde_json::json!([]), "{path}");
        let (region, account) = match source {
            s if s.starts_with("aws-cloudtrail") => ("eu-west-1", "123456789012"),
            s if s.starts_with("okta") => ("us-east-1", "external_acme"),
            _ => ("us-east-1", "external"),
        };
        assert_eq!(
            (
                f["region"].as_str().unwrap(),
                f["account"].as_str().unwrap()
            ),
            (region, account),
            "{path}"
        );
        let types = f["types"].as_object().unwrap();
        let ty = |col: &str| {
            (
                types[col]["physical"].as_str().unwrap(),
                types[col]["logical"].as_str().unwrap(),
            )
        };
        assert_eq!(ty("time").0, "INT64", "{path}");
        assert_eq!(ty("type_uid").0, "INT64", "{path}");
        for col in ["class_uid", "category_uid", "activity_id", "severity_id"] {
            assert_eq!(ty(col).0, "INT32", "{col} in {path}");
        }
        let mut dt = 0;
        for (col, t) in types {
            if col.ends_with("_dt") {
                dt += 1;
                assert_eq!(t["physical"], "INT64", "{col} in {path}");
                let logical = t["logical"].as_str().unwrap();
                assert!(
                    logical.contains("Timestamp")
                        && logical.contains("isAdjustedToUTC=true")
                        && logical.contains("milliseconds"),
                    "{col} in {path}: {logical}"
                );
            }
            if col.ends_with("_id") && !col.ends_with("uid") {
                assert_eq!(t["physical"], "INT32", "enum {col} in {path}");
            }
        }
        if source.starts_with("aws-vpc-flow") {
            assert!(dt >= 3, "time_dt, start_time_dt, end_time_dt in {path}");
        }
        if let Some(unmapped) = f["unmapped"].as_str() {
            assert!(
                unmapped.starts_with("map<string, string"),
                "{path}: {unmapped}"
            );
        }
    }

    // The catalog lists every committed partition of a table, with its columns.
    let table: Value = serde_json::from_slice(
        &std::fs::read(lake.join("catalog/lakegate/ext_aws_vpc_flow_4001.json")).unwrap(),
    )
    .unwrap();
    let partitions: std::collections::BTreeSet<String> = read["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["source"] == "aws-vpc-flow-4001")
        .map(|f| f["day"].as_str().unwrap().to_string())
        .collect();
    let listed: std::collections::BTreeSet<String> = table["Partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["Values"][2].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, partitions);
    let columns = &table["TableInput"]["StorageDescriptor"]["Columns"];
    assert!(
        columns
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["Name"] == "time" && c["Type"] == "bigint"),
        "{columns}"
    );

    // Every rejected record is in the dead-letter area with its raw bytes.
    let o = Command::new(env!("CARGO_BIN_EXE_lakegate"))
        .args(["dead-letters", "list", "--json", "--lake"])
        .arg(&lake)
        .output()
        .unwrap();
    let letters: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(letters.len() as u64, dead);
    for l in &letters {
        assert!(l["raw"].is_string() || l["raw_base64"].is_string(), "{l}");
        assert!(
            !l["reason"].as_str().unwrap().is_empty() && l["plugin_version"].is_string(),
            "{l}"
        );
    }
}

const HOUR_FLUSH: &str = "[flush]\nmax_age = \"1h\"\n";

#[test]
fn late_data_over_many_days_rolls_files_early_instead_of_growing() {
    let lake = lake("late");
    // Nothing is old enough to flush by age; only the open-partition cap can write files.
    let gw = Gateway::start(
        &lake,
        Some("[flush]\nmax_age = \"1h\"\nmax_open_partitions = 4\n"),
    );
    let day0 = 1_700_006_400; // 2023-11-15T00:00:00Z
    let mut text = String::new();
    for i in 0..200u64 {
        let start = day0 + (i % 40) * 86_400 + i;
        text.push_str(&format!(
            "2 123456789012 eni-1 10.0.0.1 10.0.0.2 443 49152 6 10 840 {start} {} ACCEPT OK\n",
            start + 60
        ));
    }
    let file = lake.parent().unwrap().join("late.log");
    std::fs::write(&file, text).unwrap();
    let (ok, s, out) = gw.ingest("aws-vpc-flow", &[file.to_str().unwrap()], &[]);
    assert!(ok && s["events"] == 200, "{out}");
    // Before any age or shutdown flush, the cap rolls the older days into files (the lake
    // thread writes them after the acknowledgement: wait for it, up to a minute).
    let open = |metrics: &str| -> Option<u64> {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("lakegate_open_partitions "))?
            .parse()
            .ok()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut files = 0;
    while std::time::Instant::now() < deadline {
        files = count_parquet(&lake.join("ext"));
        if files >= 36 && open(&gw.metrics()).is_some_and(|n| n <= 4) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(files >= 36, "{files} files: at most 4 partitions stay open");
    assert!(gw.stop());
    let read = read_lake(&lake);
    let days: std::collections::BTreeSet<&str> = read["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["day"].as_str().unwrap())
        .collect();
    assert_eq!(days.len(), 40);
    assert_eq!(read["rows"], 200);
}

/// A partition whose file cannot be written stays buffered (and logged) and is written by a
/// later flush, once the lake can take it: nothing acknowledged is lost or written twice.
#[test]
fn a_partition_that_cannot_be_written_stays_buffered_until_it_can() {
    let lake = lake("blocked");
    let gw = Gateway::start(&lake, Some(HOUR_FLUSH));
    let (ok, summary, out) = gw.ingest(
        "aws-vpc-flow",
        &[&golden("aws-vpc-flow", "default-v2.input.log")],
        &[],
    );
    assert!(ok, "{out}");
    let events = summary["events"].as_u64().unwrap();
    // A file where the table's directory would go: no file can be written under it, even by
    // root.
    let blocker = lake.join("ext/aws-vpc-flow-4001");
    std::fs::create_dir_all(blocker.parent().unwrap()).unwrap();
    std::fs::write(&blocker, b"in the way").unwrap();
    let blocked = gw.flush();
    assert_eq!((blocked.files, blocked.events), (0, 0));
    let log = std::fs::read_to_string(lake.with_extension("log")).unwrap();
    assert!(log.contains("cannot write partition"), "{log}");
    std::fs::remove_file(&blocker).unwrap();
    let written = gw.flush();
    assert_eq!(written.events, events, "written by the next flush, whole");
    assert!(gw.stop());
    assert_eq!(
        rows_per_source(&read_lake(&lake))["aws-vpc-flow-4001"],
        events,
        "once"
    );
}

fn count_parquet(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                count_parquet(&p)
            } else {
                usize::from(p.extension().is_some_and(|x| x == "parquet"))
            }
        })
        .sum()
}

#[test]
fn oversized_messages_and_cancelled_calls_leave_the_gateway_serving() {
    let lake = lake("large");
    let gw = Gateway::start(&lake, Some("max_message_bytes = \"1MiB\"\n"));
    let url = gw.url();
    let status = runtime().block_on(async {
        let mut client = IngestClient::connect(url).await.unwrap();
        client
            .send(IngestRequest {
                source: "aws-vpc-flow".into(),
                records: vec![Record {
                    data: vec![b'x'; 2 << 20].into(),
                    metadata: Default::default(),
                }],
                framing: String::new(),
            })
            .await
            .unwrap_err()
    });
    assert_eq!(status.code(), tonic::Code::OutOfRange, "{status:?}");
    // A client that goes away mid-stream: its call ends, nothing else does.
    let url = gw.url();
    runtime().block_on(async {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let call = tokio::spawn(async move {
            let mut client = IngestClient::connect(url).await.unwrap();
            client
                .stream(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await
        });
        tx.send(IngestRequest {
            source: "aws-vpc-flow".into(),
            records: vec![Record {
                data: std::fs::read(golden("aws-vpc-flow", "default-v2.input.log"))
                    .unwrap()
                    .into(),
                metadata: Default::default(),
            }],
            framing: String::new(),
        })
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        call.abort();
        assert!(call.await.is_err(), "the call was cancelled");
    });
    let (ok, s, out) = gw.ingest(
        "aws-vpc-flow",
        &[&golden("aws-vpc-flow", "default-v2.input.log")],
        &[],
    );
    assert!(ok && s["events"] == 9, "{out}");
    assert!(gw.stop());
}

/// HTTP/2 flow control as the gateway announces it: a stream may have 2 MiB in flight (two of
/// `lakegate ingest`'s messages) and a connection 8 MiB, not HTTP/2's default of 64 KiB, with
/// which a client waited for a window update every 64 KiB; frames may be 1 MiB, not 16 KiB.
#[test]
fn a_client_may_send_ahead_of_the_message_being_translated() {
    use std::io::{Read, Write};
    let lake = lake("flow-control");
    let gw = Gateway::start(&lake, None);
    let mut tcp = std::net::TcpStream::connect(&gw.addr).expect("connects");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The client's preface and an empty SETTINGS frame.
    tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .unwrap();
    let (mut settings, mut connection_update) = (None, None);
    while settings.is_none() || connection_update.is_none() {
        let mut head = [0u8; 9];
        tcp.read_exact(&mut head).expect("the server's frames");
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let (kind, flags) = (head[3], head[4]);
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        tcp.read_exact(&mut payload).unwrap();
        match kind {
            // SETTINGS, not its acknowledgement: six bytes per parameter.
            0x4 if flags & 1 == 0 => {
                let value = |id: u8| {
                    payload
                        .chunks(6)
                        .find(|p| p[..2] == [0, id])
                        .map(|p| u32::from_be_bytes([p[2], p[3], p[4], p[5]]))
                };
                // SETTINGS_INITIAL_WINDOW_SIZE and SETTINGS_MAX_FRAME_SIZE.
                settings = Some((value(0x4), value(0x5)));
            }
            // WINDOW_UPDATE of the connection.
            0x8 if stream == 0 => {
                connection_update = Some(u32::from_be_bytes([
                    payload[0], payload[1], payload[2], payload[3],
                ]));
            }
            _ => {}
        }
    }
    assert_eq!(settings, Some((Some(2 << 20), Some(1 << 20))));
    // The connection starts at 65,535 bytes and is raised by the update.
    assert_eq!(connection_update.map(|u| u + 65_535), Some(8 << 20));
    drop(tcp);
    assert!(gw.stop());
}

/// A write-ahead log left by a gateway that logged events as JSON (before rows): its events
/// are checked again, held as rows and written; the ones the lake cannot take are dead letters.
#[test]
fn events_a_log_kept_as_json_are_recovered_into_the_lake() {
    use lakegate::wal::{Logged, Wal, WalEvent};
    let lake = lake("json-log");
    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(golden("aws-vpc-flow", "default-v2.ocsf.json")).unwrap(),
    )
    .unwrap();
    let records = golden["records"].as_array().unwrap();
    let event = |ocsf: &Value, class_uid: u32| WalEvent {
        class_uid,
        time: ocsf["time"].as_i64().unwrap(),
        region: "us-east-1".into(),
        account: "123456789010".into(),
        record: Logged::Json(ocsf.to_string()),
    };
    let mut events: Vec<WalEvent> = records.iter().map(|r| event(&r["ocsf"], 4001)).collect();
    // A class the source has no table for, and a record that no longer passes.
    events.push(event(&records[0]["ocsf"], 2004));
    let mut broken = records[1]["ocsf"].clone();
    broken["activity_id"] = 77.into();
    events.push(event(&broken, 4001));
    let (mut wal, _) = Wal::open(&lake.join("wal"), 64 << 20, true, &lake, |_, _, _| {}).unwrap();
    wal.append_data("aws-vpc-flow", &events, &[]).unwrap();
    wal.sync().unwrap();
    drop(wal);

    let gw = Gateway::start(&lake, Some(HOUR_FLUSH));
    assert!(gw.stop());
    let rows = rows_per_source(&read_lake(&lake));
    assert_eq!(rows["aws-vpc-flow-4001"], records.len() as u64);
    let letters = dead_letters(&lake, "aws-vpc-flow");
    let reasons: Vec<&str> = letters
        .iter()
        .map(|l| l["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("no longer has a table for class 2004")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("no longer accepts it")),
        "{reasons:?}"
    );
}

#[test]
fn acknowledged_records_survive_kill_9_and_are_written_once() {
    let lake = lake("crash");
    let gw = Gateway::start(&lake, Some(HOUR_FLUSH));
    // Committed to Parquet before the crash: must not be written again from the log.
    let (ok, first, out) = gw.ingest(
        "aws-cloudtrail",
        &[&golden("aws-cloudtrail", "aws-reference.input.jsonl")],
        &[],
    );
    assert!(ok, "{out}");
    let url = gw.url();
    let flushed = gw.flush();
    assert!(flushed.files >= 1 && flushed.events == first["events"].as_u64().unwrap());
    // Acknowledged, only in the write-ahead log when the gateway dies.
    let (ok, second, out) = gw.ingest(
        "okta-system-log",
        &[&golden("okta-system-log", "panther-scenarios.input.jsonl")],
        &[],
    );
    assert!(ok, "{out}");
    // A stream still open (never acknowledged) when the gateway dies.
    let vpc = std::fs::read(golden("aws-vpc-flow", "default-v2.input.log")).unwrap();
    let rt = runtime();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let call = rt.spawn({
        let url = url.clone();
        async move {
            let mut client = IngestClient::connect(url).await.unwrap();
            client
                .stream(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await
        }
    });
    rt.block_on(async {
        tx.send(IngestRequest {
            source: "aws-vpc-flow".into(),
            records: vec![Record {
                data: vpc.into(),
                metadata: Default::default(),
            }],
            framing: String::new(),
        })
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
    });
    gw.kill_9();
    let unacknowledged = rt.block_on(call).unwrap();
    assert!(
        unacknowledged.is_err(),
        "the open stream was never acknowledged"
    );

    let gw = Gateway::start(&lake, Some(HOUR_FLUSH));
    assert!(gw.stop());
    let rows = rows_per_source(&read_lake(&lake));
    assert_eq!(
        rows["aws-cloudtrail-6003"]
            + rows.get("aws-cloudtrail-3002").copied().unwrap_or(0)
            + rows.get("aws-cloudtrail-3001").copied().unwrap_or(0),
        first["events"].as_u64().unwrap(),
        "committed before the crash: exactly once"
    );
    let okta: u64 = rows
        .iter()
        .filter(|(k, _)| k.starts_with("okta"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(
        okta,
        second["events"].as_u64().unwrap(),
        "acknowledged, recovered from the log"
    );
    let vpc_rows = rows.get("aws-vpc-flow-4001").copied().unwrap_or(0);
    let golden_doc: Value = serde_json::from_slice(
        &std::fs::read(golden("aws-vpc-flow", "default-v2.ocsf.json")).unwrap(),
    )
    .unwrap();
    let whole = golden_doc["records"].as_array().unwrap().len() as u64;
    assert!(
        vpc_rows == 0 || vpc_rows == whole,
        "the unacknowledged stream's one message is all ({whole}) or nothing: {vpc_rows}"
    );
    let log = std::fs::read_to_string(lake.with_extension("log")).unwrap();
    assert!(log.contains("recovered the write-ahead log"), "{log}");
}

#[test]
fn bad_input_is_dead_lettered_and_the_gateway_keeps_serving() {
    let lake = lake("bad");
    let misbehaving = plugin("misbehaving");
    let config = format!(
        "[sources.ct]\nplugin = \"aws-cloudtrail\"\n[sources.vpc]\nplugin = \"aws-vpc-flow\"\n\
         [sources.broken]\nplugin = \"{}\"\n[sources.fixme]\nplugin = \"aws-vpc-flow\"\n\
         [sources.custom]\nplugin = \"aws-vpc-flow\"\n",
        misbehaving.display()
    );
    let gw = Gateway::start(&lake, Some(&config));
    let dir = lake.parent().unwrap();

    // Malformed framing: not a CloudTrail `{"Records": [...]}` document.
    let (ok, s, out) = gw.ingest(
        "ct",
        &[&golden("aws-cloudtrail", "wrong-framing.input.json")],
        &[],
    );
    assert!(
        ok,
        "rejected records are acknowledged (dead-lettered): {out}"
    );
    assert_eq!(s["dead_lettered"], 1, "{out}");
    assert_eq!(
        s["per_file"][0]["rejections"][0]["stage"], "framing",
        "{out}"
    );

    // Invalid UTF-8 and an oversized line among good ones.
    let good = std::fs::read_to_string(golden("aws-vpc-flow", "default-v2.input.log")).unwrap();
    let mut mixed = good
        .lines()
        .take(3)
        .collect::<Vec<_>>()
        .join("\n")
        .into_bytes();
    mixed.extend_from_slice(
        b"\n2 123456789012 eni-1 10.0.0.1 10.0.0.2 \xff\xfe 80 6 1 1 1 2 ACCEPT OK\n",
    );
    mixed.extend_from_slice(&vec![b'x'; 1_500_000]);
    mixed.extend_from_slice(b"\n");
    std::fs::write(dir.join("mixed.log"), &mixed).unwrap();
    let (ok, s, out) = gw.ingest("vpc", &[dir.join("mixed.log").to_str().unwrap()], &[]);
    assert!(ok, "{out}");
    let rejections = s["per_file"][0]["rejections"].as_array().unwrap();
    let reasons: Vec<&str> = rejections
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("not valid UTF-8")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("exceeds the 1048576-byte limit")),
        "{reasons:?}"
    );
    assert_eq!(s["dead_lettered"], 2, "{out}");

    // Unknown source: a clear error, nothing acknowledged.
    let (ok, _, out) = gw.ingest(
        "nope",
        &[&golden("aws-vpc-flow", "default-v2.input.log")],
        &[],
    );
    assert!(!ok && out.contains("no source `nope`"), "{out}");
    let url = gw.url();
    let status = runtime().block_on(async {
        let mut client = IngestClient::connect(url.clone()).await.unwrap();
        client
            .send(IngestRequest {
                source: "nope".into(),
                records: vec![],
                framing: String::new(),
            })
            .await
            .unwrap_err()
    });
    assert_eq!(status.code(), tonic::Code::NotFound);
    assert!(
        status
            .message()
            .contains("unknown source `nope`; configured sources: broken, ct, custom, fixme, vpc"),
        "{status:?}"
    );

    // One message of one 3 MiB record is translated and logged in slices of about 512 KiB; every
    // line keeps its number in the record, and the counts add up across the slices.
    let line = good.lines().nth(1).unwrap();
    let lines = (3 << 20) / (line.len() + 1);
    let mut big = format!("{line}\n").repeat(lines);
    big.push_str("2 123456789012 eni-1 10.0.0.1 10.0.0.2 not-a-port 80 6 1 1 1 2 ACCEPT OK\n");
    let response = send_one(&url, "vpc", "", big.into_bytes());
    assert_eq!(counts(&response), (1, lines as u64 + 1, lines as u64, 1));
    assert_eq!(response.rejections[0].line, lines as u64 + 1);
    assert!(
        response.rejections[0].reason.contains("not-a-port"),
        "{response:?}"
    );

    // Slices translate two at a time, the next one from the state the current one starts with.
    // Here the first slice's header line changes that state: the second slice, translated
    // meanwhile without the header, must be translated again with it (and the third is not
    // guessed: it follows a slice that changed the state). Under the default format's 14
    // fields, every one of these 7-field lines would be rejected.
    let fields = [
        "srcaddr", "dstaddr", "srcport", "dstport", "start", "end", "action",
    ];
    let values = [
        "10.0.0.1",
        "10.0.0.2",
        "443",
        "51000",
        "1700000000",
        "1700000060",
        "ACCEPT",
    ];
    let (header, custom) = (fields.join(" "), values.join(" "));
    let lines = (3 << 19) / (custom.len() + 1);
    let big = format!("{header}\n{}", format!("{custom}\n").repeat(lines));
    let response = send_one(&url, "vpc", "", big.into_bytes());
    assert_eq!(
        counts(&response),
        (1, lines as u64 + 1, lines as u64, 0),
        "{:?}",
        response.rejections.first()
    );

    // Across messages too: a stream's first message is only a header line, and the next
    // message's slice, guessed before the header took effect, is translated again after it.
    let response = runtime().block_on(async {
        let mut client = IngestClient::connect(url.clone()).await.unwrap();
        let messages =
            [format!("{header}\n"), format!("{custom}\n").repeat(100)].map(|data| IngestRequest {
                source: "vpc".into(),
                records: vec![Record {
                    data: data.into_bytes().into(),
                    metadata: Default::default(),
                }],
                framing: String::new(),
            });
        let stream = tokio_stream::iter(messages);
        client.stream(stream).await.unwrap().into_inner()
    });
    assert_eq!(
        counts(&response),
        (2, 101, 100, 0),
        "{:?}",
        response.rejections.first()
    );

    // A stream whose state changes in every slice (a header with its own field order every
    // ~64 KiB) gets one guess, the first, wrong and translated again; after a slice that changed
    // the state the next one is not guessed, so nothing is translated twice over.
    let retranslated = |gw: &Gateway| -> u64 {
        let metrics = gw.metrics();
        let line = metrics
            .lines()
            .find(|l| l.starts_with("lakegate_slices_retranslated_total{source=\"vpc\"}"))
            .unwrap_or_else(|| panic!("{metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let before = retranslated(&gw);
    let (mut big, mut lines) = (String::new(), 0u64);
    for k in 0..24 {
        // The k-th of the 5,040 orders of the seven fields (its Lehmer code).
        let (mut pool, mut order, mut rest) = ((0..7).collect::<Vec<_>>(), Vec::new(), k * 199);
        for n in (1..=7).rev() {
            let block = (1..n).product::<usize>();
            order.push(pool.remove(rest / block));
            rest %= block;
        }
        let header: Vec<_> = order.iter().map(|&i| fields[i]).collect();
        let line: Vec<_> = order.iter().map(|&i| values[i]).collect();
        big.push_str(&header.join(" "));
        big.push('\n');
        let n = (64 << 10) / (line.join(" ").len() + 1);
        big.push_str(&format!("{}\n", line.join(" ")).repeat(n));
        lines += n as u64 + 1;
    }
    let response = send_one(&url, "vpc", "", big.into_bytes());
    assert_eq!(
        counts(&response),
        (1, lines, lines - 24, 0),
        "{:?}",
        response.rejections.first()
    );
    assert_eq!(retranslated(&gw) - before, 1);

    // The same for a 3 MiB `json-records` document: cut between its records, which keep their
    // numbers in the document.
    let ct_lines =
        std::fs::read_to_string(golden("aws-cloudtrail", "aws-reference.input.jsonl")).unwrap();
    let ct_records: Vec<&str> = ct_lines.lines().collect();
    let copies = (3 << 20) / ct_lines.len() + 1;
    let mut document = String::from("{\"Records\": [");
    for record in std::iter::repeat_n(&ct_records, copies).flatten() {
        document.push_str(record);
        document.push(',');
    }
    document.push_str("\"not a record\"]}");
    let total = (copies * ct_records.len()) as u64;
    let response = send_one(&url, "ct", "json-records", document.into_bytes());
    assert_eq!(counts(&response), (1, total + 1, total, 1));
    assert_eq!(response.rejections[0].line, total + 1, "{response:?}");

    // A plugin that rejects everything, then one that traps.
    std::fs::write(dir.join("reject.log"), "reject\nreject\nreject\n").unwrap();
    let (ok, s, out) = gw.ingest("broken", &[dir.join("reject.log").to_str().unwrap()], &[]);
    assert!(ok && s["dead_lettered"] == 3 && s["accepted"] == 0, "{out}");
    std::fs::write(dir.join("trap.log"), "trap\n").unwrap();
    let (ok, s, out) = gw.ingest("broken", &[dir.join("trap.log").to_str().unwrap()], &[]);
    assert!(
        ok && s["per_file"][0]["rejections"][0]["stage"] == "plugin",
        "{out}"
    );
    // ... and the gateway keeps serving, that source included.
    std::fs::write(dir.join("fine.log"), "alice\n").unwrap();
    let (ok, s, out) = gw.ingest("broken", &[dir.join("fine.log").to_str().unwrap()], &[]);
    assert!(ok && s["accepted"] == 1, "{out}");

    // Records sent to the wrong plugin are dead-lettered, then replayed through the right one.
    let ct = golden("aws-cloudtrail", "aws-reference.input.jsonl");
    let (ok, s, out) = gw.ingest("fixme", &[&ct], &["--framing", "text-lines"]);
    assert!(
        ok && s["accepted"] == 0 && s["dead_lettered"] == 21,
        "{out}"
    );
    assert!(gw.stop());
    let fixed = config.replace(
        "[sources.fixme]\nplugin = \"aws-vpc-flow\"",
        "[sources.fixme]\nplugin = \"aws-cloudtrail\"",
    );
    let gw = Gateway::start(&lake, Some(&fixed));
    let replayed = gw.replay(&lake, "fixme");
    assert!(
        replayed.contains("replayed 21 dead letters: 21 accepted, 0 rejected again"),
        "{replayed}"
    );
    assert!(
        dead_letters(&lake, "fixme").is_empty(),
        "replayed letters are not listed again"
    );

    // A rejected line of a custom-format VPC file keeps the header it was read with as context,
    // and is read with that header again when it is replayed.
    let header = "version srcaddr dstaddr srcport dstport protocol start end action log-status";
    let custom = dir.join("custom.log");
    std::fs::write(
        &custom,
        format!(
            "{header}\n5 10.0.0.9 52.94.133.131 43001 443 6 1566849000 1566849060 ACCEPT OK\n\
             5 10.0.0.8 52.94.133.131 43x00 443 6 1566849000 1566849060 ACCEPT OK\n"
        ),
    )
    .unwrap();
    let (ok, s, out) = gw.ingest("custom", &[custom.to_str().unwrap()], &[]);
    assert!(ok && s["accepted"] == 1 && s["dead_lettered"] == 1, "{out}");
    let before = dead_letters(&lake, "custom");
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0]["context"], serde_json::json!([header]));
    let replayed = gw.replay(&lake, "custom");
    assert!(
        replayed.contains("replayed 1 dead letters: 0 accepted, 1 rejected again"),
        "{replayed}"
    );
    let after = dead_letters(&lake, "custom");
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(after[0]["id"], before[0]["id"]);
    assert!(
        after[0]["reason"] == before[0]["reason"]
            && before[0]["reason"]
                .as_str()
                .unwrap()
                .contains("`43x00` is not a number"),
        "read with the header's fields again: {after:?}"
    );
    assert!(gw.stop());
    let rows = rows_per_source(&read_lake(&lake));
    let fixme: u64 = rows
        .iter()
        .filter(|(k, _)| k.starts_with("fixme-"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(fixme, 21, "{rows:?}");
    assert_eq!(rows.get("broken-6003"), Some(&1));
}
