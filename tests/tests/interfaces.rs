//! The gateway runs plugins of every interface version it has released: `0.1.0` (records as
//! JSON lines) beside `0.2.0` (records as rows, what the SDK exports).

use lakegate_plugin_sdk::host::runner::{RunOptions, Runner, Stage};
use lakegate_plugin_sdk::host::validate::schema_1_1_0;
use lakegate_tests::{load, plugin_path, test_plugin_path};
use serde_json::Value;

#[test]
fn a_plugin_of_the_first_interface_still_runs_and_its_json_becomes_rows() {
    let plugin = load(&test_plugin_path("interface-v0-1"));
    assert_eq!(plugin.info().interface, "lakegate:plugin@0.1.0");
    let mut runner = Runner::new(plugin).expect("manifest is valid");
    let options = RunOptions {
        received_ms: 1_700_000_000_000,
        ..RunOptions::default()
    };
    let report = runner
        .run(b"alice\nbad json\nbob \"the builder\"\n", &options)
        .expect("runs");
    let names: Vec<Value> = report
        .accepted
        .iter()
        .map(|a| a.event()["actor"]["user"]["name"].clone())
        .collect();
    assert_eq!(names, ["alice", "bob \"the builder\""]);
    for a in &report.accepted {
        // The plugin's own line is kept, and the row the validator wrote renders as the same
        // record.
        assert!(
            a.json.contains("\"api\":{\"operation\":\"echo\"}"),
            "{}",
            a.json
        );
        let rendered = schema_1_1_0().render_row(&a.row).expect("a valid row");
        let rendered: Value = serde_json::from_str(&rendered).expect("JSON");
        assert_eq!(rendered, a.event());
        assert_eq!(a.time, 1_700_000_000_000);
    }
    let rejected: Vec<_> = report.rejected_at(Stage::Validation).collect();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].record, 2);
    assert!(
        rejected[0].reason.contains("plugin emitted invalid JSON"),
        "{}",
        rejected[0].reason
    );
}

#[test]
fn sdk_plugins_export_the_newest_interface_and_their_rows_render_as_json() {
    let plugin = load(&plugin_path("aws-vpc-flow"));
    assert_eq!(plugin.info().interface, "lakegate:plugin@0.2.0");
    let mut runner = Runner::new(plugin).expect("manifest is valid");
    let line = b"2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK\n";
    let with_json = runner.run(line, &RunOptions::default()).expect("runs");
    let rows_only = RunOptions {
        json: false,
        ..RunOptions::default()
    };
    let without = runner.run(line, &rows_only).expect("runs");
    let (a, b) = (&with_json.accepted[0], &without.accepted[0]);
    assert_eq!(a.row, b.row, "the same row either way");
    assert!(b.json.is_empty(), "no JSON is rendered unless asked for");
    assert_eq!(a.event()["dst_endpoint"]["port"], 22);
    assert_eq!(a.event()["time_dt"], "2014-12-14T04:06:50.000Z");
    assert_eq!(a.class_uid, 4001);
}
