//! The audit event (SPEC S11): one typed struct, whose serde form (short field names) is the
//! journal line and the bytes the chain hashes. Pure data; no I/O.
//!
//! Every field a client can shape is bounded by its type ([`Text`], [`Method`], [`Outcome`],
//! typed ids and addresses), so an event is small whatever a request carried. An event never
//! holds a secret value, a body or a query value: the constructors of its path field
//! ([`redact_query`]) keep parameter names and drop their values.

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

use super::text::{self, Text};
use crate::domain::{ApiKeyId, ProjectId, Surface, TenantId};

/// The chain for events that belong to no tenant (an unknown API key, the journal's own
/// reports): a fixed id no tenant can have (tenant ids are random v4 UUIDs; this is the nil
/// UUID).
pub const SYSTEM_TENANT: &str = "00000000-0000-0000-0000-000000000000";

/// The system tenant's id.
pub fn system_tenant() -> TenantId {
    // The nil UUID is a valid UUID; parse cannot fail on this constant.
    TenantId::parse(SYSTEM_TENANT).unwrap_or_else(|_| TenantId::generate())
}

/// A recorded action (`proxy.request`, `auth.failure`, `POST /v1/credentials`, …).
pub type Action = Text<{ text::ACTION_BYTES }>;
/// A recorded target host.
pub type Host = Text<{ text::HOST_BYTES }>;
/// A recorded target path, query values redacted.
pub type TargetPath = Text<{ text::PATH_BYTES }>;
/// A recorded credential alias.
pub type CredentialName = Text<{ text::CREDENTIAL_BYTES }>;

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An API key.
    Key(ApiKeyId),
    /// A project (signed request).
    Project(ProjectId),
    /// Nobody we could identify (an unknown API key, the gateway itself).
    None,
}

impl Actor {
    /// `(kind, id)` as stored.
    pub fn parts(&self) -> (&'static str, Option<&str>) {
        match self {
            Self::Key(id) => ("key", Some(id.as_str())),
            Self::Project(id) => ("project", Some(id.as_str())),
            Self::None => ("none", None),
        }
    }

    /// Rebuilds an actor from its stored parts.
    pub fn from_parts(kind: &str, id: Option<&str>) -> Option<Self> {
        match (kind, id) {
            ("key", Some(id)) => ApiKeyId::parse(id).ok().map(Self::Key),
            ("project", Some(id)) => ProjectId::parse(id).ok().map(Self::Project),
            ("none", None) => Some(Self::None),
            _ => None,
        }
    }
}

/// The actor's two serialized fields (`actor`, `actor_id`), flattened into the event.
#[derive(Serialize, Deserialize)]
struct ActorParts<'a> {
    actor: std::borrow::Cow<'a, str>,
    #[serde(default)]
    actor_id: Option<std::borrow::Cow<'a, str>>,
}

impl Serialize for Actor {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (kind, id) = self.parts();
        ActorParts {
            actor: kind.into(),
            actor_id: id.map(Into::into),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Actor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let p = ActorParts::deserialize(d)?;
        Self::from_parts(&p.actor, p.actor_id.as_deref()).ok_or_else(|| serde::de::Error::custom("invalid actor"))
    }
}

/// An HTTP method as recorded: a token of at most [`text::METHOD_BYTES`] bytes (longer ones
/// are cut; the request path refuses them before anything is recorded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Method(Text<{ text::METHOD_BYTES }>);

impl Method {
    /// The recorded form of `text`.
    pub fn parse(text: &str) -> Self {
        Self(Text::from(text))
    }

    /// The method's text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl std::ops::Deref for Method {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<&str> for Method {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl From<&http::Method> for Method {
    fn from(m: &http::Method) -> Self {
        Self::parse(m.as_str())
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the call ended: `ok`, or the S13 error code it was answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Error(Text<{ text::OUTCOME_BYTES }>),
}

impl Outcome {
    /// The outcome of a call answered with error `code`.
    pub fn error(code: &str) -> Self {
        if code == "ok" {
            Self::Ok
        } else {
            Self::Error(Text::from(code))
        }
    }

    /// Parses the stored form.
    pub fn parse(text: &str) -> Self {
        Self::error(text)
    }

    /// `ok` or the error code.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Ok => "ok",
            Self::Error(code) => code.as_str(),
        }
    }
}

