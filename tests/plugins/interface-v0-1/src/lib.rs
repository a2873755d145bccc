//! A plugin of the first interface version, `lakegate:plugin@0.1.0`, whose records are JSON
//! lines: written against that WIT directly, since the SDK exports the newest version. The
//! gateway keeps running plugins built for every version it has released.
//!
//! Each text line becomes a minimal API Activity whose `actor.user.name` is the line; the line
//! `bad json` yields text that is not JSON.

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({
        path: "../../../plugin-sdk/wit/since_v0.1.0",
        world: "source-plugin",
    });

    use exports::lakegate::plugin::source::Guest;
    use lakegate::plugin::types::{
        Batch, BatchContext, ClassDeclaration, Framing, Manifest, Translation,
    };

    struct Plugin;

    impl Guest for Plugin {
        fn describe() -> Manifest {
            let attributes = [
                "actor.user.name",
                "api.operation",
                "src_endpoint.ip",
                "metadata",
                "time",
                "severity_id",
            ];
            Manifest {
                name: "interface-v0-1".into(),
                version: "0.1.0".into(),
                vendor: "lakegate".into(),
                product: "interface tests".into(),
                description: "Echoes lines as API Activity JSON, over interface 0.1.0".into(),
                sdk_version: "none".into(),
                ocsf_version: "1.1.0".into(),
                framings: vec![Framing::TextLines],
                classes: vec![ClassDeclaration {
                    class_uid: 6003,
                    attributes: attributes.map(String::from).to_vec(),
                }],
            }
        }

        fn translate(context: BatchContext, input: Batch) -> Translation {
            let mut events = Vec::new();
            let mut origins = Vec::new();
            let mut start = 0;
            for (i, &end) in input.ends.iter().enumerate() {
                let line = String::from_utf8_lossy(&input.data[start..end as usize]);
                start = end as usize;
                if line == "bad json" {
                    events.extend_from_slice(b"{not json}");
                } else {
                    let record = serde_json::json!({
                        "class_uid": 6003, "class_name": "API Activity",
                        "category_uid": 6, "category_name": "Application Activity",
                        "activity_id": 2, "activity_name": "Read",
                        "type_uid": 600302, "type_name": "API Activity: Read",
                        "severity_id": 1, "severity": "Informational",
                        "time": context.received_ms,
                        "metadata": {"version": "1.1.0", "product": {"name": "interface tests", "vendor_name": "lakegate"}},
                        "actor": {"user": {"name": line}},
                        "api": {"operation": "echo"},
                        "src_endpoint": {"ip": "192.0.2.1"},
                    });
                    events.extend_from_slice(record.to_string().as_bytes());
                }
                events.push(b'\n');
                origins.push(i as u32);
            }
            Translation {
                events,
                origins,
                diagnostics: Vec::new(),
                carry: None,
            }
        }
    }

    export!(Plugin);
}
