//! The lakegate plugin SDK: write a source plugin as one `Source` impl, export it with
//! [`export_source!`], test it natively with [`host::harness`] (feature `host`).
//!
//! A plugin is pure: raw bytes in, OCSF records and diagnostics out. See `plugin-sdk/README.md`
//! for the author's guide and `wit/` for the interface the component exports.

mod batch;
pub mod input;
mod manifest;
pub mod ocsf;
pub mod row;

#[cfg(feature = "host")]
pub mod host;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod guest;

#[cfg(any(target_arch = "wasm32", test))]
mod heap;

#[cfg(any(target_arch = "wasm32", test))]
mod mem;

/// A component's allocator: size-class free lists in front of the standard one (see `heap.rs`).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static HEAP: heap::SizeClasses<std::alloc::System> = heap::SizeClasses::new(std::alloc::System);

pub use batch::{translate_batch, Output, Reject};
pub use manifest::{
    BatchContext, ClassDeclaration, Diagnostic, EventFormat, Framing, Manifest, Translation,
};

/// The version of this SDK, embedded in every plugin's manifest.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The WIT package version of the interface this SDK exports.
pub const WIT_VERSION: &str = "0.2.0";

/// A source plugin: translates one raw record at a time into OCSF records.
///
/// The SDK batches the calls: the gateway crosses into the plugin once per batch, and the SDK
/// calls [`Source::translate`] for each record of it.
pub trait Source {
    /// Describes the plugin: its name, the classes it emits and the attributes it may set.
    fn manifest() -> Manifest;

    /// Translates one framed record. Emit zero or more OCSF records with [`Output::emit`];
    /// return a [`Reject`] to send the record to the dead-letter area with a reason.
    fn translate(record: &[u8], out: &mut Output<'_>) -> Result<(), Reject>;
}

/// Exports a [`Source`] implementation as the plugin's component interface.
///
/// On `wasm32` this expands to the component exports; natively it expands to nothing, so the
/// same crate builds as an ordinary library for unit tests and benchmarks.
#[macro_export]
macro_rules! export_source {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct LakegateExport;
            impl $crate::guest::SourceGuest for LakegateExport {
                fn describe() -> $crate::guest::WitManifest {
                    $crate::guest::manifest::<$plugin>()
                }
                fn translate(
                    context: $crate::guest::WitBatchContext,
                    input: $crate::guest::WitBatch,
                ) -> $crate::guest::WitTranslation {
                    $crate::guest::translate::<$plugin>(context, input)
                }
            }
            $crate::guest::export_source_world!(LakegateExport with_types_in $crate::guest::bindings);
        };
    };
}
