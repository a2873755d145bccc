//! Every public sample in `../shared/samples` for the three plugins, including those whose
//! licence keeps them out of this repository, through the real components: no record may fail
//! OCSF validation or the plugin. Skipped, loudly, when `../shared` is not beside the checkout.

use lakegate_plugin_sdk::host::runner::{RunOptions, Runner, Stage};
use lakegate_plugin_sdk::Framing;
use lakegate_tests::{load, plugin_path, root};

fn samples(plugin: &str, folder: &str, framing: Framing, min_records: usize) {
    let dir = root().join("../shared/samples").join(folder);
    if !dir.exists() {
        eprintln!(
            "SKIPPED: {} is absent (the shared samples travel beside the repository, not in it)",
            dir.display()
        );
        return;
    }
    let mut runner = Runner::new(load(&plugin_path(plugin))).expect("manifest");
    let mut translated = 0;
    for entry in std::fs::read_dir(&dir).expect("samples") {
        let path = entry.expect("entry").path();
        let framing = match path.extension().and_then(|e| e.to_str()) {
            Some("json") => Framing::JsonRecords,
            Some("jsonl" | "log") => framing,
            _ => continue,
        };
        let report = runner
            .run(
                &std::fs::read(&path).expect("sample"),
                &RunOptions {
                    framing: Some(framing),
                    ..RunOptions::default()
                },
            )
            .expect("runs");
        let broken: Vec<_> = report
            .rejected
            .iter()
            .filter(|r| matches!(r.stage, Stage::Validation | Stage::Plugin))
            .collect();
        assert!(broken.is_empty(), "{}: {broken:#?}", path.display());
        translated += report.accepted.len();
    }
    assert!(
        translated >= min_records,
        "{folder}: only {translated} records translated"
    );
}

#[test]
fn cloudtrail_samples() {
    samples("aws-cloudtrail", "aws_cloudtrail", Framing::JsonLines, 400);
}

#[test]
fn vpc_flow_samples() {
    samples("aws-vpc-flow", "aws_vpc_flow", Framing::TextLines, 10);
}

#[test]
fn okta_samples() {
    samples("okta-system-log", "okta_system_log", Framing::JsonLines, 28);
}
