//! AWS CloudTrail to OCSF 1.1.0: sign-ins and role assumptions to Authentication (3002), IAM
//! identity changes to Account Change (3001), every other call to API Activity (6003).
//!
//! The mapping follows what Amazon Security Lake does for its own CloudTrail source (version 2),
//! with the strict-1.1.0 fixes noted inline.

/// Emits an OCSF class built from a [`Common`]: the attributes every CloudTrail class shares,
/// then the class's own. `ok` picks Success or Failure of the class's status enum. The record's
/// `metadata` and `cloud` are kept for the next record to fill in (see `KEPT`).
macro_rules! emit_record {
    ($out:expr, $class:ident, $event:ident, $activity:expr, ok: $ok:expr, $($status:ident)::+; $($field:ident: $value:expr),* $(,)?) => {{
        let record = ocsf::$class {
            activity_id: $activity,
            // An activity OCSF 1.1.0 has no value for is Other, named after the event.
            activity_name: ($activity.id() == 99).then(|| $event.api_operation.clone()),
            severity_id: ocsf::Severity::Informational,
            time: Some($event.time),
            time_dt: Some(Datetime($event.time)),
            status_id: Some(if $ok { $($status)::+::Success } else { $($status)::+::Failure }),
            status_code: $event.error_code,
            status_detail: $event.error_message,
            metadata: Some($event.metadata),
            cloud: Some($event.cloud),
            actor: Some($event.actor),
            api: Some($event.api),
            http_request: $event.http_request,
            unmapped: Some($event.unmapped),
            $($field: $value,)*
            ..Default::default()
        };
        $out.emit(&record);
        if let (Some(metadata), Some(cloud)) = (record.metadata, record.cloud) {
            $crate::KEPT.set(Some((metadata, cloud)));
        }
    }};
}

mod classify;
mod identity;

use lakegate_plugin_sdk::input::{keep_raw, JsonRecord};
use lakegate_plugin_sdk::ocsf::{
    self, class, time, Api, Cloud, Datetime, HttpRequest, Json, NetworkEndpoint, Request,
    ResourceDetails, Response, Unmapped,
};
use lakegate_plugin_sdk::{export_source, Framing, Manifest, Output, Reject, Source};

use classify::Kind;

/// The CloudTrail plugin.
pub struct CloudTrail;

/// Attributes every class of this plugin sets.
const COMMON: &[&str] = &[
    "time",
    "time_dt",
    "severity_id",
    "status_id",
    "status",
    "status_code",
    "status_detail",
    "message",
    "metadata.version",
    "metadata.uid",
    "metadata.event_code",
    "metadata.profiles",
    "metadata.product.name",
    "metadata.product.vendor_name",
    "metadata.product.version",
    "metadata.product.feature.name",
    "cloud.provider",
    "cloud.region",
    "cloud.account.uid",
    "actor.user.type_id",
    "actor.user.uid",
    "actor.user.uid_alt",
    "actor.user.name",
    "actor.user.credential_uid",
    "actor.user.account.uid",
    "actor.invoked_by",
    "actor.idp.name",
    "actor.idp.uid",
    "actor.session.created_time",
    "actor.session.created_time_dt",
    "actor.session.is_mfa",
    "actor.session.issuer",
    "api.operation",
    "api.service.name",
    "api.version",
    "api.request.uid",
    "api.request.data",
    "api.response.data",
    "api.response.error",
    "api.response.message",
    "src_endpoint.ip",
    "src_endpoint.domain",
    "src_endpoint.svc_name",
    "src_endpoint.uid",
    "http_request.user_agent",
    "unmapped",
];

/// The user an Authentication or Account Change record is about: the actor's user attributes.
const USER: &[&str] = &[
    "user.type_id",
    "user.uid",
    "user.uid_alt",
    "user.name",
    "user.credential_uid",
    "user.account.uid",
];

impl Source for CloudTrail {
    fn manifest() -> Manifest {
        Manifest::new("aws-cloudtrail", env!("CARGO_PKG_VERSION"))
            .product("AWS", "CloudTrail")
            .description(
                "AWS CloudTrail management and data events, as JSON lines or CloudTrail S3 objects",
            )
            .framing(Framing::JsonLines)
            .framing(Framing::JsonRecords)
            .class_sharing(
                class::API_ACTIVITY,
                COMMON,
                &[
                    "resources.uid",
                    "resources.type",
                    "resources.owner.account.uid",
                ],
            )
            .class_sharing(
                class::AUTHENTICATION,
                COMMON,
                &[USER, &["is_mfa", "dst_endpoint.svc_name", "service.name"]].concat(),
            )
            .class_sharing(class::ACCOUNT_CHANGE, COMMON, USER)
    }

