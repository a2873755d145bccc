//! The configured sources: each a plugin (a pool of sandboxed instances), its partition values,
//! its lake tables (one per class it declares) and its counters.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use lakegate_plugin_sdk::host::runner::{Runner, Translator};
use lakegate_plugin_sdk::host::validate::{schema_1_1_0, Declarations};
use lakegate_plugin_sdk::{Framing, Manifest};

use crate::config::{check_lake_source, Config, SourceConfig};
use crate::host::{Host, Plugin, PluginInfo};
use crate::lake::LakeTable;

/// Per-source counters, also exported as Prometheus metrics.
#[derive(Debug, Default)]
pub struct Counters {
    pub received_records: AtomicU64,
    pub received_bytes: AtomicU64,
    pub read: AtomicU64,
    pub events_acknowledged: AtomicU64,
    pub events_written: AtomicU64,
    pub rejected: AtomicU64,
    /// Slices translated again because the guess of their stream's state was wrong.
    pub retranslated: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub files_written: AtomicU64,
    pub last_write_ms: AtomicI64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// One running source.
pub struct Source {
    pub name: String,
    pub plugin_path: PathBuf,
    pub manifest: Manifest,
    pub info: PluginInfo,
    pub region: String,
    pub account: String,
    pub framing: Framing,
    /// Lake tables by class_uid.
    pub tables: BTreeMap<u32, Arc<LakeTable>>,
    /// The plugin's declarations, to validate events recovered from the write-ahead log.
    pub declarations: Declarations,
    pub counters: Counters,
    template: Plugin,
    idle: Mutex<Vec<Runner<Plugin>>>,
}

impl Source {
    /// Runs `f` with an idle plugin instance (a new one when all are busy), which goes back to
    /// the pool afterwards.
    pub fn with_runner<R>(&self, f: impl FnOnce(&mut Runner<Plugin>) -> R) -> R {
        let idle = self.idle.lock().expect("pool lock").pop();
        let mut runner = match idle {
            Some(r) => r,
            None => Runner::new(self.template.fork()).expect("the manifest was checked at load"),
        };
        let out = f(&mut runner);
        self.idle.lock().expect("pool lock").push(runner);
        out
    }
}

/// Every configured source, by name.
pub struct Sources {
    pub by_name: BTreeMap<String, Arc<Source>>,
    /// Every loaded plugin's path, for the admin API (sources may share one).
    pub plugins: BTreeMap<String, (PathBuf, Manifest, PluginInfo)>,
}

impl Sources {
    /// Loads the plugins of the configured sources; with none configured, every plugin in the
    /// plugin directory becomes a source of its own name.
    pub fn load(host: &Host, config: &Config) -> anyhow::Result<Sources> {
        let plugin_dir = config.plugin_dir();
        let mut configured = config.sources.clone();
        if configured.is_empty() {
            for path in wasm_files(&plugin_dir) {
                let name = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default()
                    .to_string();
                configured.insert(
                    name,
                    SourceConfig {
                        plugin: path.display().to_string(),
                        region: "us-east-1".into(),
                        account_id: "external".into(),
                        lake_sources: BTreeMap::new(),
                        max_age: None,
                    },
                );
            }
            if configured.is_empty() {
                bail!(
                    "no sources configured and no plugins in {} (build them with `cargo xtask plugins`, or pass --config)",
                    plugin_dir.display()
                );
            }
        }
        let mut by_name = BTreeMap::new();
        let mut plugins = BTreeMap::new();
        for (name, source) in configured {
            let path = if source.plugin.ends_with(".wasm") || source.plugin.contains('/') {
                PathBuf::from(&source.plugin)
            } else {
                plugin_dir.join(format!("{}.wasm", source.plugin))
            };
            let plugin = host
                .load(&path)
                .with_context(|| format!("source `{name}`"))?;
            let manifest = plugin.manifest().clone();
            let info = plugin.info().clone();
            let max_age = source.max_age.unwrap_or(config.flush.max_age);
            let schema = schema_1_1_0();
            let declarations = Declarations::new(schema, &manifest.classes);
            let mut tables = BTreeMap::new();
            for class in &manifest.classes {
                let lake_source = source
                    .lake_sources
                    .get(&class.class_uid)
                    .cloned()
                    .unwrap_or_else(|| format!("{name}-{}", class.class_uid));
                check_lake_source(&lake_source).map_err(anyhow::Error::msg)?;
                let table = declarations
                    .table(class.class_uid)
                    .expect("declared classes were checked at load")
                    .clone();
                tables.insert(
                    class.class_uid,
                    Arc::new(LakeTable::new(
                        lake_source,
                        name.clone(),
                        class.class_uid,
                        schema
                            .class_name(class.class_uid)
                            .unwrap_or_default()
                            .to_string(),
                        manifest.ocsf_version.clone(),
                        table,
                        max_age,
                    )),
                );
            }
            let framing = manifest
                .framings
                .first()
                .copied()
                .unwrap_or(Framing::JsonLines);
            plugins.insert(
                manifest.name.clone(),
                (path.clone(), manifest.clone(), info.clone()),
            );
            by_name.insert(
                name.clone(),
                Arc::new(Source {
                    name,
                    plugin_path: path,
                    manifest,
                    info,
                    region: source.region,
                    account: source.account_id,
                    framing,
                    tables,
                    declarations,
                    counters: Counters::default(),
                    idle: Mutex::new(Vec::new()),
                    template: plugin,
                }),
            );
        }
        let mut lake_sources = BTreeMap::new();
        for source in by_name.values() {
            for table in source.tables.values() {
                if let Some(other) = lake_sources.insert(&table.lake_source, &source.name) {
                    bail!(
                        "lake source `{}` is used by sources `{other}` and `{}`: each (source, class) needs its own",
                        table.lake_source,
                        source.name
                    );
                }
            }
        }
        Ok(Sources { by_name, plugins })
    }

    /// A source by name, or an error that lists the configured ones.
    pub fn get(&self, name: &str) -> Result<&Arc<Source>, String> {
        self.by_name.get(name).ok_or_else(|| {
            format!(
                "unknown source `{name}`; configured sources: {}",
                self.by_name.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })
    }
}

/// The `.wasm` files of a directory, sorted; none if it cannot be read.
fn wasm_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .collect();
    files.sort();
    files
}
