//! One loaded plugin: its compiled component, manifest, and a live sandboxed instance that is
//! replaced whenever a call fails.

use std::path::Path;

use lakegate_plugin_sdk::host::runner::{check_manifest, PluginFailure, Translator};
use lakegate_plugin_sdk::{BatchContext, Manifest, Translation};
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::Store;

use super::limits::MemoryCap;
use super::{v0_1_0, v0_2_0, Host, HostError, Limits};

/// The component-model layer and version bytes (4..8) of a component.
const COMPONENT_MAGIC: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];

/// Facts about a loaded plugin, for reports and dead letters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// SHA-256 of the component file, hex.
    pub sha256: String,
    /// The WIT package version the plugin exports.
    pub interface: &'static str,
    /// Size of the component file.
    pub size: usize,
}

/// The instantiation recipe for each supported interface version.
#[derive(Clone)]
enum Pre {
    V0_1_0(v0_1_0::BindingsPre<MemoryCap>),
    V0_2_0(v0_2_0::BindingsPre<MemoryCap>),
}

/// A live instance with its store.
enum Live {
    V0_1_0(Store<MemoryCap>, v0_1_0::Bindings),
    V0_2_0(Store<MemoryCap>, v0_2_0::Bindings),
}

impl Live {
    fn store(&mut self) -> &mut Store<MemoryCap> {
        match self {
            Live::V0_1_0(store, _) | Live::V0_2_0(store, _) => store,
        }
    }
}

/// A loaded source plugin.
pub struct Plugin {
    engine: wasmtime::Engine,
    pre: Pre,
    limits: Limits,
    manifest: Manifest,
    info: PluginInfo,
    live: Option<Live>,
    /// Instances created so far, including the first.
    instantiations: u64,
}