    fn translate(record: &[u8], out: &mut Output<'_>) -> Result<(), Reject> {
        let mut r = JsonRecord::parse(record)?;
        let event = Common::read(&mut r)?;
        match classify::classify(&event.api_operation, event.api_service.as_deref()) {
            Kind::Api(activity) => emit_api(event, activity, r, out),
            Kind::Authentication(activity) => {
                identity::emit_authentication(event, activity, r, out)
            }
            Kind::AccountChange(activity) => identity::emit_account_change(event, activity, r, out),
        }
    }
}

export_source!(CloudTrail);

thread_local! {
    /// `metadata` and `cloud` of the previous record, taken back after it is emitted: their
    /// constant parts (OCSF version, product, profiles, provider) were a dozen allocations per
    /// record. Every member a record sets in them is set or cleared for each record.
    static KEPT: std::cell::Cell<Option<(Box<ocsf::Metadata>, Box<Cloud>)>> =
        const { std::cell::Cell::new(None) };
}

/// What every CloudTrail record carries, read once whatever its class.
pub(crate) struct Common {
    pub(crate) time: i64,
    pub(crate) api_operation: String,
    pub(crate) api_service: Option<String>,
    pub(crate) metadata: Box<ocsf::Metadata>,
    pub(crate) cloud: Box<Cloud>,
    pub(crate) actor: Box<ocsf::Actor>,
    pub(crate) src_endpoint: Option<Box<NetworkEndpoint>>,
    pub(crate) http_request: Option<Box<HttpRequest>>,
    pub(crate) error_code: Option<String>,
    pub(crate) error_message: Option<String>,
    pub(crate) api: Box<Api>,
    pub(crate) unmapped: Unmapped,
}

impl Common {
    fn read(r: &mut JsonRecord<'_>) -> Result<Common, Reject> {
        let event_time = r
            .take_str("eventTime")
            .ok_or_else(|| Reject::at("eventTime", "missing: every CloudTrail record has one"))?;
        let time = time::parse_rfc3339_ms(&event_time).ok_or_else(|| {
            Reject::at(
                "eventTime",
                format!("`{event_time}` is not an RFC 3339 timestamp"),
            )
        })?;
        let api_operation = r
            .take_str("eventName")
            .ok_or_else(|| Reject::at("eventName", "missing: every CloudTrail record has one"))?;
        let api_service = r.take_str("eventSource");
        let mut unmapped = Unmapped::default();

        let (mut metadata, mut cloud) = KEPT.take().unwrap_or_else(|| {
            let mut metadata = ocsf::metadata("AWS", "CloudTrail");
            metadata.profiles = vec!["cloud".into(), "datetime".into()];
            let cloud = Box::new(Cloud {
                provider: Some("AWS".into()),
                ..Default::default()
            });
            (metadata, cloud)
        });
        metadata.uid = r.take_str("eventID");
        metadata.event_code = r.take_str("eventType");
        if let Some(product) = metadata.product.as_mut() {
            product.version = r.take_str("eventVersion");
            // Security Lake's label when a record predates `eventCategory`.
            let feature = r
                .take_str("eventCategory")
                .unwrap_or_else(|| "Management, Data, and Insights".into());
            product.feature.get_or_insert_default().name = Some(feature);
        }
        cloud.region = r.take_str("awsRegion");
        match r.take_str("recipientAccountId") {
            Some(uid) => cloud.account.get_or_insert_default().uid = Some(uid),
            None => cloud.account = None,
        }
        let identity = r.take_object("userIdentity").ok_or_else(|| {
            Reject::at(
                "userIdentity",
                "missing: the actor of a CloudTrail record comes from it",
            )
        })?;
        let actor = identity::actor(identity, &mut unmapped);
        let src_endpoint = r.take_str("sourceIPAddress").map(|source| {
            let mut endpoint = NetworkEndpoint {
                uid: r.take_str("vpcEndpointId"),
                ..Default::default()
            };
            match ocsf::ip(&source) {
                Some(ip) => endpoint.ip = Some(ip),
                None => {
                    // A service principal such as `cloudformation.amazonaws.com`, or `AWS Internal`:
                    // `domain` keeps parity with Security Lake, `svc_name` satisfies the endpoint's
                    // at-least-one constraint, which `domain` alone does not.
                    endpoint.domain = Some(source.clone());
                    endpoint.svc_name = Some(source);
                }
            }
            Box::new(endpoint)
        });
        let http_request = r.take_str("userAgent").map(|ua| {
            Box::new(HttpRequest {
                user_agent: Some(ocsf::fit_string("userAgent", ua, &mut unmapped)),
                ..Default::default()
            })
        });
        let error_code = r.take_str("errorCode");
        let error_message = r
            .take_str("errorMessage")
            .map(|m| ocsf::fit_string("errorMessage", m, &mut unmapped));
        let api = Box::new(Api {
            operation: Some(api_operation.clone()),
            service: api_service.clone().map(|name| {
                Box::new(ocsf::Service {
                    name: Some(name),
                    ..Default::default()
                })
            }),
            version: r.take_str("apiVersion"),
            request: None,
            response: None,
            ..Default::default()
        });
        Ok(Common {
            time,
            api_operation,
            api_service,
            metadata,
            cloud,
            actor: Box::new(actor),
            src_endpoint,
            http_request,
            error_code,
            error_message,
            api,
            unmapped,
        })
    }