impl PartialEq<&str> for Outcome {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Outcome {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Outcome {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(Self::parse(&s))
    }
}

/// One audit event, before it has a place in the chain.
///
/// The serde form is the journal line and (with the sequence number) what the keyed chain
/// hashes: a field added later must be `#[serde(default, skip_serializing_if = …)]` so that
/// events written before it keep their bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Random v4 UUID.
    pub id: uuid::Uuid,
    /// When it happened (whole microseconds).
    #[serde(rename = "t", with = "chrono::serde::ts_microseconds")]
    pub time: DateTime<Utc>,
    /// Whose chain it belongs to ([`SYSTEM_TENANT`] when none).
    #[serde(rename = "tenant", deserialize_with = "tenant_id")]
    pub tenant_id: TenantId,
    #[serde(flatten)]
    pub actor: Actor,
    pub action: Action,
    /// The proxy surface, for proxied calls.
    #[serde(rename = "mode", default, skip_serializing_if = "Option::is_none")]
    pub proxy_mode: Option<Surface>,
    #[serde(rename = "cred", default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<CredentialName>,
    #[serde(rename = "cred_v", default, skip_serializing_if = "Option::is_none")]
    pub credential_version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    #[serde(rename = "host", default, skip_serializing_if = "Option::is_none")]
    pub target_host: Option<Host>,
    /// Path, with query values redacted (names kept).
    #[serde(rename = "path", default, skip_serializing_if = "Option::is_none")]
    pub target_path: Option<TargetPath>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(rename = "ms", default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<i64>,
    #[serde(rename = "ip", default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<IpAddr>,
    pub outcome: Outcome,
}

fn tenant_id<'de, D: Deserializer<'de>>(d: D) -> Result<TenantId, D::Error> {
    let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
    TenantId::parse(&s).map_err(|_| serde::de::Error::custom("invalid tenant id"))
}

impl AuditEvent {
    /// A fresh event with the given tenant, actor and action, stamped now; everything else
    /// empty and the outcome `ok`.
    pub fn new(tenant_id: TenantId, actor: Actor, action: impl Into<Action>) -> Self {
        Self {
            id: event_id(),
            time: crate::store::now(),
            tenant_id,
            actor,
            action: action.into(),
            proxy_mode: None,
            credential: None,
            credential_version: None,
            method: None,
            target_host: None,
            target_path: None,
            status: None,
            latency_ms: None,
            bytes: None,
            client_ip: None,
            outcome: Outcome::Ok,
        }
    }
}

/// A fresh random (v4) UUID for an event. The bytes come from the thread-local CSPRNG
/// (seeded from the operating system) rather than one `getrandom` system call per event; an
/// event id only has to be unique, not secret.
fn event_id() -> uuid::Uuid {
    uuid::Builder::from_random_bytes(rand::random()).into_uuid()
}

/// An event in its chain, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub seq: i64,
    pub event: AuditEvent,
    /// How `hash` was computed (see [`super::chain`]).
    pub link: super::chain::LinkVersion,
    pub prev_hash: String,
    pub hash: String,
}

/// An event as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    #[schema(value_type = String)]
    pub id: uuid::Uuid,
    pub seq: i64,
    pub time: DateTime<Utc>,
    /// The tenant whose chain holds the event.
    #[schema(value_type = String)]
    pub tenant_id: TenantId,
    pub actor: ActorView,
    #[schema(value_type = String)]
    pub action: Action,
    #[schema(value_type = Option<String>)]
    pub proxy_mode: Option<Surface>,
    #[schema(value_type = Option<String>)]
    pub credential: Option<CredentialName>,
    pub credential_version: Option<i64>,
    #[schema(value_type = Option<String>)]
    pub method: Option<Method>,
    #[schema(value_type = Option<String>)]
    pub target_host: Option<Host>,
    #[schema(value_type = Option<String>)]
    pub target_path: Option<TargetPath>,
    pub status: Option<u16>,
    pub latency_ms: Option<i64>,
    pub bytes: Option<i64>,
    #[schema(value_type = Option<String>)]
    pub client_ip: Option<IpAddr>,
    /// `ok`, or the S13 error code.
    #[schema(value_type = String)]
    pub outcome: Outcome,
    pub hash: String,
}

/// Who acted, as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActorView {
    /// `key`, `project` or `none`.
    pub kind: &'static str,
    pub id: Option<String>,
}

impl From<AuditRecord> for AuditView {
    fn from(r: AuditRecord) -> Self {
        let (kind, id) = r.event.actor.parts();
        let actor = ActorView {
            kind,
            id: id.map(str::to_owned),
        };
        // Destructured whole: a field added to the event fails to compile here until the API
        // shows it (or says why not).
        let AuditEvent {
            id,
            time,
            tenant_id,
            actor: _,
            action,
            proxy_mode,
            credential,
            credential_version,
            method,
            target_host,
            target_path,
            status,
            latency_ms,
            bytes,
            client_ip,
            outcome,
        } = r.event;
        Self {
            id,
            seq: r.seq,
            time,
            tenant_id,
            actor,
            action,
            proxy_mode,
            credential,
            credential_version,
            method,
            target_host,
            target_path,
            status,
            latency_ms,
            bytes,
            client_ip,
            outcome,
            hash: r.hash,
        }
    }
}

