//! `lakegate plugin test` and `lakegate plugin inspect`.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use lakegate_plugin_sdk::host::runner::{Report, RunOptions, Runner, Stage, Translator};
use lakegate_plugin_sdk::host::validate::schema_1_1_0;
use lakegate_plugin_sdk::Framing;
use serde_json::Value;

use crate::host::Host;

#[derive(Debug, Subcommand)]
pub(super) enum PluginCommand {
    /// Translate a file with a plugin and report every record's fate.
    Test {
        /// The plugin component (.wasm).
        plugin: PathBuf,
        /// The raw log file to translate.
        #[arg(long)]
        input: PathBuf,
        /// Write the accepted OCSF records here, one JSON object per line.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Compare the OCSF records with this JSON-lines file; exit 1 on any difference.
        #[arg(long)]
        expect: Option<PathBuf>,
        /// Write every rejected record here as JSON lines, with its raw bytes.
        #[arg(long)]
        dead_letters: Option<PathBuf>,
        /// Input framing; by default guessed from the file extension, else the plugin's default.
        #[arg(long, value_parser = parse_framing)]
        framing: Option<Framing>,
        /// The source name handed to the plugin.
        #[arg(long, default_value = "test")]
        source: String,
    },
    /// Print a plugin's manifest.
    Inspect {
        /// The plugin component (.wasm).
        plugin: PathBuf,
    },
}

pub(super) fn parse_framing(s: &str) -> Result<Framing, String> {
    Framing::from_name(s).ok_or_else(|| {
        format!(
            "unknown framing `{s}`; one of: {}",
            Framing::ALL.map(Framing::name).join(", ")
        )
    })
}

pub(super) fn run(host: &Host, command: PluginCommand) -> anyhow::Result<ExitCode> {
    match command {
        PluginCommand::Inspect { plugin } => inspect(host, &plugin),
        PluginCommand::Test {
            plugin,
            input,
            output,
            expect,
            dead_letters,
            framing,
            source,
        } => test(
            host,
            &plugin,
            &input,
            TestOutputs {
                output,
                expect,
                dead_letters,
            },
            framing,
            source,
        ),
    }
}

