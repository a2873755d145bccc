//! A plugin that misbehaves on request: the record `loop` spins forever, `alloc` allocates
//! until it is stopped, `trap` panics, `reject` is rejected, `skip` yields nothing, `undeclared`
//! emits an attribute the manifest does not declare; any other record becomes a minimal valid
//! API Activity.

use lakegate_plugin_sdk::ocsf::{
    self, class, Actor, Api, ApiActivity, ApiActivityActivity, NetworkEndpoint, User,
};
use lakegate_plugin_sdk::{export_source, Framing, Manifest, Output, Reject, Source};

/// The misbehaving plugin.
pub struct Misbehaving;

impl Source for Misbehaving {
    fn manifest() -> Manifest {
        Manifest::new("misbehaving", "0.1.0")
            .product("lakegate", "sandbox tests")
            .description("Loops, allocates or traps on request")
            .framing(Framing::TextLines)
            .class(
                class::API_ACTIVITY,
                &[
                    "actor.user.name",
                    "api.operation",
                    "src_endpoint.ip",
                    "metadata",
                    "time",
                    "severity_id",
                ],
            )
    }

    fn translate(record: &[u8], out: &mut Output<'_>) -> Result<(), Reject> {
        match record {
            b"loop" => spin(),
            b"alloc" => hoard(),
            b"trap" => panic!("asked to trap"),
            b"reject" => Err(Reject::new("asked to reject")),
            // No output and no diagnostic: what crossing the boundary costs by itself.
            b"skip" => Ok(()),
            _ => {
                let text = std::str::from_utf8(record).map_err(|_| Reject::new("not UTF-8"))?;
                let message =
                    (text == "undeclared").then(|| "not declared in the manifest".to_string());
                out.emit(&ApiActivity {
                    message,
                    activity_id: ApiActivityActivity::Read,
                    time: Some(out.received_ms()),
                    metadata: Some(ocsf::metadata("lakegate", "sandbox tests")),
                    actor: Some(Box::new(Actor {
                        user: Some(Box::new(User {
                            name: Some(text.into()),
                            ..Default::default()
                        })),
                        ..Default::default()
                    })),
                    api: Some(Box::new(Api {
                        operation: Some("echo".into()),
                        ..Default::default()
                    })),
                    src_endpoint: Some(Box::new(NetworkEndpoint {
                        ip: Some("192.0.2.1".into()),
                        ..Default::default()
                    })),
                    ..Default::default()
                });
                Ok(())
            }
        }
    }
}

fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn hoard() -> ! {
    let mut kept: Vec<Vec<u8>> = Vec::new();
    loop {
        kept.push(vec![1u8; 1 << 20]);
        std::hint::black_box(&kept);
    }
}

export_source!(Misbehaving);
