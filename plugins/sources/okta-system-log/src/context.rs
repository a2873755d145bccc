//! The parts of an Okta event shared by every class: actor, client, request, outcome, and the
//! `target[]` list.

use lakegate_plugin_sdk::input::{keep_raw, JsonRecord};
use lakegate_plugin_sdk::ocsf::{
    self, Actor, Group, HttpRequest, Location, NetworkEndpoint, Os, OsType, ResourceDetails,
    Service, Session, Severity, Unmapped, Url, User, UserType,
};

/// `outcome.result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success,
    Failure,
    Challenge,
    Unknown,
}

impl Outcome {
    fn parse(s: &str) -> Outcome {
        match s {
            "SUCCESS" | "ALLOW" => Outcome::Success,
            "FAILURE" | "DENY" => Outcome::Failure,
            "CHALLENGE" => Outcome::Challenge,
            _ => Outcome::Unknown,
        }
    }

    /// The `status` text for outcomes OCSF 1.1.0 has no value for.
    pub(crate) fn other_label(self) -> Option<String> {
        (self == Outcome::Challenge).then(|| "CHALLENGE".to_string())
    }

    /// The OCSF `status_id` value, the same in every class.
    pub(crate) fn id(self) -> i32 {
        match self {
            Outcome::Success => 1,
            Outcome::Failure => 2,
            Outcome::Challenge => 99,
            Outcome::Unknown => 0,
        }
    }
}

/// Everything but the target list, read once whatever the class.
pub(crate) struct Context {
    pub(crate) actor: Box<Actor>,
    pub(crate) src_endpoint: Option<Box<NetworkEndpoint>>,
    pub(crate) http_request: Option<Box<HttpRequest>>,
    pub(crate) status: Option<Outcome>,
    pub(crate) status_detail: Option<String>,
    pub(crate) severity: Severity,
    pub(crate) transaction: Option<String>,
}

impl Context {
    pub(crate) fn read(r: &mut JsonRecord<'_>, unmapped: &mut Unmapped) -> Context {
        let mut actor = Actor::default();
        if let Some(mut a) = r.take_object("actor") {
            let kind = a.take_str("type");
            let user = person(&mut a, kind.as_deref());
            a.into_unmapped("actor", unmapped);
            actor.user = Some(Box::new(user));
        }
        let mut http_request = HttpRequest::default();
        let mut endpoint = NetworkEndpoint::default();
        if let Some(mut client) = r.take_object("client") {
            endpoint.ip = client.take_str("ipAddress").and_then(|ip| {
                ocsf::ip(&ip).or_else(|| {
                    unmapped.insert("client.ipAddress", ip);
                    None
                })
            });
            endpoint.uid = client.take_str("id");
            if let Some(mut ua) = client.take_object("userAgent") {
                http_request.user_agent = ua
                    .take_str("rawUserAgent")
                    .map(|raw| ocsf::fit_string("client.userAgent.rawUserAgent", raw, unmapped));
                endpoint.os = ua
                    .take_str("os")
                    .filter(|os| os != "Unknown")
                    .map(os)
                    .map(Box::new);
                ua.into_unmapped("client.userAgent", unmapped);
            }
            if let Some(mut geo) = client.take_object("geographicalContext") {
                endpoint.location = location(&mut geo, unmapped).map(Box::new);
                geo.into_unmapped("client.geographicalContext", unmapped);
            }
            client.into_unmapped("client", unmapped);
        }
        if let Some(mut security) = r.take_object("securityContext") {
            endpoint.domain = security.take_str("domain");
            if let Some(location) = endpoint.location.as_mut() {
                location.isp = security.take_str("isp");
            }
            security.into_unmapped("securityContext", unmapped);
        }
        let mut session = Session::default();
        if let Some(mut auth) = r.take_object("authenticationContext") {
            session.uid = auth.take_str("externalSessionId");
            session.uid_alt = auth.take_str("rootSessionId");
            if let Some(mut issuer) = auth.take_object("issuer") {
                session.issuer = issuer.take_str("id");
                issuer.into_unmapped("authenticationContext.issuer", unmapped);
            }
            auth.into_unmapped("authenticationContext", unmapped);
        }
        if session != Session::default() {
            actor.session = Some(Box::new(session));
        }
        let mut severity = Severity::Informational;
        if let Some(mut debug) = r.take_object("debugContext") {
            if let Some(mut data) = debug.take_object("debugData") {
                http_request.uid = data.take_str("requestId");
                http_request.url = data.take_str("url").map(|path| {
                    Box::new(Url {
                        path: Some(path),
                        ..Default::default()
                    })
                });
                // `risk` is text shaped like a map: `{level=HIGH, reasons=...}`.
                let risk = data.get_str("risk").unwrap_or_default();
                if let Some(level) = risk.split("level=").nth(1) {
                    severity = match level.split([',', '}']).next().unwrap_or_default().trim() {
                        "HIGH" => Severity::High,
                        "MEDIUM" => Severity::Medium,
                        "LOW" => Severity::Low,
                        _ => Severity::Informational,
                    };
                }
                data.into_unmapped("debugContext.debugData", unmapped);
            }
            debug.into_unmapped("debugContext", unmapped);
        }
        let mut transaction = None;
        if let Some(mut t) = r.take_object("transaction") {
            transaction = t.take_str("id");
            t.into_unmapped("transaction", unmapped);
        }
        let (mut status, mut status_detail) = (None, None);
        if let Some(mut outcome) = r.take_object("outcome") {
            status = outcome.take_str("result").map(|s| Outcome::parse(&s));
            status_detail = outcome.take_str("reason");
            outcome.into_unmapped("outcome", unmapped);
        }
        let has_endpoint = endpoint.ip.is_some() || endpoint.uid.is_some();
        Context {
            actor: Box::new(actor),
            src_endpoint: has_endpoint.then(|| Box::new(endpoint)),
            http_request: (http_request != HttpRequest::default()).then(|| Box::new(http_request)),
            status,
            status_detail,
            severity,
            transaction,
        }
    }
}

