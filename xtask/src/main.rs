//! `cargo xtask`: lakegate's build orchestration.
//!
//! - `cargo xtask codegen [--check]` regenerates the OCSF builders of the plugin SDK.
//! - `cargo xtask plugins` builds every plugin into a WebAssembly component in `target/plugins/`.
//! - `cargo xtask demo` builds everything and runs each first-party plugin over its bundled samples.
//! - `cargo xtask test` builds the plugins and runs every test of the workspace.
//! - `cargo xtask bench` runs the plugin benchmark (WASM against native) and prints its table.

mod codegen;
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
        Some("bench") => bench(&root),
        _ => {
            eprintln!(
                "usage: cargo xtask <codegen [--check] | plugins | demo | test [ARGS] | bench>"
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

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn demo(root: &Path) -> Result<()> {
    let built = plugins::build_all(root)?;
    run(cargo()
        .current_dir(root)
        .args(["build", "--release", "-p", "lakegate"]))?;
    let lakegate = root.join("target/release/lakegate");
    let samples = [
        (
            "aws-cloudtrail",
            "plugins/sources/aws-cloudtrail/golden/s3-object-records.input.json",
        ),
        (
            "aws-cloudtrail",
            "plugins/sources/aws-cloudtrail/golden/aws-reference.input.jsonl",
        ),
        (
            "aws-cloudtrail",
            "plugins/sources/aws-cloudtrail/golden/edge-cases.input.jsonl",
        ),
        (
            "aws-vpc-flow",
            "plugins/sources/aws-vpc-flow/golden/default-v2.input.log",
        ),
        (
            "aws-vpc-flow",
            "plugins/sources/aws-vpc-flow/golden/aws-reference-v5.input.log",
        ),
        (
            "aws-vpc-flow",
            "plugins/sources/aws-vpc-flow/golden/custom-v3-header.input.log",
        ),
        (
            "okta-system-log",
            "plugins/sources/okta-system-log/golden/panther-scenarios.input.jsonl",
        ),
        (
            "okta-system-log",
            "plugins/sources/okta-system-log/golden/edge-cases.input.jsonl",
        ),
    ];
    for (plugin, input) in samples {
        let wasm = built
            .iter()
            .find(|p| p.file_stem().is_some_and(|s| s == plugin))
            .context("plugin not built")?;
        println!("\n== {plugin}: {input}");
        run(Command::new(&lakegate)
            .current_dir(root)
            .args(["plugin", "test"])
            .arg(wasm)
            .args(["--input", input]))?;
    }
    println!("\nEvery plugin is in target/plugins/; try `target/release/lakegate plugin inspect target/plugins/aws-cloudtrail.wasm`");
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

fn bench(root: &Path) -> Result<()> {
    plugins::build_all(root)?;
    run(cargo()
        .current_dir(root)
        .args(["bench", "-p", "lakegate-tests", "--bench", "plugins"]))
}
