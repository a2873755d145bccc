//! What runs around a plugin on the host: framing, OCSF validation, and the batch runner that
//! the gateway and the native test harness share.

pub mod columns;
pub mod framing;
pub mod harness;
pub mod runner;
pub mod validate;