    /// Fills `api.request` and `api.response` from the rest of the record.
    pub(crate) fn finish_api(&mut self, r: &mut JsonRecord<'_>) {
        // The request and response documents go through as their original text (`json_t`).
        let request_parameters = r.take("requestParameters");
        match r.take_str("requestID") {
            Some(uid) => {
                self.api.request = Some(Box::new(Request {
                    uid: Some(uid),
                    data: request_parameters.map(Json::raw),
                    ..Default::default()
                }))
            }
            // `request.uid` is required in the object; without it the parameters stay unmapped.
            None => {
                if let Some(params) = request_parameters {
                    keep_raw("requestParameters", params, &mut self.unmapped);
                }
            }
        }
        let response_elements = r.take("responseElements");
        if response_elements.is_some() || self.error_code.is_some() || self.error_message.is_some()
        {
            self.api.response = Some(Box::new(Response {
                data: response_elements.map(Json::raw),
                error: self.error_code.clone(),
                message: self.error_message.clone(),
                ..Default::default()
            }));
        }
    }
}

fn emit_api(
    mut event: Common,
    activity: ocsf::ApiActivityActivity,
    mut r: JsonRecord<'_>,
    out: &mut Output<'_>,
) -> Result<(), Reject> {
    event.finish_api(&mut r);
    let resources = resources(&mut r, &mut event.unmapped);
    let src_endpoint = event.src_endpoint.take().ok_or_else(|| {
        Reject::at(
            "sourceIPAddress",
            "missing: API Activity requires a source endpoint",
        )
    })?;
    let ok = event.error_code.is_none();
    // TLS details have no attribute in OCSF 1.1.0 API Activity: they are kept in `unmapped`.
    r.into_unmapped("", &mut event.unmapped);
    emit_record!(out, ApiActivity, event, activity, ok: ok, ocsf::ApiActivityStatus;
        src_endpoint: Some(src_endpoint),
        resources: resources,
    );
    Ok(())
}

/// `resources[]` of API Activity, from CloudTrail's `resources` (`ARN`, `type`, `accountId`).
fn resources(r: &mut JsonRecord<'_>, unmapped: &mut Unmapped) -> Vec<ResourceDetails> {
    let Some(items) = r.take_array("resources") else {
        return Vec::new();
    };
    let mut kept = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let key = format!("resources[{i}]");
        let Some(mut res) = JsonRecord::from_raw(item, |other| keep_raw(&key, other, unmapped))
        else {
            continue;
        };
        // `resource_details` needs a uid or a name; an entry without an ARN stays unmapped whole.
        let Some(uid) = res.take_str("ARN") else {
            res.into_unmapped(&key, unmapped);
            continue;
        };
        let owner = res.take_str("accountId").map(|uid| {
            Box::new(ocsf::User {
                account: Some(Box::new(ocsf::Account {
                    uid: Some(uid),
                    ..Default::default()
                })),
                ..Default::default()
            })
        });
        kept.push(ResourceDetails {
            uid: Some(uid),
            r#type: res.take_str("type"),
            owner,
            ..Default::default()
        });
        res.into_unmapped(&key, unmapped);
    }
    kept
}

#[cfg(test)]
mod tests {
    use lakegate_plugin_sdk::host::harness;
    use lakegate_plugin_sdk::host::runner::Stage;

    use super::CloudTrail;

    const CONSOLE_LOGIN: &str = r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDA1","arn":"arn:aws:iam::111122223333:user/alice","accountId":"111122223333","userName":"alice"},"eventTime":"2024-03-01T12:00:00Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.7","userAgent":"Mozilla/5.0","requestParameters":null,"responseElements":{"ConsoleLogin":"Success"},"additionalEventData":{"LoginTo":"https://console.aws.amazon.com/","MFAUsed":"Yes"},"eventID":"e1","eventType":"AwsConsoleSignIn","recipientAccountId":"111122223333"}"#;

