//! A complete source plugin in one file (the one plugin-sdk/README.md walks through), run
//! natively through the test harness: `cargo run -p lakegate-plugin-sdk --features host --example source_plugin`.

use lakegate_plugin_sdk::host::harness;
use lakegate_plugin_sdk::input::JsonRecord;
use lakegate_plugin_sdk::ocsf::{
    self, class, time, NetworkActivity, NetworkActivityActivity, NetworkEndpoint, Unmapped,
};
use lakegate_plugin_sdk::{export_source, Framing, Manifest, Output, Reject, Source};

/// Acme firewall connection logs to OCSF Network Activity.
pub struct AcmeFirewall;

impl Source for AcmeFirewall {
    fn manifest() -> Manifest {
        Manifest::new("acme-firewall", "0.1.0")
            .product("Acme", "Firewall")
            .description("Acme firewall connection logs as JSON lines")
            .framing(Framing::JsonLines)
            .class(
                class::NETWORK_ACTIVITY,
                &[
                    "time",
                    "severity_id",
                    "metadata",
                    "src_endpoint.ip",
                    "dst_endpoint.ip",
                    "unmapped",
                ],
            )
    }

    fn translate(record: &[u8], out: &mut Output<'_>) -> Result<(), Reject> {
        let mut r = JsonRecord::parse(record)?;
        let ts = r
            .take_str("ts")
            .ok_or_else(|| Reject::at("ts", "missing"))?;
        let time = time::parse_rfc3339_ms(&ts)
            .ok_or_else(|| Reject::at("ts", format!("`{ts}` is not a timestamp")))?;
        let endpoint = |ip: Option<String>| {
            Some(Box::new(NetworkEndpoint {
                ip: ip.as_deref().and_then(ocsf::ip),
                ..Default::default()
            }))
        };
        let (src, dst) = (endpoint(r.take_str("src")), endpoint(r.take_str("dst")));
        let mut unmapped = Unmapped::default();
        r.into_unmapped("", &mut unmapped);
        out.emit(&NetworkActivity {
            activity_id: NetworkActivityActivity::Traffic,
            severity_id: ocsf::Severity::Informational,
            time: Some(time),
            metadata: Some(ocsf::metadata("Acme", "Firewall")),
            src_endpoint: src,
            dst_endpoint: dst,
            unmapped: Some(unmapped),
            ..Default::default()
        });
        Ok(())
    }
}

export_source!(AcmeFirewall);

fn main() {
    let input = br#"{"ts":"2024-01-01T00:00:00Z","src":"192.0.2.1","dst":"198.51.100.2","rule":"7"}
{"ts":"not a time","src":"192.0.2.1"}
"#;
    let report = harness::run::<AcmeFirewall>(input).expect("the manifest is valid");
    for accepted in &report.accepted {
        println!("record {}: {}", accepted.record, accepted.json);
    }
    for rejected in &report.rejected {
        println!(
            "record {} rejected [{}] {}: {}",
            rejected.record,
            rejected.stage.name(),
            rejected.path.as_deref().unwrap_or("-"),
            rejected.reason
        );
    }
    assert_eq!(report.accepted[0].event()["type_uid"], 400106);
    assert_eq!(report.accepted[0].event()["unmapped"]["rule"], "7");
}
