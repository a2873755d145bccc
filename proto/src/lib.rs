//! lakegate's gRPC API, generated from the `.proto` files beside this crate.
//!
//! - [`ingest::v1`]: sources stream raw records; responses acknowledge what is durable.
//! - [`admin::v1`]: sources, plugins, counters, flush.
//!
//! [`FILE_DESCRIPTOR_SET`] is what server reflection serves, so `grpcurl` works without the
//! `.proto` files.

#![allow(missing_docs)]

/// Ingest API.
pub mod ingest {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("lakegate.ingest.v1");
    }
}

/// Admin API.
pub mod admin {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("lakegate.admin.v1");
    }
}

/// The encoded `FileDescriptorSet` of every lakegate service.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/lakegate_descriptor.bin"));
