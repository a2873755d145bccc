//! Golden tests: every `golden/<case>.input.<ext>` of every source plugin, run through the real
//! component in the real host, must produce `golden/<case>.ocsf.json`. `UPDATE_GOLDEN=1`
//! rewrites the expected files (review the diff).

use std::path::Path;

use lakegate_plugin_sdk::host::runner::{RunOptions, Runner};
use lakegate_plugin_sdk::Framing;
use lakegate_tests::{golden_document, load, plugin_path, root};

fn framing_for(input: &Path) -> Framing {
    match input.extension().and_then(|e| e.to_str()) {
        Some("json") => Framing::JsonRecords,
        Some("jsonl") => Framing::JsonLines,
        Some("log") => Framing::TextLines,
        other => panic!("{}: no framing for extension {other:?}", input.display()),
    }
}

fn check_plugin(name: &str) {
    let dir = root().join("plugins/sources").join(name).join("golden");
    let mut runner = Runner::new(load(&plugin_path(name))).expect("manifest is valid");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut cases = 0;
    let mut failures = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("golden dir")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for input in entries {
        let file = input
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let Some((case, _)) = file.split_once(".input.") else {
            continue;
        };
        cases += 1;
        let bytes = std::fs::read(&input).expect("input");
        // Small batches, so that every golden case also crosses batch boundaries.
        let options = RunOptions {
            framing: Some(framing_for(&input)),
            batch_records: 7,
            ..RunOptions::default()
        };
        let report = runner.run(&bytes, &options).expect("framing is accepted");
        let actual = serde_json::to_string_pretty(&golden_document(&report)).expect("json") + "\n";
        let expected_path = dir.join(format!("{case}.ocsf.json"));
        if update {
            std::fs::write(&expected_path, &actual).expect("write golden");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "{}: output differs from {} (UPDATE_GOLDEN=1 rewrites it)",
                input.display(),
                expected_path.display()
            ));
        }
    }
    assert!(cases >= 2, "{name} has only {cases} golden cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn aws_cloudtrail() {
    check_plugin("aws-cloudtrail");
}

#[test]
fn aws_vpc_flow() {
    check_plugin("aws-vpc-flow");
}

#[test]
fn okta_system_log() {
    check_plugin("okta-system-log");
}
