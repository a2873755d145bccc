//! Bindings for `lakegate:plugin@0.1.0` (plugin-sdk/wit/since_v0.1.0), and conversions to the
//! version-independent SDK types.

use lakegate_plugin_sdk as sdk;

wasmtime::component::bindgen!({
    path: "../plugin-sdk/wit/since_v0.1.0",
    world: "source-plugin",
});

use self::lakegate::plugin::types::{Batch, BatchContext, Framing, Manifest, Translation};

pub(crate) use SourcePlugin as Bindings;
pub(crate) use SourcePluginPre as BindingsPre;

pub(crate) fn manifest(m: Manifest) -> sdk::Manifest {
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

pub(crate) fn context(c: &sdk::BatchContext) -> BatchContext {
    BatchContext {
        received_ms: c.received_ms,
        source: c.source.clone(),
        framing: to_framing(c.framing),
        carry: c.carry.clone(),
    }
}

pub(crate) fn batch(data: &[u8], ends: &[u32]) -> Batch {
    Batch {
        data: data.to_vec(),
        ends: ends.to_vec(),
    }
}

pub(crate) fn translation(t: Translation) -> sdk::Translation {
    sdk::Translation {
        events: t.events,
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
