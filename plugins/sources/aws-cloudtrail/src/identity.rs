//! Identities: the actor from `userIdentity`, and the Authentication and Account Change classes
//! whose subject is a user.

use lakegate_plugin_sdk::input::JsonRecord;
use lakegate_plugin_sdk::ocsf::{
    self, time, Account, AccountChangeActivity, Actor, AuthenticationActivity, Datetime, Idp, Json,
    NetworkEndpoint, Session, Unmapped, User, UserType,
};
use lakegate_plugin_sdk::{Output, Reject};

use crate::Common;

/// The actor of a CloudTrail record. Handles every `userIdentity.type`: `Root`, `IAMUser`,
/// `AssumedRole`, `FederatedUser`, `AWSAccount`, `AWSService`, `IdentityCenterUser`, `Unknown`.
pub(crate) fn actor(mut id: JsonRecord<'_>, unmapped: &mut Unmapped) -> Actor {
    let kind = id.take_str("type");
    let type_id = match kind.as_deref() {
        Some("Root") => UserType::Admin,
        Some("IAMUser" | "AssumedRole" | "FederatedUser" | "IdentityCenterUser" | "AWSAccount") => {
            UserType::User
        }
        Some("AWSService") => UserType::System,
        Some("Unknown") | None => UserType::Unknown,
        Some(_) => UserType::Other,
    };
    let invoked_by = id.take_str("invokedBy");
    let mut user = User {
        r#type: kind,
        type_id: Some(type_id),
        uid: id.take_str("arn"),
        uid_alt: id.take_str("principalId"),
        name: id.take_str("userName"),
        credential_uid: id
            .take_str("accessKeyId")
            .or_else(|| id.take_str("credentialId")),
        account: id.take_str("accountId").map(|uid| {
            Box::new(Account {
                uid: Some(uid),
                ..Default::default()
            })
        }),
        ..Default::default()
    };
    let mut idp = id.take_str("identityProvider").map(|name| {
        Box::new(Idp {
            name: Some(name),
            ..Default::default()
        })
    });
    if let Some(mut on_behalf) = id.take_object("onBehalfOf") {
        user.uid_alt = on_behalf.take_str("userId").or(user.uid_alt.take());
        if let Some(store) = on_behalf.take_str("identityStoreArn") {
            idp.get_or_insert_default().uid = Some(store);
        }
        on_behalf.into_unmapped("userIdentity.onBehalfOf", unmapped);
    }
    let mut session = None;
    if let Some(mut context) = id.take_object("sessionContext") {
        let mut s = Session::default();
        if let Some(mut attributes) = context.take_object("attributes") {
            if let Some(created) = attributes.take_str("creationDate") {
                match time::parse_rfc3339_ms(&created) {
                    Some(ms) => {
                        s.created_time = Some(ms);
                        s.created_time_dt = Some(Datetime(ms));
                    }
                    None => unmapped.insert(
                        "userIdentity.sessionContext.attributes.creationDate",
                        created,
                    ),
                }
            }
            match attributes.take_str("mfaAuthenticated").as_deref() {
                Some("true") => s.is_mfa = Some(true),
                Some("false") => s.is_mfa = Some(false),
                Some(other) => unmapped.insert(
                    "userIdentity.sessionContext.attributes.mfaAuthenticated",
                    other,
                ),
                None => {}
            }
            attributes.into_unmapped("userIdentity.sessionContext.attributes", unmapped);
        }
        if let Some(mut issuer) = context.take_object("sessionIssuer") {
            s.issuer = issuer.take_str("arn");
            issuer.into_unmapped("userIdentity.sessionContext.sessionIssuer", unmapped);
        }
        if let Some(mut federation) = context.take_object("webIdFederationData") {
            if let Some(provider) = federation.take_str("federatedProvider") {
                idp.get_or_insert_default().name = Some(provider);
            }
            federation.into_unmapped("userIdentity.sessionContext.webIdFederationData", unmapped);
        }
        context.into_unmapped("userIdentity.sessionContext", unmapped);
        if s != Session::default() {
            session = Some(Box::new(s));
        }
    }
    // An AWS service acting on its own has no ARN or account: name it after the service.
    if user.uid.is_none() && user.name.is_none() && user.account.is_none() {
        user.name = invoked_by.clone();
    }
    id.into_unmapped("userIdentity", unmapped);
    let has_user = user.uid.is_some() || user.name.is_some() || user.account.is_some();
    Actor {
        user: has_user.then(|| Box::new(user)),
        invoked_by,
        idp,
        session,
        ..Default::default()
    }
}

