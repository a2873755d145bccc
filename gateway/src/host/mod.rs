//! The WebAssembly host: one wasmtime engine, compiled plugins cached by hash, and sandboxed
//! instances with a per-call deadline and a per-instance memory cap.

mod cache;
mod limits;
mod plugin;
mod v0_1_0;

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
