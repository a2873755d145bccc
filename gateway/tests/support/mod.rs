//! Helpers shared by the binary's integration tests.

use std::path::{Path, PathBuf};
use std::process::Output;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

/// A built plugin component: a first-party one in target/plugins, or a test plugin.
pub fn plugin(name: &str) -> PathBuf {
    let shipped = root().join("target/plugins").join(format!("{name}.wasm"));
    let path = if shipped.exists() {
        shipped
    } else {
        root()
            .join("target/test-plugins")
            .join(format!("{name}.wasm"))
    };
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask plugins`",
        path.display()
    );
    path
}

/// A bundled sample of a plugin.
pub fn golden(plugin: &str, file: &str) -> String {
    root()
        .join("plugins/sources")
        .join(plugin)
        .join("golden")
        .join(file)
        .display()
        .to_string()
}

/// stdout then stderr.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
