//! Okta System Log to OCSF 1.1.0: sign-ins, sessions and MFA to Authentication (3002), user
//! lifecycle, password and MFA factor changes to Account Change (3001), everything else to
//! API Activity (6003).

mod classify;
mod context;

use lakegate_plugin_sdk::input::JsonRecord;
use lakegate_plugin_sdk::ocsf::{self, class, time, Unmapped, User};
use lakegate_plugin_sdk::{export_source, Framing, Manifest, Output, Reject, Source};

use classify::Kind;
use context::{Context, Targets};

/// The Okta System Log plugin.
pub struct OktaSystemLog;

const COMMON: &[&str] = &[
    "time",
    "time_dt",
    "severity_id",
    "status_id",
    "status",
    "status_detail",
    "message",
    "metadata.version",
    "metadata.uid",
    "metadata.event_code",
    "metadata.correlation_uid",
    "metadata.profiles",
    "metadata.product.name",
    "metadata.product.vendor_name",
    "metadata.product.version",
    "actor.user.uid",
    "actor.user.type_id",
    "actor.user.name",
    "actor.user.email_addr",
    "actor.user.full_name",
    "actor.session.uid",
    "actor.session.uid_alt",
    "actor.session.issuer",
    "src_endpoint.ip",
    "src_endpoint.uid",
    "src_endpoint.domain",
    "src_endpoint.os.name",
    "src_endpoint.os.type_id",
    "src_endpoint.location.city",
    "src_endpoint.location.country",
    "src_endpoint.location.postal_code",
    "src_endpoint.location.region",
    "src_endpoint.location.isp",
    "src_endpoint.location.coordinates",
    "http_request.uid",
    "http_request.user_agent",
    "http_request.url.path",
    "unmapped",
];

/// The user an Authentication or Account Change record is about (a User target, else the
/// actor).
const USER: &[&str] = &[
    "user.uid",
    "user.type_id",
    "user.name",
    "user.email_addr",
    "user.full_name",
];

impl Source for OktaSystemLog {
    fn manifest() -> Manifest {
        Manifest::new("okta-system-log", env!("CARGO_PKG_VERSION"))
            .product("Okta", "Okta System Log")
            .description(
                "Okta System Log events (the /api/v1/logs shape), as JSON lines or a JSON array",
            )
            .framing(Framing::JsonLines)
            .framing(Framing::JsonRecords)
            .class_sharing(
                class::AUTHENTICATION,
                COMMON,
                &[USER, &["service.uid", "service.name", "session.uid"]].concat(),
            )
            .class_sharing(
                class::ACCOUNT_CHANGE,
                COMMON,
                &[USER, &["user.groups.uid", "user.groups.name"]].concat(),
            )
            .class_sharing(
                class::API_ACTIVITY,
                COMMON,
                &[
                    "api.operation",
                    "api.request.uid",
                    "src_endpoint.svc_name",
                    "resources.uid",
                    "resources.name",
                    "resources.type",
                ],
            )
    }

