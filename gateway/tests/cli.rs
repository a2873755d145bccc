//! The `lakegate` binary: `plugin test` and `plugin inspect` on the real components, and the
//! independent OCSF check of what `--output` writes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod support;

use support::{golden, plugin, root, text};

fn scratch(name: &str) -> PathBuf {
    let dir = root().join("target/cli-tests");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir.join(name)
}

fn lakegate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lakegate"))
        .args(args)
        .env("LAKEGATE_CACHE_DIR", root().join("target/test-cache"))
        .output()
        .expect("lakegate runs")
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

#[test]
fn plugin_test_reports_every_record_and_writes_records_and_dead_letters() {
    let wasm = plugin("aws-cloudtrail");
    let (out, dead) = (scratch("edge.jsonl"), scratch("edge.dead.jsonl"));
    let input = golden("aws-cloudtrail", "edge-cases.input.jsonl");
    let o = lakegate(&[
        "plugin",
        "test",
        path_str(&wasm),
        "--input",
        &input,
        "--output",
        path_str(&out),
        "--dead-letters",
        path_str(&dead),
    ]);
    let shown = text(&o);
    // Input the plugin rejects is reported, not an error.
    assert!(o.status.success(), "{shown}");
    assert!(
        shown.contains("read 16, translated 10, rejected 6"),
        "{shown}"
    );
    assert!(shown.contains("6003 API Activity"), "{shown}");
    assert!(
        shown.contains("rejected record 3 [translation] eventTime: missing"),
        "{shown}"
    );
    assert!(
        shown.contains("rejected record 14 [translation] record is a JSON array, not an object"),
        "{shown}"
    );
    let records = std::fs::read_to_string(&out).expect("output");
    assert_eq!(records.lines().count(), 10);
    assert!(records
        .lines()
        .all(|l| serde_json::from_str::<serde_json::Value>(l)
            .is_ok_and(|v| v["metadata"]["version"] == "1.1.0")));
    let dead = std::fs::read_to_string(&dead).expect("dead letters");
    let first: serde_json::Value =
        serde_json::from_str(dead.lines().next().expect("a dead letter")).expect("json");
    assert_eq!(first["record"], 3);
    assert_eq!(first["plugin"], "aws-cloudtrail");
    assert!(
        first["raw"]
            .as_str()
            .is_some_and(|r| r.contains("\"eventID\": \"ev-no-time\"")),
        "raw bytes kept: {first}"
    );
}

#[test]
fn expect_passes_on_equal_output_and_fails_on_a_difference() {
    let wasm = plugin("aws-vpc-flow");
    let input = golden("aws-vpc-flow", "default-v2.input.log");
    let out = scratch("v2.jsonl");
    assert!(lakegate(&[
        "plugin",
        "test",
        path_str(&wasm),
        "--input",
        &input,
        "--output",
        path_str(&out)
    ])
    .status
    .success());
    let same = lakegate(&[
        "plugin",
        "test",
        path_str(&wasm),
        "--input",
        &input,
        "--expect",
        path_str(&out),
    ]);
    assert!(same.status.success(), "{}", text(&same));
    let changed = scratch("v2.changed.jsonl");
    let original = std::fs::read_to_string(&out).expect("output");
    std::fs::write(
        &changed,
        original.replacen("\"bytes\":4249", "\"bytes\":4250", 1),
    )
    .expect("write");
    let differs = lakegate(&[
        "plugin",
        "test",
        path_str(&wasm),
        "--input",
        &input,
        "--expect",
        path_str(&changed),
    ]);
    assert_eq!(differs.status.code(), Some(1), "{}", text(&differs));
    assert!(
        text(&differs).contains("FAIL: output differs") && text(&differs).contains("4250"),
        "{}",
        text(&differs)
    );
}

#[test]
fn a_record_breaking_the_manifest_fails_the_run() {
    let input = scratch("undeclared.log");
    std::fs::write(&input, "alice\nundeclared\n").expect("write");
    let o = lakegate(&[
        "plugin",
        "test",
        path_str(&plugin("misbehaving")),
        "--input",
        path_str(&input),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("rejected record 2 [validation] message: message: the plugin did not declare this attribute in its manifest"), "{}", text(&o));
}

#[test]
fn inspect_prints_the_manifest() {
    let o = lakegate(&["plugin", "inspect", path_str(&plugin("okta-system-log"))]);
    let shown = text(&o);
    assert!(o.status.success(), "{shown}");
    for expected in [
        "okta-system-log",
        "lakegate:plugin@0.2.0",
        "ocsf        1.1.0",
        "3002 Authentication",
        "3001 Account Change",
        "6003 API Activity",
        "json-lines, json-records",
    ] {
        assert!(shown.contains(expected), "missing {expected:?} in\n{shown}");
    }
}

#[test]
fn a_file_that_is_not_a_component_is_refused_clearly() {
    let bogus = scratch("bogus.wasm");
    std::fs::write(&bogus, b"\0asm\x01\0\0\0").expect("write");
    let o = lakegate(&["plugin", "inspect", path_str(&bogus)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("not a WebAssembly component"),
        "{}",
        text(&o)
    );
}

/// Every record `--output` writes for every golden input passes an independent validator:
/// JSON Schemas generated by the `ocsf-json-schema` package, checked by `jsonschema`.
#[test]
fn output_passes_the_independent_json_schema_check() {
    let mut outputs = Vec::new();
    let mut expected = 0;
    for name in ["aws-cloudtrail", "aws-vpc-flow", "okta-system-log"] {
        let dir = root().join("plugins/sources").join(name).join("golden");
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .expect("golden dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.to_string_lossy().contains(".input."))
            .collect();
        inputs.sort();
        for input in inputs {
            let out = scratch(&format!(
                "{name}-{}.jsonl",
                input.file_name().expect("name").to_string_lossy()
            ));
            let o = lakegate(&[
                "plugin",
                "test",
                path_str(&plugin(name)),
                "--input",
                path_str(&input),
                "--output",
                path_str(&out),
            ]);
            assert!(o.status.success(), "{}", text(&o));
            expected += std::fs::read_to_string(&out)
                .expect("output")
                .lines()
                .count();
            outputs.push(out);
        }
    }
    let python = std::env::var("LAKEGATE_PYTHON").unwrap_or_else(|_| "python3".into());
    let o = Command::new(&python)
        .arg(root().join("tests/independent/ocsf_jsonschema_check.py"))
        .args(&outputs)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}; `cargo xtask test` sets up tests/independent/requirements.txt"));
    let shown = text(&o);
    assert!(o.status.success(), "independent check failed (needs tests/independent/requirements.txt; `cargo xtask test` installs it):\n{shown}");
    assert!(
        shown.contains(&format!("{expected} passed, 0 failed")),
        "expected {expected} records checked:\n{shown}"
    );
}
