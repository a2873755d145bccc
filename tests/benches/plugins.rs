//! Benchmark: each source plugin's translation through the WebAssembly host against the same
//! Rust code compiled natively, on the same batches. Prints records/s, MB/s and the WASM/native
//! time ratio. Run with `cargo xtask bench` (it builds the components first).

use std::time::{Duration, Instant};

use lakegate::host::Limits;
use lakegate_plugin_sdk::host::framing;
use lakegate_plugin_sdk::host::runner::{RunOptions, Runner, Translator};
use lakegate_plugin_sdk::{translate_batch, BatchContext, Framing, Source};
use lakegate_tests::{host, plugin_path, root};

const BATCH: usize = 1024;
const TARGET_RECORDS: usize = 200_000;
const ROUNDS: usize = 3;

/// Framed records from golden inputs, repeated to about `TARGET_RECORDS`.
fn workload(plugin: &str, files: &[&str], framing: Framing) -> Vec<Vec<u8>> {
    let mut unique = Vec::new();
    for file in files {
        let bytes = std::fs::read(
            root()
                .join("plugins/sources")
                .join(plugin)
                .join("golden")
                .join(file),
        )
        .expect("golden input");
        for f in framing::split(&bytes, framing, usize::MAX) {
            if let Ok(record) = f.record {
                unique.push(record.to_vec());
            }
        }
    }
    unique
        .iter()
        .cycle()
        .take(TARGET_RECORDS)
        .cloned()
        .collect()
}

/// The workload packed into WIT-style batches.
fn batches(records: &[Vec<u8>]) -> Vec<(Vec<u8>, Vec<u32>)> {
    records
        .chunks(BATCH)
        .map(|chunk| {
            let mut data = Vec::new();
            let mut ends = Vec::new();
            for r in chunk {
                data.extend_from_slice(r);
                ends.push(data.len() as u32);
            }
            (data, ends)
        })
        .collect()
}

fn best_of(mut f: impl FnMut() -> usize) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut out = 0;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        out = f();
        best = best.min(started.elapsed());
    }
    (best, out)
}

struct Row {
    plugin: &'static str,
    records: usize,
    bytes: usize,
    native: Duration,
    wasm: Duration,
    pipeline: Duration,
}

fn bench<P: Source>(plugin: &'static str, files: &[&str], framing: Framing) -> Row {
    let records = workload(plugin, files, framing);
    let bytes: usize = records.iter().map(Vec::len).sum();
    let batches = batches(&records);
    let context = BatchContext {
        received_ms: 0,
        source: "bench".into(),
        framing,
        carry: None,
    };
    let (native, native_events) = best_of(|| {
        batches
            .iter()
            .map(|(d, e)| translate_batch::<P>(&context, d, e).origins.len())
            .sum()
    });
    let mut component = host(Limits::default())
        .load(&plugin_path(plugin))
        .expect("plugin loads");
    let (wasm, wasm_events) = best_of(|| {
        batches
            .iter()
            .map(|(d, e)| {
                component
                    .translate(&context, d, e)
                    .expect("translates")
                    .origins
                    .len()
            })
            .sum()
    });
    assert_eq!(
        native_events, wasm_events,
        "{plugin}: native and WASM translations differ"
    );
    // The whole path a record takes in `lakegate plugin test`: framing, WASM, OCSF validation.
    let input: Vec<u8> = records
        .iter()
        .flat_map(|r| r.iter().copied().chain(std::iter::once(b'\n')))
        .collect();
    let line_framing = if framing == Framing::JsonRecords {
        Framing::JsonLines
    } else {
        framing
    };
    let mut runner = Runner::new(
        host(Limits::default())
            .load(&plugin_path(plugin))
            .expect("plugin loads"),
    )
    .expect("manifest");
    let options = RunOptions {
        framing: Some(line_framing),
        batch_records: BATCH,
        ..RunOptions::default()
    };
    let (pipeline, _) = best_of(|| runner.run(&input, &options).expect("runs").accepted.len());
    Row {
        plugin,
        records: records.len(),
        bytes,
        native,
        wasm,
        pipeline,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rows = [
        bench::<lakegate_aws_cloudtrail::CloudTrail>(
            "aws-cloudtrail",
            &[
                "aws-reference.input.jsonl",
                "panther-rule-tests.input.jsonl",
            ],
            Framing::JsonLines,
        ),
        bench::<lakegate_aws_vpc_flow::VpcFlow>(
            "aws-vpc-flow",
            &["default-v2.input.log"],
            Framing::TextLines,
        ),
        bench::<lakegate_okta_system_log::OktaSystemLog>(
            "okta-system-log",
            &["panther-scenarios.input.jsonl"],
            Framing::JsonLines,
        ),
    ];
    println!(
        "\n{} records per plugin in batches of {BATCH}, best of {ROUNDS} rounds, one core\n",
        TARGET_RECORDS
    );
    println!("| plugin | native rec/s | native MB/s | WASM rec/s | WASM MB/s | WASM / native time | framing+WASM+validation rec/s |");
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        let rate = |d: Duration| r.records as f64 / d.as_secs_f64();
        let mb = |d: Duration| r.bytes as f64 / 1e6 / d.as_secs_f64();
        println!(
            "| {} | {:.0} | {:.1} | {:.0} | {:.1} | {:.2}x | {:.0} |",
            r.plugin,
            rate(r.native),
            mb(r.native),
            rate(r.wasm),
            mb(r.wasm),
            r.wasm.as_secs_f64() / r.native.as_secs_f64(),
            rate(r.pipeline)
        );
    }
}
