//! Compiled plugins on disk, keyed by plugin hash and engine compatibility, so a plugin is
//! compiled once and later loads are a memory map.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;

/// A directory of precompiled components.
pub(crate) struct Cache {
    dir: PathBuf,
    /// Distinguishes wasmtime versions and engine settings that produce incompatible code.
    engine_key: u64,
}

impl Cache {
    pub(crate) fn new(dir: PathBuf, engine: &wasmtime::Engine) -> Cache {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Cache {
            dir,
            engine_key: hasher.finish(),
        }
    }

    fn path(&self, plugin_sha256: &str) -> PathBuf {
        self.dir
            .join(format!("{plugin_sha256}-{:016x}.cwasm", self.engine_key))
    }

    /// The cached compilation of this plugin, if any.
    pub(crate) fn get(
        &self,
        engine: &wasmtime::Engine,
        plugin_sha256: &str,
    ) -> Option<wasmtime::component::Component> {
        let path = self.path(plugin_sha256);
        // The file is read, not memory-mapped: a mapping would turn a cache file truncated by
        // someone else into SIGBUS in the gateway. Reading costs about a millisecond, once.
        let bytes = std::fs::read(&path).ok()?;
        // SAFETY: the bytes were written by `put` below from `Component::serialize` of this same
        // engine configuration (the name carries the compatibility hash), into a directory
        // owned by the gateway; wasmtime additionally checks the header before using them.
        match unsafe { wasmtime::component::Component::deserialize(engine, &bytes) } {
            Ok(component) => Some(component),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "ignoring unusable compiled plugin in cache");
                None
            }
        }
    }

    /// Stores a compiled plugin; written to a temporary file and renamed, so readers never see
    /// half a file. Failure only costs a recompilation later.
    pub(crate) fn put(&self, plugin_sha256: &str, component: &wasmtime::component::Component) {
        let path = self.path(plugin_sha256);
        let result = component
            .serialize()
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                std::fs::create_dir_all(&self.dir).map_err(|e| e.to_string())?;
                let tmp = path.with_extension(format!("tmp{}", std::process::id()));
                std::fs::write(&tmp, bytes).map_err(|e| e.to_string())?;
                std::fs::rename(&tmp, &path).map_err(|e| e.to_string())
            });
        if let Err(error) = result {
            tracing::warn!(path = %path.display(), %error, "cannot cache compiled plugin");
        }
    }
}
