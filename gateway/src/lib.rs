//! lakegate: an Amazon Security Lake gateway hosting sandboxed WebAssembly source plugins.
//!
//! - `host` runs plugins under wasmtime; `sources` pools them per configured source.
//! - `server` is the gRPC API; `pipeline` makes what it accepts durable (`wal`) and writes it
//!   to the `lake` (Parquet, catalog, dead letters).
//! - `cli` is what the `lakegate` binary does; `config` is its TOML file.

pub mod cli;
pub mod config;
pub mod host;
pub mod lake;
pub mod pipeline;
pub mod server;
pub mod sources;
pub mod wal;
