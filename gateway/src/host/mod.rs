//! The WebAssembly host: one wasmtime engine, compiled plugins cached by hash, and sandboxed
//! instances with a per-call deadline and a per-instance memory cap.

mod cache;
mod limits;
mod plugin;

/// The bindings of one version of the WIT package `lakegate:plugin` (the folder `$path`) and
/// their conversions to the version-independent SDK types. The versions differ in what their
/// types mean (`translation.events` is JSON in 0.1.0 and rows in 0.2.0, given as `$format`),
/// not in their shape, so one body serves both.
macro_rules! interface {
    ($path:tt, $format:expr) => {
        use lakegate_plugin_sdk as sdk;
        use wasmtime::Store;

        use crate::host::limits::MemoryCap;

        wasmtime::component::bindgen!({
            path: $path,
            world: "source-plugin",
            // A batch is lowered into the component straight from the caller's slices, not
            // from a copy of them.
            ownership: Borrowing {
                duplicate_if_necessary: true
            },
        });

        use self::lakegate::plugin::types::{Batch, BatchContext, Framing, Manifest, Translation};

        pub(crate) use SourcePlugin as Bindings;
        pub(crate) use SourcePluginPre as BindingsPre;

        /// Calls `describe`.
        pub(crate) fn describe(
            store: &mut Store<MemoryCap>,
            bindings: &Bindings,
        ) -> wasmtime::Result<sdk::Manifest> {
            let m = bindings.lakegate_plugin_source().call_describe(store)?;
            Ok(manifest(m))
        }

        /// Calls `translate`.
        pub(crate) fn translate(
            store: &mut Store<MemoryCap>,
            bindings: &Bindings,
            context: &sdk::BatchContext,
            data: &[u8],
            ends: &[u32],
        ) -> wasmtime::Result<sdk::Translation> {
            let context = BatchContext {
                received_ms: context.received_ms,
                source: &context.source,
                framing: to_framing(context.framing),
                carry: context.carry.as_deref(),
            };
            let batch = Batch { data, ends };
            let t = bindings
                .lakegate_plugin_source()
                .call_translate(store, context, batch)?;
            Ok(translation(t))
        }

        fn manifest(m: Manifest) -> sdk::Manifest {
            sdk::Manifest {
                name: m.name,
                version: m.version,
                vendor: m.vendor,
                product: m.product,
                description: m.description,
                sdk_version: m.sdk_version,
                ocsf_version: m.ocsf_version,
                framings: m.framings.into_iter().map(framing).collect(),
                classes: m
                    .classes
                    .into_iter()
                    .map(|c| sdk::ClassDeclaration {
                        class_uid: c.class_uid,
                        attributes: c.attributes,
                    })
                    .collect(),
            }
        }

        fn framing(f: Framing) -> sdk::Framing {
            match f {
                Framing::JsonLines => sdk::Framing::JsonLines,
                Framing::JsonRecords => sdk::Framing::JsonRecords,
                Framing::TextLines => sdk::Framing::TextLines,
                Framing::Syslog => sdk::Framing::Syslog,
            }
        }

        fn to_framing(f: sdk::Framing) -> Framing {
            match f {
                sdk::Framing::JsonLines => Framing::JsonLines,
                sdk::Framing::JsonRecords => Framing::JsonRecords,
                sdk::Framing::TextLines => Framing::TextLines,
                sdk::Framing::Syslog => Framing::Syslog,
            }
        }

        fn translation(t: Translation) -> sdk::Translation {
            sdk::Translation {
                events: t.events,
                format: $format,
                origins: t.origins,
                diagnostics: t
                    .diagnostics
                    .into_iter()
                    .map(|d| sdk::Diagnostic {
                        record: d.record,
                        path: d.path,
                        reason: d.reason,
                    })
                    .collect(),
                carry: t.carry,
            }
        }
    };
}

/// `lakegate:plugin@0.1.0`: records as JSON lines.
mod v0_1_0 {
    interface!(
        "../plugin-sdk/wit/since_v0.1.0",
        sdk::EventFormat::JsonLines
    );
}

/// `lakegate:plugin@0.2.0`: records as rows.
mod v0_2_0 {
    interface!("../plugin-sdk/wit/since_v0.2.0", sdk::EventFormat::Rows);
}

pub use limits::Limits;
pub use plugin::{Plugin, PluginInfo};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The plugin file could not be read.
    #[error("cannot read plugin {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The bytes are not a loadable component of a supported interface version.
    #[error("cannot load plugin {path}: {reason}")]
    Load { path: PathBuf, reason: String },
    /// The plugin's manifest is unusable.
    #[error("plugin {path}: {source}")]
    Manifest {
        path: PathBuf,
        source: lakegate_plugin_sdk::host::runner::ManifestError,
    },
}

/// The wasmtime engine and everything shared by the plugins it runs.
#[derive(Clone)]
pub struct Host {
    engine: wasmtime::Engine,
    cache: Option<Arc<cache::Cache>>,
    limits: Limits,
}

/// How often the engine's epoch advances; deadlines are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

impl Host {
    /// Creates the engine and starts its epoch ticker. `cache_dir` holds compiled plugins.
    pub fn new(limits: Limits, cache_dir: Option<PathBuf>) -> Result<Host, HostError> {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true).epoch_interruption(true);
        let engine = wasmtime::Engine::new(&config).map_err(|e| HostError::Load {
            path: PathBuf::new(),
            reason: e.to_string(),
        })?;
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("lakegate-epoch".into())
            .spawn(move || {
                // Ends with the engine: the ticker holds only a weak reference to it.
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .map_err(|e| HostError::Load {
                path: PathBuf::new(),
                reason: format!("cannot start the epoch ticker: {e}"),
            })?;
        let cache = cache_dir.map(|dir| Arc::new(cache::Cache::new(dir, &engine)));
        Ok(Host {
            engine,
            cache,
            limits,
        })
    }

    /// The limits applied to every plugin call.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Loads a plugin component from a file: compiled once, cached by content hash.
    pub fn load(&self, path: &std::path::Path) -> Result<Plugin, HostError> {
        let bytes = std::fs::read(path).map_err(|source| HostError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Plugin::load(self, path, &bytes)
    }
}