/// An Okta principal (`actor` or a User target) as an OCSF user.
fn person(r: &mut JsonRecord<'_>, kind: Option<&str>) -> User {
    let alternate = r.take_str("alternateId").filter(|a| a != "unknown");
    let display = r.take_str("displayName").filter(|d| d != "unknown");
    User {
        uid: r.take_str("id"),
        type_id: Some(match kind {
            Some("User" | "AppUser") => UserType::User,
            Some("SystemPrincipal") => UserType::System,
            None => UserType::Unknown,
            Some(_) => UserType::Other,
        }),
        r#type: kind.map(Into::into),
        email_addr: alternate.clone().filter(|a| a.contains('@')),
        name: alternate,
        full_name: display,
        ..Default::default()
    }
}

fn os(name: String) -> Os {
    let lower = name.to_ascii_lowercase();
    let type_id = if lower.contains("windows") {
        OsType::Windows
    } else if lower.contains("android") {
        OsType::Android
    } else if lower.contains("ipad") {
        OsType::IPadOS
    } else if lower.contains("ios") || lower.contains("iphone") {
        OsType::IOS
    } else if lower.contains("mac") {
        OsType::MacOS
    } else if lower.contains("linux") || lower.contains("ubuntu") || lower.contains("chrome os") {
        OsType::Linux
    } else {
        OsType::Other
    };
    Os {
        name: Some(name),
        type_id,
        ..Default::default()
    }
}

/// `geographicalContext` as a location; `None` when it names no place (OCSF needs one of
/// city, country, postal code, region or coordinates).
fn location(geo: &mut JsonRecord<'_>, unmapped: &mut Unmapped) -> Option<Location> {
    let mut l = Location {
        city: geo.take_str("city"),
        country: geo.take_str("country"),
        postal_code: geo.take_str("postalCode"),
        region: geo.take_str("state"),
        ..Default::default()
    };
    if let Some(mut point) = geo.take_object("geolocation") {
        let (lat, lon) = (point.get_f64("lat"), point.get_f64("lon"));
        if let (Some(lat), Some(lon)) = (lat, lon) {
            point.take("lat");
            point.take("lon");
            l.coordinates = vec![lon, lat];
        }
        point.into_unmapped("client.geographicalContext.geolocation", unmapped);
    }
    let names_a_place = l.city.is_some()
        || l.country.is_some()
        || l.postal_code.is_some()
        || l.region.is_some()
        || !l.coordinates.is_empty();
    names_a_place.then_some(l)
}

