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
            outcome: "ok".into(),
        }
    }

    /// The bytes the chain hashes: every field, and the event's sequence number, in a fixed
    /// order (a JSON array, so no field can bleed into the next).
    ///
    /// Written straight to bytes (no intermediate `serde_json::Value`, which cloned every
    /// field on each event): the output is exactly what `serde_json::to_vec(&json!([...]))`
    /// gives for the same fields, so chains written before stay verifiable (tested).
    pub fn canonical_bytes(&self, seq: i64) -> Vec<u8> {
        use serde::ser::{SerializeSeq as _, Serializer as _};
        let (actor_kind, actor_id) = self.actor.parts();
        let mut out = Vec::with_capacity(256);
        let mut ser = serde_json::Serializer::new(&mut out);
        let written = (|| {
            let mut a = ser.serialize_seq(Some(19))?;
            a.serialize_element(&1)?; // format version
            a.serialize_element(&seq)?;
            a.serialize_element(&self.id)?;
            a.serialize_element(self.tenant_id.as_str())?;
            a.serialize_element(&self.time.timestamp_micros())?;
            a.serialize_element(actor_kind)?;
            a.serialize_element(&actor_id)?;
            a.serialize_element(&self.action)?;
            a.serialize_element(&self.proxy_mode)?;
            a.serialize_element(&self.credential)?;
            a.serialize_element(&self.credential_version)?;
            a.serialize_element(&self.method)?;
            a.serialize_element(&self.target_host)?;
            a.serialize_element(&self.target_path)?;
            a.serialize_element(&self.status)?;
            a.serialize_element(&self.latency_ms)?;
            a.serialize_element(&self.bytes)?;
            a.serialize_element(&self.client_ip)?;
            a.serialize_element(&self.outcome)?;
            a.end()
        })();
        // Serializing strings and integers into a Vec cannot fail.
        debug_assert!(written.is_ok());
        out
    }

    /// The hash of this event at `seq` after `prev_hash` (hex): SHA-256(prev || canonical).
    pub fn chain_hash(&self, seq: i64, prev_hash: &str) -> String {
        let mut h = Sha256::new();
        // A malformed stored prev hash is hashed as its text; it then cannot match anything.
        let mut prev = [0u8; 32];
        if hex::decode_to_slice(prev_hash, &mut prev).is_ok() {
            h.update(prev);
        } else {
            match hex::decode(prev_hash) {
                Ok(bytes) => h.update(bytes),
                Err(_) => h.update(prev_hash.as_bytes()),
            }
        }
        h.update(self.canonical_bytes(seq));
        hex::encode(h.finalize())
    }
}

/// A fresh random (v4) UUID for an event, in its hyphenated lower-case text form. The bytes
/// come from the thread-local CSPRNG (seeded from the operating system) rather than one
/// `getrandom` system call per event; an event id only has to be unique, not secret.
fn event_id() -> String {
    let uuid = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    uuid.hyphenated()
        .encode_lower(&mut uuid::Uuid::encode_buffer())
        .to_owned()
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
    let path = url.path();
    match url.query() {
        None => path.to_owned(),
        Some(query) => {
            let mut out = String::with_capacity(path.len() + query.len() + 1);
            out.push_str(path);
            push_redacted_query(&mut out, query);
            out
        }
    }
}

/// A raw query string as `?name=_&…` (empty when it has no parameter).
pub fn redacted_query(query: &str) -> String {
    let mut out = String::new();
    push_redacted_query(&mut out, query);
    out
}

/// Appends `?name=_&…` for the parameters of `query` (nothing when it has none).
fn push_redacted_query(out: &mut String, query: &str) {
    let mut first = true;
    for (name, _) in url::form_urlencoded::parse(query.as_bytes()) {
        out.push(if first { '?' } else { '&' });
        first = false;
        out.extend(url::form_urlencoded::byte_serialize(name.as_bytes()));
        out.push_str("=_");
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

    /// The canonical bytes as first defined (a `serde_json::Value` array): chains written by
    /// earlier versions must keep verifying.
    fn canonical_bytes_via_value(e: &AuditEvent, seq: i64) -> Vec<u8> {
        let (actor_kind, actor_id) = e.actor.parts();
        let fields = serde_json::json!([
            1,
            seq,
            e.id,
            e.tenant_id.as_str(),
            e.time.timestamp_micros(),
            actor_kind,
            actor_id,
            e.action,
            e.proxy_mode,
            e.credential,
            e.credential_version,
            e.method,
            e.target_host,
            e.target_path,
            e.status,
            e.latency_ms,
            e.bytes,
            e.client_ip,
            e.outcome,
        ]);
        serde_json::to_vec(&fields).unwrap()
    }

    #[test]
    fn canonical_bytes_are_unchanged_from_the_value_based_encoding() {
        let bare = AuditEvent::new(system_tenant(), Actor::None, "auth.failure");
        let mut full = event();
        full.proxy_mode = Some("path".into());
        full.credential = Some("git\"hub\u{1}é".into());
        full.credential_version = Some(-3);
        full.target_host = Some("api.example.com".into());
        full.target_path = Some("/a b/\\x?q=_".into());
        full.status = Some(200);
        full.latency_ms = Some(i64::MAX);
        full.bytes = Some(0);
        full.client_ip = Some("2001:db8::1".into());
        full.outcome = "ok\n".into();
        let project = AuditEvent::new(TenantId::generate(), Actor::Project("p".into()), "secret.fetch");
        for e in [&bare, &full, &project] {
            for seq in [0, 1, i64::MAX] {
                assert_eq!(e.canonical_bytes(seq), canonical_bytes_via_value(e, seq));
            }
        }
    }

    #[test]
    fn event_ids_are_v4_uuids_in_their_usual_text_form() {
        let a = AuditEvent::new(system_tenant(), Actor::None, "x");
        let b = AuditEvent::new(system_tenant(), Actor::None, "x");
        assert_ne!(a.id, b.id);
        let parsed = uuid::Uuid::parse_str(&a.id).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(parsed.to_string(), a.id);
    }

    #[test]
    fn a_hash_after_a_malformed_previous_hash_is_still_defined() {
        let e = event();
        assert_ne!(e.chain_hash(1, "zz"), e.chain_hash(1, GENESIS_HASH));
        assert_ne!(e.chain_hash(1, "abcd"), e.chain_hash(1, GENESIS_HASH));
        assert_eq!(e.chain_hash(1, "abcd"), e.chain_hash(1, "ABCD"));
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
        for a in [Actor::Key("k1".into()), Actor::Project("p1".into()), Actor::None] {
            let (kind, id) = a.parts();
            assert_eq!(Actor::from_parts(kind, id.map(str::to_owned)), Some(a.clone()));
        }
        assert_eq!(Actor::from_parts("key", None), None);
    }
}
