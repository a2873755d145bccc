//! Which OCSF class and activity an Okta `eventType` becomes. Only activities that exist in
//! OCSF 1.1.0 are used; newer ones (Preauth, Unlock) become Other with the event type as name.

use lakegate_plugin_sdk::ocsf::{
    AccountChangeActivity as Change, ApiActivityActivity as Api, AuthenticationActivity as Auth,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Authentication(Auth),
    AccountChange(Change),
    Api(Api),
}

pub(crate) fn classify(event_type: &str) -> Kind {
    use Kind::*;
    match event_type {
        "user.session.start"
        | "user.session.access_admin_app"
        | "policy.evaluate_sign_on"
        | "app.generic.unauth_app_access_attempt"
        | "application.policy.sign_on.deny_access"
        | "app.oauth2.authorize"
        | "app.oauth2.authorize.code" => Authentication(Auth::Logon),
        "user.session.end" | "user.session.clear" | "user.authentication.slo" => {
            Authentication(Auth::Logoff)
        }
        "system.push.send_factor_verify_push" => Authentication(Auth::Other),
        "user.lifecycle.create" => AccountChange(Change::Create),
        "user.lifecycle.activate" | "user.lifecycle.reactivate" | "user.lifecycle.unsuspend" => {
            AccountChange(Change::Enable)
        }
        "user.lifecycle.deactivate"
        | "user.lifecycle.suspend"
        | "user.lifecycle.password_mass_expiry" => AccountChange(Change::Disable),
        "user.lifecycle.delete.initiated" | "user.lifecycle.delete.completed" => {
            AccountChange(Change::Delete)
        }
        "user.account.update_password" => AccountChange(Change::PasswordChange),
        "user.account.reset_password" => AccountChange(Change::PasswordReset),
        "user.account.lock" | "user.account.lock.limit" => AccountChange(Change::Lock),
        "user.account.privilege.grant" => AccountChange(Change::AttachPolicy),
        "user.account.privilege.revoke" => AccountChange(Change::DetachPolicy),
        "user.mfa.factor.activate" => AccountChange(Change::MFAFactorEnable),
        "user.mfa.factor.deactivate" | "user.mfa.factor.reset_all" => {
            AccountChange(Change::MFAFactorDisable)
        }
        t if t.starts_with("app.oauth2.as.authorize") => Authentication(Auth::Logon),
        t if t.starts_with("user.authentication.") => Authentication(
            if t.starts_with("user.authentication.auth_via")
                || t.ends_with(".sso")
                || t.ends_with(".verify")
            {
                Auth::Logon
            } else {
                Auth::Other
            },
        ),
        t if t.starts_with("user.session.") => Authentication(Auth::Other),
        t if t.starts_with("user.account.")
            || t.starts_with("user.mfa.factor.")
            || t.starts_with("user.lifecycle.") =>
        {
            AccountChange(Change::Other)
        }
        t => Api(api_verb(t)),
    }
}

/// CRUD from the verbs in the event type's segments.
fn api_verb(event_type: &str) -> Api {
    for segment in event_type.rsplit('.') {
        let verb = segment.split('_').next().unwrap_or_default();
        match verb {
            "create" | "add" | "grant" => return Api::Create,
            "read" => return Api::Read,
            "update" | "change" => return Api::Update,
            "delete" | "remove" | "revoke" => return Api::Delete,
            _ => {}
        }
    }
    Api::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_map_to_classes() {
        assert_eq!(
            classify("user.session.start"),
            Kind::Authentication(Auth::Logon)
        );
        assert_eq!(
            classify("user.session.end"),
            Kind::Authentication(Auth::Logoff)
        );
        assert_eq!(
            classify("user.authentication.auth_via_mfa"),
            Kind::Authentication(Auth::Logon)
        );
        assert_eq!(
            classify("user.authentication.authenticate"),
            Kind::Authentication(Auth::Other)
        );
        assert_eq!(
            classify("user.lifecycle.create"),
            Kind::AccountChange(Change::Create)
        );
        assert_eq!(
            classify("user.account.unlock"),
            Kind::AccountChange(Change::Other)
        );
        assert_eq!(
            classify("user.mfa.factor.activate"),
            Kind::AccountChange(Change::MFAFactorEnable)
        );
        assert_eq!(
            classify("group.user_membership.add"),
            Kind::Api(Api::Create)
        );
        assert_eq!(
            classify("system.idp.lifecycle.read_client_secret"),
            Kind::Api(Api::Read)
        );
        assert_eq!(classify("app.oauth2.token.revoke"), Kind::Api(Api::Delete));
        assert_eq!(classify("app.user_management"), Kind::Api(Api::Other));
    }
}
