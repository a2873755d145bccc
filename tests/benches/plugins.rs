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
const ROUNDS: usize = 5;

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

/// The workload packed into WIT-style batches of `per_call` records.
fn batches_of(records: &[Vec<u8>], per_call: usize) -> Vec<(Vec<u8>, Vec<u32>)> {
    records
        .chunks(per_call)
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

fn best_of(rounds: usize, mut f: impl FnMut() -> usize) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut out = 0;
    for _ in 0..rounds {
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
    let batches = batches_of(&records, BATCH);
    let context = BatchContext {
        received_ms: 0,
        source: "bench".into(),
        framing,
        carry: None,
    };
    let mut component = host(Limits::default())
        .load(&plugin_path(plugin))
        .expect("plugin loads");
    let mut native_side = || {
        batches
            .iter()
            .map(|(d, e)| translate_batch::<P>(&context, d, e).origins.len())
            .sum()
    };
    let mut wasm_side = || translate_all(&mut component, &context, &batches);
    // Native and WASM rounds alternate, so that a noisy neighbour hits both alike.
    let (mut native, mut wasm) = (Duration::MAX, Duration::MAX);
    let (mut native_events, mut wasm_events) = (0, 0);
    for _ in 0..ROUNDS {
        let (n, events) = best_of(1, &mut native_side);
        (native, native_events) = (native.min(n), events);
        let (w, events) = best_of(1, &mut wasm_side);
        (wasm, wasm_events) = (wasm.min(w), events);
    }
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
    let (pipeline, _) = best_of(ROUNDS, || {
        runner.run(&input, &options).expect("runs").accepted.len()
    });
    Row {
        plugin,
        records: records.len(),
        bytes,
        native,
        wasm,
        pipeline,
    }
}

/// What crossing into a component costs by itself: records that the plugin consumes without
/// output, sent one per call and 1,024 per call.
fn boundary() {
    let mut component = host(Limits::default())
        .load(&lakegate_tests::test_plugin_path("misbehaving"))
        .expect("plugin loads");
    let context = BatchContext {
        received_ms: 0,
        source: "bench".into(),
        framing: Framing::TextLines,
        carry: None,
    };
    let records = vec![b"skip".to_vec(); TARGET_RECORDS];
    println!("\n| records per call | ns per call | ns per record |");
    println!("|---|---|---|");
    for per_call in [1, 16, BATCH] {
        let batches: Vec<_> = batches_of(&records, per_call);
        let (elapsed, _) = best_of(ROUNDS, || translate_all(&mut component, &context, &batches));
        let calls = batches.len() as f64;
        println!(
            "| {per_call} | {:.0} | {:.0} |",
            elapsed.as_nanos() as f64 / calls,
            elapsed.as_nanos() as f64 / records.len() as f64
        );
    }
}

/// Events out of every batch through the component.
fn translate_all(
    component: &mut lakegate::host::Plugin,
    context: &BatchContext,
    batches: &[(Vec<u8>, Vec<u32>)],
) -> usize {
    batches
        .iter()
        .map(|(d, e)| {
            component
                .translate(context, d, e)
                .expect("translates")
                .origins
                .len()
        })
        .sum()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    boundary();
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