/// Status of a sign-in: `responseElements.<eventName>` ("Success"/"Failure") when present,
/// otherwise from `errorCode`.
fn sign_in_succeeded(event: &Common) -> bool {
    let response = event.api.response.as_ref().and_then(|r| r.data.as_ref());
    match response
        .and_then(|d| d.str_member(&event.api_operation))
        .as_deref()
    {
        Some("Success") => true,
        Some("Failure") => false,
        _ => event.error_code.is_none(),
    }
}

pub(crate) fn emit_authentication(
    mut event: Common,
    activity: AuthenticationActivity,
    mut r: JsonRecord<'_>,
    out: &mut Output<'_>,
) -> Result<(), Reject> {
    event.finish_api(&mut r);
    let mut is_mfa = None;
    let mut dst_endpoint = None;
    if let Some(mut extra) = r.take_object("additionalEventData") {
        is_mfa = match extra.take_str("MFAUsed").as_deref() {
            Some("Yes") => Some(true),
            Some("No") => Some(false),
            Some(other) => {
                event.unmapped.insert("additionalEventData.MFAUsed", other);
                None
            }
            None => None,
        };
        dst_endpoint = extra.take_str("LoginTo").map(|svc| {
            Box::new(NetworkEndpoint {
                svc_name: Some(svc),
                ..Default::default()
            })
        });
        extra.into_unmapped("additionalEventData", &mut event.unmapped);
    }
    // The user who signs in: for role assumptions, the role session; otherwise the actor.
    let params = event.api.request.as_ref().and_then(|r| r.data.as_ref());
    let role_arn = params.and_then(|p| p.str_member("roleArn"));
    let session_name = params.and_then(|p| p.str_member("roleSessionName"));
    let user = match (role_arn, session_name) {
        (None, None) => event.actor.user.clone(),
        (uid, name) => Some(Box::new(User {
            uid,
            name,
            r#type: Some("AssumedRole".into()),
            type_id: Some(UserType::User),
            ..Default::default()
        })),
    }
    .ok_or_else(|| {
        Reject::at(
            "userIdentity",
            "no user to authenticate: neither the identity nor roleArn/roleSessionName names one",
        )
    })?;
    let ok = sign_in_succeeded(&event);
    // 3002 needs `service` or `dst_endpoint`: the signing-in service is always known.
    let service = event.api_service.clone().map(|name| {
        Box::new(ocsf::Service {
            name: Some(name),
            ..Default::default()
        })
    });
    r.into_unmapped("", &mut event.unmapped);
    emit_record!(out, Authentication, event, activity, ok: ok, ocsf::AuthenticationStatus;
        src_endpoint: event.src_endpoint,
        user: Some(user),
        is_mfa: is_mfa,
        dst_endpoint: dst_endpoint,
        service: service,
    );
    Ok(())
}

pub(crate) fn emit_account_change(
    mut event: Common,
    activity: AccountChangeActivity,
    mut r: JsonRecord<'_>,
    out: &mut Output<'_>,
) -> Result<(), Reject> {
    event.finish_api(&mut r);
    // The changed identity: names from the request (more reliable than the response, which for
    // service roles can carry a description), ids from the response.
    let request = event
        .api
        .request
        .as_ref()
        .and_then(|r| r.data.as_ref())
        .map(Json::to_value);
    let response = event
        .api
        .response
        .as_ref()
        .and_then(|r| r.data.as_ref())
        .map(Json::to_value);
    let (request, response) = (request.as_ref(), response.as_ref());
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_string);
    let name = text(request.and_then(|p| {
        p.get("userName")
            .or_else(|| p.get("roleName"))
            .or_else(|| p.get("groupName"))
    }));
    let created = response.and_then(|d| d.get("user").or_else(|| d.get("role")));
    let uid = text(created.and_then(|c| c.get("arn")));
    let uid_alt = text(created.and_then(|c| c.get("userId").or_else(|| c.get("roleId"))));
    let user = if name.is_some() || uid.is_some() {
        Box::new(User {
            name,
            uid,
            uid_alt,
            type_id: Some(UserType::User),
            ..Default::default()
        })
    } else {
        // Calls on the caller's own credentials (e.g. ChangePassword) change the actor.
        event.actor.user.clone().ok_or_else(|| {
            Reject::at(
                "requestParameters",
                "no changed identity: no userName, roleName or groupName, and no actor user",
            )
        })?
    };
    let ok = event.error_code.is_none();
    r.into_unmapped("", &mut event.unmapped);
    emit_record!(out, AccountChange, event, activity, ok: ok, ocsf::AccountChangeStatus;
        src_endpoint: event.src_endpoint,
        user: Some(user),
    );
    Ok(())
}
