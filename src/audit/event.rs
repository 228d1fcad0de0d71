//! The audit event (SPEC S11) and its place in the per-tenant hash chain. Pure data and
//! hashing; no I/O.
//!
//! An event never holds a secret value, a body or a query value: the only constructors of its
//! path field ([`redact_query`]) keep parameter names and drop their values.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use utoipa::ToSchema;

use crate::domain::TenantId;

/// The chain for events that belong to no tenant (an unknown API key): a fixed id no tenant
/// can have (tenant ids are random v4 UUIDs; this is the nil UUID).
pub const SYSTEM_TENANT: &str = "00000000-0000-0000-0000-000000000000";

/// The `prev_hash` of a chain's first event: 32 zero bytes, hex.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The system tenant's id.
pub fn system_tenant() -> TenantId {
    // The nil UUID is a valid UUID; parse cannot fail on this constant.
    TenantId::parse(SYSTEM_TENANT).unwrap_or_else(|_| TenantId::generate())
}

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An API key, by id.
    Key(String),
    /// A project (signed request), by id.
    Project(String),
    /// Nobody we could identify (e.g. an unknown API key).
    None,
}

impl Actor {
    /// `(kind, id)` as stored.
    pub fn parts(&self) -> (&'static str, Option<&str>) {
        match self {
            Self::Key(id) => ("key", Some(id)),
            Self::Project(id) => ("project", Some(id)),
            Self::None => ("none", None),
        }
    }

    /// Rebuilds an actor from its stored parts.
    pub fn from_parts(kind: &str, id: Option<String>) -> Option<Self> {
        match (kind, id) {
            ("key", Some(id)) => Some(Self::Key(id)),
            ("project", Some(id)) => Some(Self::Project(id)),
            ("none", None) => Some(Self::None),
            _ => None,
        }
    }
}

/// One audit event, before it has a place in the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// Random UUID.
    pub id: String,
    /// When it happened (microsecond precision).
    pub time: DateTime<Utc>,
    /// Whose chain it belongs to ([`SYSTEM_TENANT`] when none).
    pub tenant_id: TenantId,
    pub actor: Actor,
    /// `proxy.request`, `auth.failure`, `secret.fetch`, `admin.<METHOD>`, …
    pub action: String,
    /// The proxy surface, for proxied calls.
    pub proxy_mode: Option<String>,
    pub credential: Option<String>,
    pub credential_version: Option<i64>,
    pub method: Option<String>,
    pub target_host: Option<String>,
    /// Path, with query values redacted (names kept).
    pub target_path: Option<String>,
    pub status: Option<i64>,
    pub latency_ms: Option<i64>,
    pub bytes: Option<i64>,
    pub client_ip: Option<String>,
    /// `ok`, or the S13 error code.
    pub outcome: String,
}

impl AuditEvent {
    /// A fresh event with the given tenant, actor and action, stamped now; everything else
    /// empty and the outcome `ok`.
    pub fn new(tenant_id: TenantId, actor: Actor, action: impl Into<String>) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
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
            outcome: "ok".into(),
        }
    }

    /// The bytes the chain hashes: every field, and the event's sequence number, in a fixed
    /// order (a JSON array, so no field can bleed into the next).
    pub fn canonical_bytes(&self, seq: i64) -> Vec<u8> {
        let (actor_kind, actor_id) = self.actor.parts();
        let fields = serde_json::json!([
            1, // format version
            seq,
            self.id,
            self.tenant_id.as_str(),
            self.time.timestamp_micros(),
            actor_kind,
            actor_id,
            self.action,
            self.proxy_mode,
            self.credential,
            self.credential_version,
            self.method,
            self.target_host,
            self.target_path,
            self.status,
            self.latency_ms,
            self.bytes,
            self.client_ip,
            self.outcome,
        ]);
        // Serializing a JSON value to bytes cannot fail.
        serde_json::to_vec(&fields).unwrap_or_default()
    }

    /// The hash of this event at `seq` after `prev_hash` (hex): SHA-256(prev || canonical).
    pub fn chain_hash(&self, seq: i64, prev_hash: &str) -> String {
        let mut h = Sha256::new();
        // A malformed stored prev hash is hashed as its text; it then cannot match anything.
        match hex::decode(prev_hash) {
            Ok(bytes) => h.update(bytes),
            Err(_) => h.update(prev_hash.as_bytes()),
        }
        h.update(self.canonical_bytes(seq));
        hex::encode(h.finalize())
    }
}

