//! Which OCSF class and activity a CloudTrail event becomes, from `eventName` and `eventSource`.

use lakegate_plugin_sdk::ocsf::{
    AccountChangeActivity, ApiActivityActivity, AuthenticationActivity,
};

/// The class of an event with its activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Api(ApiActivityActivity),
    Authentication(AuthenticationActivity),
    AccountChange(AccountChangeActivity),
}

/// Sign-in events of `signin`, `sts` and IAM Identity Center that are logons.
const LOGONS: &[&str] = &[
    "ConsoleLogin",
    "AssumeRole",
    "AssumeRoleWithSAML",
    "AssumeRoleWithWebIdentity",
    "ExternalIdPDirectoryLogin",
    "UserAuthentication",
];
/// Other authentication steps (MFA checks, credential challenges): Authentication, activity Other.
const AUTH_STEPS: &[&str] = &["CheckMfa", "CredentialChallenge", "CredentialVerification"];
const AUTH_SOURCES: &[&str] = &[
    "signin.amazonaws.com",
    "sts.amazonaws.com",
    "sso.amazonaws.com",
    "identitystore.amazonaws.com",
];

pub(crate) fn classify(event_name: &str, event_source: Option<&str>) -> Kind {
    let source_ok = |sources: &[&str]| event_source.is_none_or(|s| sources.contains(&s));
    if LOGONS.contains(&event_name) && source_ok(AUTH_SOURCES) {
        return Kind::Authentication(AuthenticationActivity::Logon);
    }
    if AUTH_STEPS.contains(&event_name) && source_ok(AUTH_SOURCES) {
        return Kind::Authentication(AuthenticationActivity::Other);
    }
    if event_source == Some("iam.amazonaws.com") {
        if let Some(activity) = account_change(event_name) {
            return Kind::AccountChange(activity);
        }
    }
    Kind::Api(api_activity(event_name))
}

/// IAM identity changes (users, roles, their credentials and policies), by verb.
fn account_change(name: &str) -> Option<AccountChangeActivity> {
    const IDENTITIES: &[&str] = &[
        "User",
        "Role",
        "LoginProfile",
        "AccessKey",
        "MFADevice",
        "UserPolicy",
        "RolePolicy",
        "UserPermissionsBoundary",
        "RolePermissionsBoundary",
        "InstanceProfile",
        "ServiceLinkedRole",
        "Group",
        "GroupPolicy",
    ];
    let is_identity =
        |rest: &str| IDENTITIES.iter().any(|i| rest.ends_with(i)) || rest.ends_with("Policy");
    Some(match name {
        "ChangePassword" | "UpdateLoginProfile" => AccountChangeActivity::PasswordChange,
        "EnableMFADevice" | "CreateVirtualMFADevice" | "ResyncMFADevice" => {
            AccountChangeActivity::MFAFactorEnable
        }
        "DeactivateMFADevice" | "DeleteVirtualMFADevice" => AccountChangeActivity::MFAFactorDisable,
        "AddUserToGroup" | "AddRoleToInstanceProfile" => AccountChangeActivity::AttachPolicy,
        "RemoveUserFromGroup" | "RemoveRoleFromInstanceProfile" => {
            AccountChangeActivity::DetachPolicy
        }
        _ => {
            let (verb, rest) = split_verb(name);
            if !is_identity(rest) {
                return None;
            }
            match verb {
                "Create" => AccountChangeActivity::Create,
                "Delete" => AccountChangeActivity::Delete,
                "Attach" | "Put" => AccountChangeActivity::AttachPolicy,
                "Detach" => AccountChangeActivity::DetachPolicy,
                "Update" | "Tag" | "Untag" => AccountChangeActivity::Other,
                _ => return None,
            }
        }
    })
}

fn split_verb(name: &str) -> (&str, &str) {
    let end = name
        .char_indices()
        .skip(1)
        .find(|(_, c)| c.is_ascii_uppercase())
        .map_or(name.len(), |(i, _)| i);
    name.split_at(end)
}

/// API Activity's CRUD verbs, from the operation name's prefix as Security Lake does.
fn api_activity(name: &str) -> ApiActivityActivity {
    match split_verb(name).0 {
        "Create" | "Put" | "Add" | "Run" | "Start" | "Import" | "Register" => {
            ApiActivityActivity::Create
        }
        "Get" | "Describe" | "List" | "Head" | "Lookup" | "Search" | "Select" | "BatchGet" => {
            ApiActivityActivity::Read
        }
        "Update" | "Modify" | "Set" | "Change" | "Enable" | "Disable" | "Attach" | "Detach"
        | "Associate" | "Disassociate" => ApiActivityActivity::Update,
        "Delete" | "Remove" | "Terminate" | "Deregister" => ApiActivityActivity::Delete,
        _ => ApiActivityActivity::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_ins_are_authentication() {
        assert_eq!(
            classify("ConsoleLogin", Some("signin.amazonaws.com")),
            Kind::Authentication(AuthenticationActivity::Logon)
        );
        assert_eq!(
            classify("AssumeRoleWithSAML", Some("sts.amazonaws.com")),
            Kind::Authentication(AuthenticationActivity::Logon)
        );
        assert_eq!(
            classify("CheckMfa", Some("signin.amazonaws.com")),
            Kind::Authentication(AuthenticationActivity::Other)
        );
        // The same name from another service is an ordinary API call.
        assert_eq!(
            classify("AssumeRole", Some("example.amazonaws.com")),
            Kind::Api(ApiActivityActivity::Other)
        );
    }

    #[test]
    fn iam_identity_changes_are_account_change() {
        let iam = Some("iam.amazonaws.com");
        assert_eq!(
            classify("CreateUser", iam),
            Kind::AccountChange(AccountChangeActivity::Create)
        );
        assert_eq!(
            classify("DeleteRole", iam),
            Kind::AccountChange(AccountChangeActivity::Delete)
        );
        assert_eq!(
            classify("AttachRolePolicy", iam),
            Kind::AccountChange(AccountChangeActivity::AttachPolicy)
        );
        assert_eq!(
            classify("RemoveRoleFromInstanceProfile", iam),
            Kind::AccountChange(AccountChangeActivity::DetachPolicy)
        );
        assert_eq!(
            classify("ListUsers", iam),
            Kind::Api(ApiActivityActivity::Read)
        );
        assert_eq!(
            classify("CreateUser", Some("workmail.amazonaws.com")),
            Kind::Api(ApiActivityActivity::Create)
        );
    }

    #[test]
    fn api_verbs() {
        assert_eq!(api_activity("DescribeInstances"), ApiActivityActivity::Read);
        assert_eq!(api_activity("UpdateTrail"), ApiActivityActivity::Update);
        assert_eq!(
            api_activity("DeleteLoadBalancer"),
            ApiActivityActivity::Delete
        );
        assert_eq!(api_activity("UnknownAPI"), ApiActivityActivity::Other);
        assert_eq!(api_activity("X"), ApiActivityActivity::Other);
    }
}
