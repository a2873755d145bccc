//! The CloudTrail plugin against Amazon Security Lake's own output for the same 21 records
//! (AWS's published rc.2 pairs), on every attribute both carry after the documented 1.1.0
//! renames. One deliberate difference: for AssumeRole* and CheckMfa, AWS writes `status_id` 0
//! next to `status` "Other"; we derive Success/Failure from the response and `errorCode`.

use lakegate_plugin_sdk::host::runner::{RunOptions, Runner};
use lakegate_plugin_sdk::Framing;
use lakegate_tests::{load, plugin_path, root};
use serde_json::Value;

fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, k| &v[k])
}

#[test]
fn cloudtrail_matches_security_lake_on_shared_attributes() {
    let dir = root().join("plugins/sources/aws-cloudtrail/golden");
    let raw = std::fs::read(dir.join("aws-reference.input.jsonl")).expect("input");
    let aws: Vec<Value> =
        std::fs::read_to_string(dir.join("aws-reference.security-lake-rc2.jsonl"))
            .expect("reference")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
    let mut runner = Runner::new(load(&plugin_path("aws-cloudtrail"))).expect("manifest");
    let report = runner
        .run(
            &raw,
            &RunOptions {
                framing: Some(Framing::JsonLines),
                ..RunOptions::default()
            },
        )
        .expect("runs");
    assert_eq!(
        report.accepted.len(),
        aws.len(),
        "every reference record translates: {:?}",
        report.rejected
    );
    // (rc.2 path, 1.1.0 path) pairs: equal wherever AWS has a value.
    let pairs = [
        ("activity_id", "activity_id"),
        ("time", "time"),
        ("severity_id", "severity_id"),
        ("metadata.uid", "metadata.uid"),
        ("metadata.product.version", "metadata.product.version"),
        (
            "metadata.product.feature.name",
            "metadata.product.feature.name",
        ),
        ("api.operation", "api.operation"),
        ("api.service.name", "api.service.name"),
        ("api.response.error", "api.response.error"),
        ("actor.user.uuid", "actor.user.uid"),
        ("actor.user.uid", "actor.user.uid_alt"),
        ("actor.user.account_uid", "actor.user.account.uid"),
        ("actor.user.name", "actor.user.name"),
        ("actor.user.type", "actor.user.type"),
        ("actor.session.issuer", "actor.session.issuer"),
        ("actor.session.mfa", "actor.session.is_mfa"),
        ("actor.invoked_by", "actor.invoked_by"),
        ("actor.idp.name", "actor.idp.name"),
        ("src_endpoint.ip", "src_endpoint.ip"),
        ("src_endpoint.domain", "src_endpoint.domain"),
        ("http_request.user_agent", "http_request.user_agent"),
        ("cloud.region", "cloud.region"),
        ("cloud.provider", "cloud.provider"),
        ("user.name", "user.name"),
        ("mfa", "is_mfa"),
        ("dst_endpoint.svc_name", "dst_endpoint.svc_name"),
    ];
    let mut mismatches = Vec::new();
    let mut compared = 0;
    for (i, (theirs, ours)) in aws.iter().zip(&report.accepted).enumerate() {
        let ours = &ours.event();
        let class = match theirs["class_uid"].as_i64() {
            Some(3005) => 6003,
            Some(c) => c,
            None => panic!("line {} has no class_uid", i + 1),
        };
        assert_eq!(
            ours["class_uid"].as_i64(),
            Some(class),
            "line {}: class",
            i + 1
        );
        for (rc2, v11) in pairs {
            let want = at(theirs, rc2);
            // AWS writes empty strings for absent values; those carry nothing to compare.
            if want.is_null() || want.as_str() == Some("") {
                continue;
            }
            compared += 1;
            if at(ours, v11) != want {
                mismatches.push(format!(
                    "line {}: AWS {rc2} = {want}, ours {v11} = {}",
                    i + 1,
                    at(ours, v11)
                ));
            }
        }
        let status = theirs["status_id"].as_i64();
        if status != Some(0) {
            assert_eq!(
                ours["status_id"].as_i64(),
                status,
                "line {}: status_id",
                i + 1
            );
        }
    }
    assert!(compared > 200, "only {compared} attribute values compared");
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
