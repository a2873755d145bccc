//! Shared helpers of lakegate's end-to-end tests: where things are, and a host to run plugins.

use std::path::{Path, PathBuf};

use lakegate::host::{Host, Limits, Plugin};
use lakegate_plugin_sdk::host::runner::{Rejection, Report};
use serde_json::{json, Value};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .to_path_buf()
}

/// The built component of a shipped plugin, e.g. `aws-cloudtrail`.
pub fn plugin_path(name: &str) -> PathBuf {
    built(root().join("target/plugins").join(format!("{name}.wasm")))
}

/// The built component of a test plugin, e.g. `misbehaving`.
pub fn test_plugin_path(name: &str) -> PathBuf {
    built(
        root()
            .join("target/test-plugins")
            .join(format!("{name}.wasm")),
    )
}

fn built(path: PathBuf) -> PathBuf {
    assert!(path.exists(), "{} is missing: build the plugins with `cargo xtask plugins` (or run the tests with `cargo xtask test`)", path.display());
    path
}

/// A host with the given limits and a compile cache under `target/`.
pub fn host(limits: Limits) -> Host {
    Host::new(limits, Some(root().join("target/test-cache"))).expect("host starts")
}

/// Loads a plugin into a default host.
pub fn load(path: &Path) -> Plugin {
    host(Limits::default())
        .load(path)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The golden document of a run: every accepted record and every rejection, in input order.
pub fn golden_document(report: &Report) -> Value {
    json!({
        "read": report.read,
        "records": report.accepted.iter().map(|a| json!({"record": a.record, "ocsf": a.event()})).collect::<Vec<_>>(),
        "rejected": report.rejected.iter().map(rejection).collect::<Vec<_>>(),
    })
}

fn rejection(r: &Rejection) -> Value {
    json!({"record": r.record, "stage": r.stage.name(), "path": r.path, "reason": r.reason})
}