fn inspect(host: &Host, path: &Path) -> anyhow::Result<ExitCode> {
    let plugin = host.load(path)?;
    let m = plugin.manifest();
    let info = plugin.info();
    let schema = schema_1_1_0();
    println!("plugin      {} {}", m.name, m.version);
    println!("product     {} {}", m.vendor, m.product);
    println!("about       {}", m.description);
    println!("interface   {} (SDK {})", info.interface, m.sdk_version);
    println!("ocsf        {}", m.ocsf_version);
    println!(
        "framings    {}",
        m.framings
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("component   {} bytes, sha256 {}", info.size, info.sha256);
    for class in &m.classes {
        println!(
            "class       {} {} ({} attribute paths)",
            class.class_uid,
            schema.class_caption(class.class_uid).unwrap_or("?"),
            class.attributes.len()
        );
        for a in &class.attributes {
            println!("              {a}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

struct TestOutputs {
    output: Option<PathBuf>,
    expect: Option<PathBuf>,
    dead_letters: Option<PathBuf>,
}

pub(super) fn guess_framing(path: &Path, accepted: &[Framing]) -> Option<Framing> {
    let guess = match path.extension().and_then(|e| e.to_str()) {
        Some("json") => Framing::JsonRecords,
        Some("jsonl" | "ndjson") => Framing::JsonLines,
        Some("log" | "txt") => Framing::TextLines,
        _ => return None,
    };
    accepted.contains(&guess).then_some(guess)
}

fn test(
    host: &Host,
    plugin_path: &Path,
    input: &Path,
    outputs: TestOutputs,
    framing: Option<Framing>,
    source: String,
) -> anyhow::Result<ExitCode> {
    let plugin = host.load(plugin_path)?;
    let bytes = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    let framing = framing.or_else(|| guess_framing(input, &plugin.manifest().framings));
    let m = plugin.manifest().clone();
    let mut runner = Runner::new(plugin)?;
    let received_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    let options = RunOptions {
        source,
        framing,
        received_ms,
        ..RunOptions::default()
    };
    let report = runner.run(&bytes, &options)?;
    let framing = framing
        .or(m.framings.first().copied())
        .unwrap_or(Framing::JsonLines);
    println!(
        "{} {} for {} ({}), OCSF {}, {} input {} ({} bytes)",
        m.name,
        m.version,
        m.product,
        m.vendor,
        m.ocsf_version,
        framing.name(),
        input.display(),
        bytes.len()
    );
    print_report(&report);
    if let Some(path) = &outputs.output {
        write_lines(path, report.accepted.iter().map(|a| a.json.clone()))?;
        println!(
            "wrote {} OCSF records to {}",
            report.accepted.len(),
            path.display()
        );
    }
    if let Some(path) = &outputs.dead_letters {
        write_lines(
            path,
            report
                .rejected
                .iter()
                .map(|r| dead_letter(&m.name, &m.version, r).to_string()),
        )?;
        println!(
            "wrote {} dead letters to {}",
            report.rejected.len(),
            path.display()
        );
    }
    let mut failed = false;
    let invalid =
        report.rejected_at(Stage::Validation).count() + report.rejected_at(Stage::Plugin).count();
    if invalid > 0 {
        println!("FAIL: {invalid} records failed OCSF validation or the plugin failed");
        failed = true;
    }
    if let Some(path) = &outputs.expect {
        match compare(path, &report)? {
            None => println!("output matches {}", path.display()),
            Some(diff) => {
                println!("FAIL: output differs from {}: {diff}", path.display());
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_report(report: &Report) {
    let schema = schema_1_1_0();
    let translated: BTreeSet<u64> = report.accepted.iter().map(|a| a.record).collect();
    println!(
        "read {}, translated {}, rejected {}, consumed without output {}; {} OCSF records",
        report.read,
        translated.len(),
        report.rejected.len(),
        report.consumed,
        report.accepted.len()
    );
    for (class_uid, n) in report.per_class() {
        println!(
            "  {class_uid} {:<24} {n}",
            schema.class_caption(class_uid).unwrap_or("?")
        );
    }
    for r in &report.rejected {
        let path = r
            .path
            .as_deref()
            .map(|p| format!(" {p}:"))
            .unwrap_or_default();
        println!(
            "  rejected record {} [{}]{path} {}",
            r.record,
            r.stage.name(),
            r.reason
        );
    }
}

fn dead_letter(
    plugin: &str,
    version: &str,
    r: &lakegate_plugin_sdk::host::runner::Rejection,
) -> Value {
    let mut v = serde_json::json!({
        "record": r.record, "stage": r.stage.name(), "reason": r.reason, "path": r.path,
        "plugin": plugin, "plugin_version": version,
    });
    // Raw bytes are kept exactly: as text when they are UTF-8, otherwise as hex.
    match std::str::from_utf8(&r.raw) {
        Ok(text) => v["raw"] = Value::String(text.into()),
        Err(_) => v["raw_hex"] = Value::String(r.raw.iter().map(|b| format!("{b:02x}")).collect()),
    }
    v
}

fn write_lines(path: &Path, lines: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let mut w = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    for line in lines {
        writeln!(w, "{line}")?;
    }
    w.flush()?;
    Ok(())
}

/// The first difference between the expected JSON lines and the accepted records.
fn compare(path: &Path, report: &Report) -> anyhow::Result<Option<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let expected: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{}:{}: not JSON", path.display(), i + 1))
        })
        .collect::<anyhow::Result<_>>()?;
    for (i, (want, got)) in expected.iter().zip(&report.accepted).enumerate() {
        if *want != got.event() {
            return Ok(Some(format!(
                "record {} (input record {}): expected {want}, got {}",
                i + 1,
                got.record,
                got.json
            )));
        }
    }
    if expected.len() != report.accepted.len() {
        return Ok(Some(format!(
            "expected {} records, got {}",
            expected.len(),
            report.accepted.len()
        )));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_is_guessed_from_the_extension_only_when_the_plugin_accepts_it() {
        let both = [Framing::JsonLines, Framing::JsonRecords];
        assert_eq!(
            guess_framing(Path::new("a/b.json"), &both),
            Some(Framing::JsonRecords)
        );
        assert_eq!(
            guess_framing(Path::new("b.jsonl"), &both),
            Some(Framing::JsonLines)
        );
        assert_eq!(guess_framing(Path::new("b.log"), &both), None);
        assert_eq!(guess_framing(Path::new("b"), &both), None);
    }

    #[test]
    fn unknown_framing_names_the_choices() {
        let err = parse_framing("csv").unwrap_err();
        assert!(
            err.contains("json-lines") && err.contains("syslog"),
            "{err}"
        );
    }
}