    #[test]
    fn console_login_is_a_successful_mfa_logon() {
        let report = harness::run::<CloudTrail>(CONSOLE_LOGIN.as_bytes()).expect("runs");
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
        let e = &report.accepted[0].event();
        assert_eq!(
            (
                e["class_uid"].as_i64(),
                e["activity_id"].as_i64(),
                e["type_uid"].as_i64()
            ),
            (Some(3002), Some(1), Some(300201))
        );
        assert_eq!(e["status_id"], 1);
        assert_eq!(e["is_mfa"], true);
        assert_eq!(e["user"]["uid"], "arn:aws:iam::111122223333:user/alice");
        assert_eq!(
            e["dst_endpoint"]["svc_name"],
            "https://console.aws.amazon.com/"
        );
        assert_eq!(e["metadata"]["event_code"], "AwsConsoleSignIn");
        assert_eq!(e["cloud"]["account"]["uid"], "111122223333");
    }

    #[test]
    fn an_error_code_is_a_failed_api_call_and_tls_details_stay_unmapped() {
        let record = r#"{"eventTime":"2024-03-01T12:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/r/s","accountId":"1"},"sourceIPAddress":"192.0.2.1","errorCode":"AccessDenied","errorMessage":"Access Denied","requestID":"r1","tlsDetails":{"tlsVersion":"TLSv1.2"}}"#;
        let report = harness::run::<CloudTrail>(record.as_bytes()).expect("runs");
        let e = &report.accepted[0].event();
        assert_eq!(
            (
                e["class_uid"].as_i64(),
                e["activity_id"].as_i64(),
                e["status_id"].as_i64()
            ),
            (Some(6003), Some(2), Some(2))
        );
        assert_eq!(e["status_code"], "AccessDenied");
        assert_eq!(e["api"]["response"]["error"], "AccessDenied");
        assert_eq!(e["unmapped"]["tlsDetails.tlsVersion"], "TLSv1.2");
    }

    #[test]
    fn every_record_is_as_if_translated_alone_though_metadata_and_cloud_are_reused() {
        let full = r#"{"eventVersion":"1.09","eventCategory":"Data","userIdentity":{"type":"AWSService","invokedBy":"s3.amazonaws.com"},"eventTime":"2024-03-01T12:00:01Z","eventSource":"s3.amazonaws.com","eventName":"PutObject","awsRegion":"eu-west-1","sourceIPAddress":"s3.amazonaws.com","requestID":"r2","eventID":"e2","eventType":"AwsApiCall","recipientAccountId":"444455556666"}"#;
        let bare = r#"{"userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/bob","accountId":"1"},"eventTime":"2024-03-01T12:00:02Z","eventSource":"iam.amazonaws.com","eventName":"CreateUser","sourceIPAddress":"192.0.2.9","requestParameters":{"userName":"carol"},"requestID":"r3"}"#;
        let records = [
            full,
            CONSOLE_LOGIN,
            bare,
            r#"{"eventName":"GetObject"}"#,
            full,
        ];
        let outcome = |input: String| {
            let report = harness::run::<CloudTrail>(input.as_bytes()).expect("runs");
            let events: Vec<_> = report.accepted.iter().map(|a| a.event()).collect();
            let reasons: Vec<_> = report.rejected.iter().map(|r| r.reason.clone()).collect();
            (events, reasons)
        };
        let together = outcome(records.join("\n"));
        // Alone: each in a thread of its own, where the kept objects start afresh.
        let mut alone = (Vec::new(), Vec::new());
        for record in records {
            let (events, reasons) = std::thread::spawn(move || outcome(record.to_string()))
                .join()
                .expect("runs");
            alone.0.extend(events);
            alone.1.extend(reasons);
        }
        assert_eq!((together.0.len(), together.1.len()), (4, 1));
        assert_eq!(together, alone);
        let e = &together.0;
        assert_eq!(e[0]["metadata"]["product"]["feature"]["name"], "Data");
        assert_eq!(
            e[2]["metadata"]["product"]["version"],
            serde_json::Value::Null
        );
        assert_eq!(
            e[2]["metadata"]["product"]["feature"]["name"],
            "Management, Data, and Insights"
        );
        assert_eq!(e[2]["cloud"]["account"], serde_json::Value::Null);
        assert_eq!(e[3]["cloud"]["account"]["uid"], "444455556666");
    }

    #[test]
    fn a_record_without_time_is_rejected_with_the_field() {
        let report = harness::run::<CloudTrail>(br#"{"eventName":"GetObject"}"#).expect("runs");
        let r = &report.rejected[0];
        assert_eq!(
            (r.stage, r.path.as_deref()),
            (Stage::Translation, Some("eventTime"))
        );
    }
}
