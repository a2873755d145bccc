//! The compile cache: a plugin is compiled once and later loads read the cached artifact; a
//! damaged cache file costs a recompilation, never a failure.

use lakegate::host::{Host, Limits};
use lakegate_plugin_sdk::host::runner::Translator;
use lakegate_tests::{plugin_path, root};

#[test]
fn compiled_plugins_are_cached_by_hash_and_a_damaged_entry_is_recompiled() {
    let dir = root().join("target/cache-test");
    let _ = std::fs::remove_dir_all(&dir);
    let host = Host::new(Limits::default(), Some(dir.clone())).expect("host");
    let first = host.load(&plugin_path("aws-vpc-flow")).expect("loads");
    let entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("cache dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(entries.len(), 1, "one compiled artifact: {entries:?}");
    let name = entries[0]
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with(&first.info().sha256) && name.ends_with(".cwasm"),
        "{name}"
    );

    let cached = host
        .load(&plugin_path("aws-vpc-flow"))
        .expect("loads from the cache");
    assert_eq!(cached.manifest(), first.manifest());

    std::fs::write(&entries[0], b"not a compiled component").expect("damage the entry");
    let recompiled = host.load(&plugin_path("aws-vpc-flow")).expect("recompiles");
    assert_eq!(recompiled.manifest().name, "aws-vpc-flow");
    assert!(
        std::fs::metadata(&entries[0]).expect("entry").len() > 1000,
        "the damaged entry was replaced"
    );
}