    fn translate(record: &[u8], out: &mut Output<'_>) -> Result<(), Reject> {
        let mut r = JsonRecord::parse(record)?;
        let published = r
            .take_str("published")
            .ok_or_else(|| Reject::at("published", "missing: every System Log event has one"))?;
        let time = time::parse_rfc3339_ms(&published).ok_or_else(|| {
            Reject::at(
                "published",
                format!("`{published}` is not an RFC 3339 timestamp"),
            )
        })?;
        let event_type = r
            .take_str("eventType")
            .ok_or_else(|| Reject::at("eventType", "missing: every System Log event has one"))?;
        let mut unmapped = Unmapped::default();
        let mut cx = Context::read(&mut r, &mut unmapped);
        let targets = Targets::read(&mut r, &mut unmapped);

        let mut metadata = ocsf::metadata("Okta", "Okta System Log");
        metadata.uid = r.take_str("uuid");
        metadata.event_code = Some(event_type.clone());
        metadata.correlation_uid = cx.transaction.take();
        metadata.profiles = vec!["datetime".into()];
        if let Some(product) = metadata.product.as_mut() {
            product.version = r.take_str("version");
        }
        let message = r
            .take_str("displayMessage")
            .map(|m| ocsf::fit_string("displayMessage", m, &mut unmapped));
        let kind = classify::classify(&event_type);
        let user_or_actor = |targets: &Targets, actor: &Option<Box<User>>| {
            targets.user.clone().map(Box::new).or_else(|| actor.clone())
        };
        // The attributes every class shares, then the class's own.
        macro_rules! ocsf_record {
            ($class:ident, $activity:expr, $($status:ident)::+; $($field:ident: $value:expr),* $(,)?) => {
                ocsf::$class {
                    activity_id: $activity,
                    // An activity OCSF 1.1.0 has no value for is Other, named after the event type.
                    activity_name: ($activity.id() == 99).then(|| event_type.clone()),
                    severity_id: cx.severity,
                    time: Some(time),
                    time_dt: Some(ocsf::Datetime(time)),
                    status_id: cx.status.and_then(|s| $($status)::+::from_id(s.id())),
                    status: cx.status.and_then(|s| s.other_label()),
                    status_detail: cx.status_detail,
                    message,
                    metadata: Some(metadata),
                    actor: Some(cx.actor),
                    http_request: cx.http_request,
                    unmapped: Some(unmapped),
                    $($field: $value,)*
                    ..Default::default()
                }
            };
        }
        match kind {
            Kind::Authentication(activity) => {
                let user = user_or_actor(&targets, &cx.actor.user).ok_or_else(|| {
                    Reject::at("target", "no user: neither a User target nor a user actor")
                })?;
                let session = cx
                    .actor
                    .session
                    .as_ref()
                    .and_then(|s| s.uid.clone())
                    .map(|uid| {
                        Box::new(ocsf::Session {
                            uid: Some(uid),
                            ..Default::default()
                        })
                    });
                // 3002 needs `service` or `dst_endpoint`: the application signed in to, or Okta itself.
                let service = targets.app.clone().unwrap_or(ocsf::Service {
                    name: Some("Okta".into()),
                    ..Default::default()
                });
                targets.finish(&mut unmapped);
                r.into_unmapped("", &mut unmapped);
                out.emit(
                    &ocsf_record!(Authentication, activity, ocsf::AuthenticationStatus;
                        src_endpoint: cx.src_endpoint,
                        user: Some(user),
                        service: Some(Box::new(service)),
                        session: session,
                    ),
                );
            }
            Kind::AccountChange(activity) => {
                let mut user = user_or_actor(&targets, &cx.actor.user).ok_or_else(|| {
                    Reject::at("target", "no user: neither a User target nor a user actor")
                })?;
                user.groups = targets.groups.clone();
                targets.finish(&mut unmapped);
                r.into_unmapped("", &mut unmapped);
                out.emit(
                    &ocsf_record!(AccountChange, activity, ocsf::AccountChangeStatus;
                        src_endpoint: cx.src_endpoint,
                        user: Some(user),
                    ),
                );
            }
            Kind::Api(activity) => {
                let resources = targets.resources(&mut unmapped);
                let request = cx
                    .http_request
                    .as_ref()
                    .and_then(|h| h.uid.clone())
                    .map(|uid| {
                        Box::new(ocsf::Request {
                            uid: Some(uid),
                            ..Default::default()
                        })
                    });
                let api = ocsf::Api {
                    operation: Some(event_type.clone()),
                    request,
                    ..Default::default()
                };
                // API Activity requires a source; events of Okta's own jobs have no client.
                let src_endpoint = cx.src_endpoint.take().unwrap_or_else(|| {
                    Box::new(ocsf::NetworkEndpoint {
                        svc_name: Some("Okta".into()),
                        ..Default::default()
                    })
                });
                r.into_unmapped("", &mut unmapped);
                out.emit(
                    &ocsf_record!(ApiActivity, activity, ocsf::ApiActivityStatus;
                        api: Some(Box::new(api)),
                        src_endpoint: Some(src_endpoint),
                        resources: resources,
                    ),
                );
            }
        }
        Ok(())
    }
}

export_source!(OktaSystemLog);

#[cfg(test)]
mod tests {
    use lakegate_plugin_sdk::host::harness;

    use super::OktaSystemLog;

    #[test]
    fn a_failed_sign_in_is_a_failed_logon_of_the_actor() {
        let record = r#"{"uuid":"u1","published":"2021-06-25T21:27:03.49Z","eventType":"user.session.start","version":"0","displayMessage":"User login to Okta","actor":{"id":"00u1","type":"User","alternateId":"a@example.com","displayName":"A"},"client":{"ipAddress":"192.0.2.4"},"outcome":{"result":"FAILURE","reason":"VERIFICATION_ERROR"}}"#;
        let report = harness::run::<OktaSystemLog>(record.as_bytes()).expect("runs");
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
        let e = &report.accepted[0].event();
        assert_eq!(
            (
                e["class_uid"].as_i64(),
                e["activity_id"].as_i64(),
                e["status_id"].as_i64()
            ),
            (Some(3002), Some(1), Some(2))
        );
        assert_eq!(e["time"], 1_624_656_423_490_i64);
        assert_eq!(e["status_detail"], "VERIFICATION_ERROR");
        assert_eq!(e["user"]["email_addr"], "a@example.com");
        assert_eq!(e["service"]["name"], "Okta");
    }

    #[test]
    fn a_privilege_grant_attaches_a_policy_to_the_target_user() {
        let record = r#"{"uuid":"u2","published":"2021-06-25T21:27:03Z","eventType":"user.account.privilege.grant","actor":{"id":"00u1","type":"User","alternateId":"admin@example.com"},"target":[{"id":"00u9","type":"User","alternateId":"b@example.com","displayName":"B","detailEntry":{"privilegeGranted":"Super administrator"}}],"outcome":{"result":"SUCCESS"}}"#;
        let report = harness::run::<OktaSystemLog>(record.as_bytes()).expect("runs");
        let e = &report.accepted[0].event();
        assert_eq!(
            (e["class_uid"].as_i64(), e["activity_id"].as_i64()),
            (Some(3001), Some(7))
        );
        assert_eq!(e["user"]["uid"], "00u9");
        assert_eq!(
            e["unmapped"]["target[0].detailEntry.privilegeGranted"],
            "Super administrator"
        );
    }
}