/// An event in its chain, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub seq: i64,
    pub event: AuditEvent,
    pub prev_hash: String,
    pub hash: String,
}

/// An event as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    pub id: String,
    pub seq: i64,
    pub time: DateTime<Utc>,
    pub actor: ActorView,
    pub action: String,
    pub proxy_mode: Option<String>,
    pub credential: Option<String>,
    pub credential_version: Option<i64>,
    pub method: Option<String>,
    pub target_host: Option<String>,
    pub target_path: Option<String>,
    pub status: Option<i64>,
    pub latency_ms: Option<i64>,
    pub bytes: Option<i64>,
    pub client_ip: Option<String>,
    pub outcome: String,
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
        let id = id.map(str::to_owned);
        let e = r.event;
        Self {
            id: e.id,
            seq: r.seq,
            time: e.time,
            actor: ActorView { kind, id },
            action: e.action,
            proxy_mode: e.proxy_mode,
            credential: e.credential,
            credential_version: e.credential_version,
            method: e.method,
            target_host: e.target_host,
            target_path: e.target_path,
            status: e.status,
            latency_ms: e.latency_ms,
            bytes: e.bytes,
            client_ip: e.client_ip,
            outcome: e.outcome,
            hash: r.hash,
        }
    }
}

/// A URL's path with every query value replaced by `_` (names kept): query strings carry API
/// keys and personal data far too often to be recorded.
pub fn redact_query(url: &url::Url) -> String {
    format!("{}{}", url.path(), url.query().map(redacted_query).unwrap_or_default())
}

/// A raw query string as `?name=_&…` (empty when it has no parameter).
pub fn redacted_query(query: &str) -> String {
    let names: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, _)| {
            format!(
                "{}=_",
                url::form_urlencoded::byte_serialize(k.as_bytes()).collect::<String>()
            )
        })
        .collect();
    if names.is_empty() {
        String::new()
    } else {
        format!("?{}", names.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> AuditEvent {
        let mut e = AuditEvent::new(TenantId::generate(), Actor::Key("k".into()), "proxy.request");
        e.method = Some("GET".into());
        e
    }

    #[test]
    fn query_values_are_redacted_and_names_kept() {
        let url = url::Url::parse("https://api.example.com/v1/x?api_key=sk-secret&page=2&flag").unwrap();
        let path = redact_query(&url);
        assert_eq!(path, "/v1/x?api_key=_&page=_&flag=_");
        assert!(!path.contains("sk-secret"));
        let bare = url::Url::parse("https://api.example.com/v1/x").unwrap();
        assert_eq!(redact_query(&bare), "/v1/x");
    }

    #[test]
    fn the_hash_covers_every_field_the_sequence_number_and_the_previous_hash() {
        let e = event();
        let h = e.chain_hash(1, GENESIS_HASH);
        assert_eq!(h.len(), 64);
        assert_eq!(h, e.chain_hash(1, GENESIS_HASH));
        assert_ne!(h, e.chain_hash(2, GENESIS_HASH));
        assert_ne!(h, e.chain_hash(1, &h));
        let mut edited = e.clone();
        edited.status = Some(200);
        assert_ne!(h, edited.chain_hash(1, GENESIS_HASH));
        let mut moved = e.clone();
        moved.outcome = "o".into();
        let mut moved2 = e;
        moved2.action = format!("{}o", moved2.action);
        moved2.outcome = String::new();
        assert_ne!(moved.chain_hash(1, GENESIS_HASH), moved2.chain_hash(1, GENESIS_HASH));
    }

    #[test]
    fn the_system_chain_has_its_fixed_id() {
        assert_eq!(system_tenant().as_str(), SYSTEM_TENANT);
    }

    #[test]
    fn actors_round_trip_through_their_stored_parts() {
        for a in [Actor::Key("k1".into()), Actor::Project("p1".into()), Actor::None] {
            let (kind, id) = a.parts();
            assert_eq!(Actor::from_parts(kind, id.map(str::to_owned)), Some(a.clone()));
        }
        assert_eq!(Actor::from_parts("key", None), None);
    }
}
