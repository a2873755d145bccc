//! lakegate: an Amazon Security Lake gateway hosting sandboxed WebAssembly source plugins.
//!
//! `host` runs plugins under wasmtime; `cli` is what the `lakegate` binary does.

pub mod cli;
pub mod host;