impl Plugin {
    pub(crate) fn load(host: &Host, path: &Path, bytes: &[u8]) -> Result<Plugin, HostError> {
        let load_error = |reason: String| HostError::Load {
            path: path.to_path_buf(),
            reason,
        };
        if bytes.get(4..8) != Some(&COMPONENT_MAGIC[..]) {
            return Err(load_error("not a WebAssembly component (a core module or another file); build it with `cargo xtask plugins`".into()));
        }
        let sha256 = format!("{:x}", Sha256::digest(bytes));
        let cached = host
            .cache
            .as_ref()
            .and_then(|c| c.get(&host.engine, &sha256));
        let component = match cached {
            Some(c) => c,
            None => {
                let c = Component::new(&host.engine, bytes)
                    .map_err(|e| load_error(format!("does not compile: {e}")))?;
                if let Some(cache) = &host.cache {
                    cache.put(&sha256, &c);
                }
                c
            }
        };
        // Plugins get no imports at all: a component that needs any is refused here.
        let linker: Linker<MemoryCap> = Linker::new(&host.engine);
        let instance_pre = linker.instantiate_pre(&component).map_err(|e| {
            load_error(format!(
                "imports something lakegate does not provide (plugins have no I/O): {e}"
            ))
        })?;
        // The newest interface first; a component exports one.
        let (pre, interface) = match v0_2_0::BindingsPre::new(instance_pre.clone()) {
            Ok(pre) => (Pre::V0_2_0(pre), "lakegate:plugin@0.2.0"),
            Err(newest) => match v0_1_0::BindingsPre::new(instance_pre) {
                Ok(pre) => (Pre::V0_1_0(pre), "lakegate:plugin@0.1.0"),
                Err(_) => {
                    return Err(load_error(format!(
                        "does not export lakegate:plugin/source@0.2.0 (nor @0.1.0): {newest}"
                    )))
                }
            },
        };
        let mut plugin = Plugin {
            engine: host.engine.clone(),
            pre,
            limits: host.limits,
            manifest: Manifest::new("", ""),
            info: PluginInfo {
                sha256,
                interface,
                size: bytes.len(),
            },
            live: None,
            instantiations: 0,
        };
        plugin.manifest = plugin
            .call_manifest()
            .map_err(|f| load_error(format!("describe() failed: {f}")))?;
        check_manifest(&plugin.manifest).map_err(|source| HostError::Manifest {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(plugin)
    }

    /// Another instance of the same plugin, sharing its compiled code: for running batches
    /// in parallel. Its sandbox is created on first use.
    pub fn fork(&self) -> Plugin {
        Plugin {
            engine: self.engine.clone(),
            pre: self.pre.clone(),
            limits: self.limits,
            manifest: self.manifest.clone(),
            info: self.info.clone(),
            live: None,
            instantiations: 0,
        }
    }

    /// Facts about the component.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// How many instances were created, counting replacements after failures.
    pub fn instantiations(&self) -> u64 {
        self.instantiations
    }

    fn instance(&mut self) -> Result<&mut Live, PluginFailure> {
        if self.live.is_none() {
            let mut store = Store::new(
                &self.engine,
                MemoryCap {
                    limit: self.limits.memory_bytes,
                    refused: false,
                },
            );
            store.limiter(|cap| cap as &mut dyn wasmtime::ResourceLimiter);
            store.set_epoch_deadline(self.limits.deadline_ticks());
            store.epoch_deadline_trap();
            let failed = |e: wasmtime::Error| PluginFailure {
                reason: format!("cannot instantiate plugin: {e}"),
            };
            let live = match &self.pre {
                Pre::V0_1_0(pre) => {
                    let bindings = pre.instantiate(&mut store).map_err(failed)?;
                    Live::V0_1_0(store, bindings)
                }
                Pre::V0_2_0(pre) => {
                    let bindings = pre.instantiate(&mut store).map_err(failed)?;
                    Live::V0_2_0(store, bindings)
                }
            };
            self.instantiations += 1;
            self.live = Some(live);
        }
        Ok(self.live.as_mut().expect("instance was just created"))
    }

    fn call_manifest(&mut self) -> Result<Manifest, PluginFailure> {
        self.call(|live| match live {
            Live::V0_1_0(store, bindings) => v0_1_0::describe(store, bindings),
            Live::V0_2_0(store, bindings) => v0_2_0::describe(store, bindings),
        })
    }

    /// Calls into the live instance (created if needed) under the deadline. A failure drops the
    /// instance: a trapped instance cannot be entered again, and the next call gets a fresh one.
    fn call<T>(
        &mut self,
        f: impl FnOnce(&mut Live) -> wasmtime::Result<T>,
    ) -> Result<T, PluginFailure> {
        let limits = self.limits;
        let live = self.instance()?;
        live.store().set_epoch_deadline(limits.deadline_ticks());
        let result = f(live).map_err(|e| classify(e, live.store().data(), limits));
        if result.is_err() {
            self.live = None;
        }
        result
    }
}

impl Translator for Plugin {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    fn translate(
        &mut self,
        context: &BatchContext,
        data: &[u8],
        ends: &[u32],
    ) -> Result<Translation, PluginFailure> {
        self.call(|live| match live {
            Live::V0_1_0(store, b) => v0_1_0::translate(store, b, context, data, ends),
            Live::V0_2_0(store, b) => v0_2_0::translate(store, b, context, data, ends),
        })
    }
}

/// Turns a wasmtime error into the reason recorded with every dead letter of the batch.
fn classify(error: wasmtime::Error, cap: &MemoryCap, limits: Limits) -> PluginFailure {
    let reason = if matches!(
        error.downcast_ref::<wasmtime::Trap>(),
        Some(wasmtime::Trap::Interrupt)
    ) {
        format!(
            "plugin exceeded its deadline of {} ms and was stopped",
            limits.deadline.as_millis()
        )
    } else if cap.refused {
        format!(
            "plugin exceeded its memory limit of {} MiB and was stopped ({error})",
            limits.memory_bytes >> 20
        )
    } else {
        format!("plugin trapped: {error}")
    };
    PluginFailure { reason }
}
