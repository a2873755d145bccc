//! `cargo xtask`: lakegate's build orchestration.
//!
//! - `cargo xtask codegen [--check]` regenerates the OCSF builders of the plugin SDK.
//! - `cargo xtask plugins` builds every plugin into a WebAssembly component in `target/plugins/`.
//! - `cargo xtask demo` builds everything, starts `lakegate serve` on the embedded default, streams
//!   the bundled samples to it over gRPC and prints what landed in the lake.
//! - `cargo xtask test` builds the plugins and runs every test of the workspace.
//! - `cargo xtask bench` runs the plugin benchmark (WASM against native) and prints its table.

mod codegen;
mod gateway_bench;
mod plugins;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    match args.first().map(String::as_str) {
        Some("codegen") => codegen_command(&root, args.iter().any(|a| a == "--check")),
        Some("plugins") => plugins::build_all(&root).map(drop),
        Some("demo") => demo(&root),
        Some("test") => test(&root, &args[1..]),
        Some("bench") => bench(&root, args.get(1).map(String::as_str)),
        _ => {
            eprintln!(
                "usage: cargo xtask <codegen [--check] | plugins | demo | test [ARGS] | bench [plugins|gateway]>"
            );
            std::process::exit(2);
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn codegen_command(root: &Path, check: bool) -> Result<()> {
    let path = root.join(codegen::OUTPUT);
    let fresh = rustfmt(&codegen::render(root)?)?;
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if check {
        if fresh != current {
            bail!(
                "{} is out of date: run `cargo xtask codegen`",
                codegen::OUTPUT
            );
        }
        println!("{} is up to date", codegen::OUTPUT);
    } else if fresh != current {
        std::fs::write(&path, fresh).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", codegen::OUTPUT);
    }
    Ok(())
}

fn rustfmt(source: &str) -> Result<String> {
    use std::io::Write;
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2021", "--emit", "stdout"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("running rustfmt")?;
    child
        .stdin
        .take()
        .context("rustfmt stdin")?
        .write_all(source.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("rustfmt failed on the generated code");
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// Runs a command and fails with its name when it fails.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

pub(crate) fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// The main job on the embedded default: starts `lakegate serve` (no AWS account: a local lake
/// and catalog in `target/demo/lake`), streams every bundled sample to it over gRPC with
/// `lakegate ingest`, stops it (SIGTERM: it flushes), and prints what landed.
fn demo(root: &Path) -> Result<()> {
    plugins::build_all(root)?;
    run(cargo()
        .current_dir(root)
        .args(["build", "--release", "-p", "lakegate"]))?;
    let lakegate = root.join("target/release/lakegate");
    let work = root.join("target/demo");
    let _ = std::fs::remove_dir_all(work.join("lake"));
    std::fs::create_dir_all(&work)?;
    println!(
        "== lakegate serve (embedded default: lake in {}/lake)",
        work.display()
    );
    let mut server = Command::new(&lakegate)
        .current_dir(&work)
        .arg("serve")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("cannot start lakegate serve")?;
    let mut banner = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.take().context("stdout")?),
        &mut banner,
    )?;
    print!("{banner}");
    if !banner.contains("serving gRPC on") {
        let _ = server.kill();
        anyhow::bail!("lakegate serve did not start (is 127.0.0.1:50051 or :9464 in use?)");
    }
    let golden = |plugin: &str, files: &[&str]| -> Vec<PathBuf> {
        files
            .iter()
            .map(|f| {
                root.join("plugins/sources")
                    .join(plugin)
                    .join("golden")
                    .join(f)
            })
            .collect()
    };
    let sends = [
        (
            "aws-cloudtrail",
            golden(
                "aws-cloudtrail",
                &[
                    "s3-object-records.input.json",
                    "aws-reference.input.jsonl",
                    "edge-cases.input.jsonl",
                ],
            ),
        ),
        (
            "aws-vpc-flow",
            golden(
                "aws-vpc-flow",
                &[
                    "default-v2.input.log",
                    "aws-reference-v5.input.log",
                    "custom-v3-header.input.log",
                    "edge-cases.input.log",
                ],
            ),
        ),
        (
            "okta-system-log",
            golden(
                "okta-system-log",
                &["panther-scenarios.input.jsonl", "edge-cases.input.jsonl"],
            ),
        ),
    ];
    let mut failed = None;
    for (source, files) in sends {
        println!("\n== lakegate ingest --source {source}");
        if let Err(e) = run(Command::new(&lakegate)
            .args(["ingest", "--source", source])
            .args(&files))
        {
            failed = Some(e);
            break;
        }
    }
    run(Command::new("kill").args(["-TERM", &server.id().to_string()]))?;
    let status = server.wait()?;
    if let Some(e) = failed {
        return Err(e);
    }
    anyhow::ensure!(status.success(), "lakegate serve exited with {status}");
    println!("\n== what landed");
    run(Command::new(&lakegate)
        .current_dir(&work)
        .args(["lake", "summary"]))?;
    println!(
        "\nQuery it with any Parquet reader, e.g. DuckDB (pip install duckdb):\n  \
         python3 -c \"import duckdb; print(duckdb.sql(\\\"SELECT region, accountid, eventday, count(*) FROM read_parquet('{}/lake/ext/aws-vpc-flow-4001/*/*/*/*.parquet', hive_partitioning=true) GROUP BY ALL\\\"))\"\n\
         Dead letters: target/release/lakegate dead-letters list --lake {}/lake",
        work.display(),
        work.display()
    );
    Ok(())
}

fn test(root: &Path, extra: &[String]) -> Result<()> {
    plugins::build_all(root)?;
    codegen_command(root, true)?;
    let python = python_env(root)?;
    run(cargo()
        .current_dir(root)
        .env("LAKEGATE_PYTHON", python)
        .args(["test", "--workspace"])
        .args(extra))
}

/// A Python virtual environment in `target/py` with the independent checker's packages.
fn python_env(root: &Path) -> Result<PathBuf> {
    let venv = root.join("target/py");
    let python = venv.join("bin/python");
    let ready = || {
        Command::new(&python)
            .args(["-c", "import jsonschema, ocsf_json_schema, pyarrow"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !ready() {
        eprintln!(
            "setting up {} for the independent OCSF check",
            venv.display()
        );
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))
            .context("python3 with the venv module is needed for the independent OCSF check")?;
        run(Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "-r"])
            .arg(root.join("tests/independent/requirements.txt")))?;
    }
    Ok(python)
}

fn bench(root: &Path, what: Option<&str>) -> Result<()> {
    plugins::build_all(root)?;
    if what != Some("gateway") {
        run(cargo().current_dir(root).args([
            "bench",
            "-p",
            "lakegate-tests",
            "--bench",
            "plugins",
        ]))?;
    }
    if what != Some("plugins") {
        gateway_bench::run_bench(root)?;
    }
    Ok(())
}
