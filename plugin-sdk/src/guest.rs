//! The component side of a plugin: WIT bindings and the adapter from them to [`Source`].

use crate::{translate_batch, BatchContext, Framing, Manifest, Source};

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit/since_v0.2.0",
        world: "source-plugin",
        pub_export_macro: true,
        export_macro_name: "export_source_world",
        default_bindings_module: "lakegate_plugin_sdk::guest::bindings",
    });
}

pub use bindings::export_source_world;
pub use bindings::exports::lakegate::plugin::source::Guest as SourceGuest;
use bindings::lakegate::plugin::types as wit;
pub use wit::{
    Batch as WitBatch, BatchContext as WitBatchContext, Manifest as WitManifest,
    Translation as WitTranslation,
};

/// The manifest of `P` in WIT types.
pub fn manifest<P: Source>() -> WitManifest {
    let m: Manifest = P::manifest();
    WitManifest {
        name: m.name,
        version: m.version,
        vendor: m.vendor,
        product: m.product,
        description: m.description,
        sdk_version: m.sdk_version,
        ocsf_version: m.ocsf_version,
        framings: m.framings.into_iter().map(to_wit_framing).collect(),
        classes: m
            .classes
            .into_iter()
            .map(|c| wit::ClassDeclaration {
                class_uid: c.class_uid,
                attributes: c.attributes,
            })
            .collect(),
    }
}

/// Translates one batch with `P`.
pub fn translate<P: Source>(context: WitBatchContext, input: WitBatch) -> WitTranslation {
    let context = BatchContext {
        received_ms: context.received_ms,
        source: context.source,
        framing: from_wit_framing(context.framing),
        carry: context.carry,
    };
    let t = translate_batch::<P>(&context, &input.data, &input.ends);
    WitTranslation {
        events: t.events,
        origins: t.origins,
        diagnostics: t
            .diagnostics
            .into_iter()
            .map(|d| wit::Diagnostic {
                record: d.record,
                path: d.path,
                reason: d.reason,
            })
            .collect(),
        carry: t.carry,
    }
}

fn to_wit_framing(f: Framing) -> wit::Framing {
    match f {
        Framing::JsonLines => wit::Framing::JsonLines,
        Framing::JsonRecords => wit::Framing::JsonRecords,
        Framing::TextLines => wit::Framing::TextLines,
        Framing::Syslog => wit::Framing::Syslog,
    }
}

fn from_wit_framing(f: wit::Framing) -> Framing {
    match f {
        wit::Framing::JsonLines => Framing::JsonLines,
        wit::Framing::JsonRecords => Framing::JsonRecords,
        wit::Framing::TextLines => Framing::TextLines,
        wit::Framing::Syslog => Framing::Syslog,
    }
}