/// One `target[]` entry.
struct Target<'a> {
    kind: Option<String>,
    id: Option<String>,
    display_name: Option<String>,
    rest: JsonRecord<'a>,
    used: bool,
}

/// The `target[]` list, picked by type (never by position).
pub(crate) struct Targets<'a> {
    pub(crate) user: Option<User>,
    pub(crate) groups: Vec<Group>,
    pub(crate) app: Option<Service>,
    items: Vec<Target<'a>>,
}

impl<'a> Targets<'a> {
    pub(crate) fn read(r: &mut JsonRecord<'a>, unmapped: &mut Unmapped) -> Targets<'a> {
        let mut targets = Targets {
            user: None,
            groups: Vec::new(),
            app: None,
            items: Vec::new(),
        };
        let list = r.take_array("target").unwrap_or_default();
        for (i, item) in list.into_iter().enumerate() {
            let Some(mut t) =
                JsonRecord::from_raw(item, |v| keep_raw(&format!("target[{i}]"), v, unmapped))
            else {
                continue;
            };
            let kind = t.take_str("type");
            match kind.as_deref() {
                Some("User" | "AppUser") if targets.user.is_none() => {
                    targets.user = Some(person(&mut t, kind.as_deref()));
                    targets.items.push(Target {
                        kind,
                        id: None,
                        display_name: None,
                        rest: t,
                        used: true,
                    });
                }
                _ => {
                    let (id, display_name) = (t.take_str("id"), t.take_str("displayName"));
                    targets.items.push(Target {
                        kind,
                        id,
                        display_name,
                        rest: t,
                        used: false,
                    });
                }
            }
        }
        for item in &mut targets.items {
            match item.kind.as_deref() {
                Some("UserGroup") => {
                    targets.groups.push(Group {
                        uid: item.id.clone(),
                        name: item.display_name.clone(),
                        ..Default::default()
                    });
                    item.used = true;
                }
                Some("AppInstance") if targets.app.is_none() => {
                    targets.app = Some(Service {
                        uid: item.id.clone(),
                        name: item.display_name.clone(),
                        ..Default::default()
                    });
                    item.used = true;
                }
                _ => {}
            }
        }
        targets
    }

    /// For API Activity: every target as a resource; what a resource cannot hold is kept in
    /// `unmapped`.
    pub(crate) fn resources(self, unmapped: &mut Unmapped) -> Vec<ResourceDetails> {
        let mut resources = Vec::new();
        for (i, item) in self.items.into_iter().enumerate() {
            let prefix = format!("target[{i}]");
            let resource = match (&self.user, item.used && item.id.is_none()) {
                // The User target, already read as a person.
                (Some(user), true) => {
                    if let Some(full_name) = &user.full_name {
                        unmapped.insert(format!("{prefix}.displayName"), full_name.as_str());
                    }
                    ResourceDetails {
                        uid: user.uid.clone(),
                        name: user.name.clone(),
                        r#type: user.r#type.clone(),
                        ..Default::default()
                    }
                }
                _ => ResourceDetails {
                    uid: item.id,
                    name: item.display_name,
                    r#type: item.kind,
                    ..Default::default()
                },
            };
            if resource.uid.is_some() || resource.name.is_some() {
                resources.push(resource);
            } else if let Some(kind) = resource.r#type {
                unmapped.insert(format!("{prefix}.type"), kind);
            }
            item.rest.into_unmapped(&prefix, unmapped);
        }
        resources
    }

    /// For the identity classes: targets the record did not use are kept whole in `unmapped`.
    pub(crate) fn finish(self, unmapped: &mut Unmapped) {
        for (i, item) in self.items.into_iter().enumerate() {
            let prefix = format!("target[{i}]");
            if !item.used {
                for (key, value) in [
                    ("type", item.kind),
                    ("id", item.id),
                    ("displayName", item.display_name),
                ] {
                    if let Some(value) = value {
                        unmapped.insert(format!("{prefix}.{key}"), value);
                    }
                }
            }
            item.rest.into_unmapped(&prefix, unmapped);
        }
    }
}