/// A URL's path with every query value replaced by `_` (names kept): query strings carry API
/// keys and personal data far too often to be recorded.
pub fn redact_query(url: &url::Url) -> TargetPath {
    let path = url.path();
    match url.query() {
        None => TargetPath::from(path),
        Some(query) => {
            let mut out = String::with_capacity(path.len().min(text::PATH_BYTES) + 16);
            out.push_str(path);
            push_redacted_query(&mut out, query);
            TargetPath::cut(out)
        }
    }
}

/// A raw query string as `?name=_&…` (empty when it has no parameter).
pub fn redacted_query(query: &str) -> String {
    let mut out = String::new();
    push_redacted_query(&mut out, query);
    out
}

/// Appends `?name=_&…` for the parameters of `query` (nothing when it has none). Stops once
/// the text is past what a recorded path can hold: the rest would be cut anyway.
fn push_redacted_query(out: &mut String, query: &str) {
    let mut first = true;
    for (name, _) in url::form_urlencoded::parse(query.as_bytes()) {
        if out.len() > text::PATH_BYTES {
            break;
        }
        out.push(if first { '?' } else { '&' });
        first = false;
        out.extend(url::form_urlencoded::byte_serialize(name.as_bytes()));
        out.push_str("=_");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_redacted_and_names_kept() {
        let url = url::Url::parse("https://api.example.com/v1/x?api_key=sk-secret&page=2&flag").unwrap();
        let path = redact_query(&url);
        assert_eq!(path.as_str(), "/v1/x?api_key=_&page=_&flag=_");
        assert!(!path.as_str().contains("sk-secret"));
        let bare = url::Url::parse("https://api.example.com/v1/x").unwrap();
        assert_eq!(redact_query(&bare).as_str(), "/v1/x");
    }

    #[test]
    fn a_huge_path_or_query_is_recorded_cut_to_its_bound() {
        let long = format!("https://h/{}?{}=1", "p".repeat(300_000), "n".repeat(300_000));
        let path = redact_query(&url::Url::parse(&long).unwrap());
        assert_eq!(path.as_str().len(), text::PATH_BYTES);
        assert!(path.was_cut());
        let names = format!("https://h/?{}", "a=1&".repeat(100_000));
        assert!(redact_query(&url::Url::parse(&names).unwrap()).was_cut());
    }

    #[test]
    fn event_ids_are_v4_uuids() {
        let a = AuditEvent::new(system_tenant(), Actor::None, "x");
        let b = AuditEvent::new(system_tenant(), Actor::None, "x");
        assert_ne!(a.id, b.id);
        assert_eq!(a.id.get_version_num(), 4);
    }

    #[test]
    fn redacted_queries_keep_encoded_names() {
        assert_eq!(redacted_query(""), "");
        assert_eq!(redacted_query("a%20b=1&&c"), "?a+b=_&c=_");
    }

    #[test]
    fn the_system_chain_has_its_fixed_id() {
        assert_eq!(system_tenant().as_str(), SYSTEM_TENANT);
    }

    #[test]
    fn actors_round_trip_through_their_stored_parts() {
        for a in [
            Actor::Key(ApiKeyId::generate()),
            Actor::Project(ProjectId::generate()),
            Actor::None,
        ] {
            let (kind, id) = a.parts();
            assert_eq!(Actor::from_parts(kind, id), Some(a.clone()));
        }
        assert_eq!(Actor::from_parts("key", None), None);
        assert_eq!(Actor::from_parts("key", Some("not-an-id")), None);
    }

    #[test]
    fn outcomes_are_ok_or_a_bounded_code() {
        assert_eq!(Outcome::parse("ok"), Outcome::Ok);
        assert_eq!(Outcome::error("forbidden").as_str(), "forbidden");
        assert!(Outcome::error(&"x".repeat(1000)).as_str().len() <= text::OUTCOME_BYTES);
    }

    #[test]
    fn every_client_shaped_field_is_bounded_by_its_type() {
        let huge = "z".repeat(300_000);
        let mut e = AuditEvent::new(system_tenant(), Actor::None, huge.as_str());
        e.method = Some(Method::parse(&huge));
        e.target_host = Some(Host::from(huge.as_str()));
        e.target_path = Some(TargetPath::from(huge.as_str()));
        e.credential = Some(CredentialName::from(huge.as_str()));
        e.outcome = Outcome::error(&huge);
        let line = serde_json::to_vec(&e).unwrap();
        assert!(line.len() < 4096, "{} bytes", line.len());
    }
}
