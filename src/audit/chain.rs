//! The per-tenant hash chains: how an event is linked after the one before it. The store only
//! persists links; computing them is this module's rule.
//!
//! A link is keyed: `hash = HMAC-SHA-256(chain key, prev || bytes)`, where the chain key is
//! derived from the master key with a label of its own ([`ChainKey::derive`]) and `bytes` is
//! the event's serde form with the link version and its sequence number. So rewriting a chain
//! (editing a row and recomputing every later hash and the head) needs the master key as well
//! as write access to the database.
//!
//! Chains written before links were keyed hold version-1 links (`SHA-256(prev || bytes)`,
//! bytes as first defined). They stay verifiable, but only as a prefix: every chain is sealed
//! with a keyed event at start-up ([`super::seal_legacy_chains`]), whose keyed hash covers the
//! last unkeyed one, and a chain whose newest event is unkeyed does not verify (an attacker
//! cannot downgrade a chain by rewriting it unkeyed).
//!
//! The chain key follows the master key: a future master-key rotation must keep verifying
//! links made under the old key (for instance a link version per key generation, with the old
//! chain key kept wrapped by the new master key), or every chain stops verifying.

use hmac::{Hmac, Mac as _};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use super::event::{AuditEvent, AuditRecord};
use crate::crypto::MasterKey;

/// The `prev_hash` of a chain's first event: 32 zero bytes, hex.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How a link's hash was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LinkVersion {
    /// `SHA-256(prev || legacy bytes)`: chains written before links were keyed.
    Sha256,
    /// `HMAC-SHA-256(chain key, prev || bytes)`.
    Keyed,
}

impl LinkVersion {
    /// The stored number.
    pub fn as_i64(self) -> i64 {
        match self {
            Self::Sha256 => 1,
            Self::Keyed => 2,
        }
    }

    /// Parses the stored number.
    pub fn from_i64(n: i64) -> Option<Self> {
        match n {
            1 => Some(Self::Sha256),
            2 => Some(Self::Keyed),
            _ => None,
        }
    }
}

/// A chain's newest link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: String,
}

impl ChainHead {
    /// The head of a chain without events.
    pub fn genesis() -> Self {
        Self {
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
        }
    }
}

/// A key derived from the master key for one purpose. `Debug` never shows it.
#[derive(Clone)]
pub struct DerivedKey(Zeroizing<[u8; 32]>);

impl DerivedKey {
    /// `HMAC-SHA-256(master key, label)`: a pseudo-random key of its own per label, so no
    /// other use of the master key can yield it (domain separation).
    pub fn derive(master: &MasterKey, label: &str) -> Self {
        let mut mac = new_mac(master.bytes());
        mac.update(label.as_bytes());
        Self(Zeroizing::new(mac.finalize().into_bytes().into()))
    }

    /// A fixed key, for tests.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// `HMAC-SHA-256(self, parts…)`, hex.
    pub fn mac_hex(&self, parts: &[&[u8]]) -> String {
        let mut mac = new_mac(self.0.as_ref());
        for p in parts {
            mac.update(p);
        }
        hex::encode(mac.finalize().into_bytes())
    }
}

impl std::fmt::Debug for DerivedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DerivedKey(..)")
    }
}

fn new_mac(key: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length; 32 bytes can never be refused.
    <Hmac<Sha256> as hmac::Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
}

/// The key that links the audit chains.
#[derive(Clone, Debug)]
pub struct ChainKey(DerivedKey);

impl ChainKey {
    /// The label the chain key is derived with.
    pub const LABEL: &'static str = "keystile audit chain v1";

    /// Derives the chain key from the master key.
    pub fn derive(master: &MasterKey) -> Self {
        Self(DerivedKey::derive(master, Self::LABEL))
    }

    /// A fixed key, for tests.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(DerivedKey::from_bytes(bytes))
    }

    /// Links `event` after `head` (keyed) and advances `head` to it.
    pub fn link(&self, head: &mut ChainHead, event: AuditEvent) -> AuditRecord {
        let seq = head.seq + 1;
        let hash = self.hash(LinkVersion::Keyed, seq, &head.hash, &event);
        let prev_hash = std::mem::replace(&mut head.hash, hash.clone());
        head.seq = seq;
        AuditRecord {
            seq,
            event,
            link: LinkVersion::Keyed,
            prev_hash,
            hash,
        }
    }

    /// The hash a link of `version` at `seq` after `prev_hash` has (hex).
    pub fn hash(&self, version: LinkVersion, seq: i64, prev_hash: &str, event: &AuditEvent) -> String {
        let prev = prev_bytes(prev_hash);
        match version {
            LinkVersion::Keyed => {
                // Serializing our own plain data into a Vec cannot fail.
                let bytes = serde_json::to_vec(&(version.as_i64(), seq, event)).unwrap_or_default();
                self.0.mac_hex(&[&prev, &bytes])
            }
            LinkVersion::Sha256 => {
                let mut h = Sha256::new();
                h.update(&prev);
                h.update(legacy_bytes(event, seq));
                hex::encode(h.finalize())
            }
        }
    }
}

/// A stored previous hash as bytes; a malformed one (tampered) is taken as its text, which
/// then cannot match anything.
fn prev_bytes(prev_hash: &str) -> Vec<u8> {
    hex::decode(prev_hash).unwrap_or_else(|_| prev_hash.as_bytes().to_vec())
}

/// The bytes version-1 links hash: every field and the sequence number as one JSON array, in
/// the order first defined (kept so chains written before keyed links stay verifiable). Each
/// typed field serializes exactly as the string it replaced.
fn legacy_bytes(e: &AuditEvent, seq: i64) -> Vec<u8> {
    use serde::ser::{SerializeSeq as _, Serializer as _};
    let (actor_kind, actor_id) = e.actor.parts();
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::new(&mut out);
    let written = (|| {
        let mut a = ser.serialize_seq(Some(19))?;
        a.serialize_element(&1)?; // format version
        a.serialize_element(&seq)?;
        a.serialize_element(&e.id)?;
        a.serialize_element(e.tenant_id.as_str())?;
        a.serialize_element(&e.time.timestamp_micros())?;
        a.serialize_element(actor_kind)?;
        a.serialize_element(&actor_id)?;
        a.serialize_element(&e.action)?;
        a.serialize_element(&e.proxy_mode)?;
        a.serialize_element(&e.credential)?;
        a.serialize_element(&e.credential_version)?;
        a.serialize_element(&e.method)?;
        a.serialize_element(&e.target_host)?;
        a.serialize_element(&e.target_path)?;
        a.serialize_element(&e.status)?;
        a.serialize_element(&e.latency_ms)?;
        a.serialize_element(&e.bytes)?;
        a.serialize_element(&e.client_ip)?;
        a.serialize_element(&e.outcome)?;
        a.end()
    })();
    // Serializing strings and integers into a Vec cannot fail.
    debug_assert!(written.is_ok());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::event::{Actor, Host, Method, Outcome, TargetPath};
    use crate::domain::{ApiKeyId, Surface, TenantId};

    fn event() -> AuditEvent {
        let mut e = AuditEvent::new(TenantId::generate(), Actor::Key(ApiKeyId::generate()), "proxy.request");
        e.method = Some(Method::parse("GET"));
        e
    }

    fn key() -> ChainKey {
        ChainKey::from_bytes([7; 32])
    }

    #[test]
    fn the_hash_covers_every_field_the_sequence_number_and_the_previous_hash() {
        let k = key();
        let e = event();
        let h = k.hash(LinkVersion::Keyed, 1, GENESIS_HASH, &e);
        assert_eq!(h.len(), 64);
        assert_eq!(h, k.hash(LinkVersion::Keyed, 1, GENESIS_HASH, &e));
        assert_ne!(h, k.hash(LinkVersion::Keyed, 2, GENESIS_HASH, &e));
        assert_ne!(h, k.hash(LinkVersion::Keyed, 1, &h, &e));
        assert_ne!(h, k.hash(LinkVersion::Sha256, 1, GENESIS_HASH, &e));
        let mut edited = e.clone();
        edited.status = Some(200);
        assert_ne!(h, k.hash(LinkVersion::Keyed, 1, GENESIS_HASH, &edited));
        let mut other_tenant = e.clone();
        other_tenant.tenant_id = TenantId::generate();
        assert_ne!(h, k.hash(LinkVersion::Keyed, 1, GENESIS_HASH, &other_tenant));
    }

    #[test]
    fn a_keyed_hash_depends_on_the_key_and_keys_depend_on_their_label() {
        let e = event();
        let master = MasterKey::generate();
        let a = ChainKey::derive(&master);
        let b = ChainKey::derive(&MasterKey::generate());
        assert_ne!(
            a.hash(LinkVersion::Keyed, 1, GENESIS_HASH, &e),
            b.hash(LinkVersion::Keyed, 1, GENESIS_HASH, &e)
        );
        assert_eq!(
            a.hash(LinkVersion::Keyed, 1, GENESIS_HASH, &e),
            ChainKey::derive(&master).hash(LinkVersion::Keyed, 1, GENESIS_HASH, &e)
        );
        let other = DerivedKey::derive(&master, "another purpose");
        assert_ne!(other.mac_hex(&[b"x"]), a.0.mac_hex(&[b"x"]));
        // The unkeyed version does not depend on the key.
        assert_eq!(
            a.hash(LinkVersion::Sha256, 1, GENESIS_HASH, &e),
            b.hash(LinkVersion::Sha256, 1, GENESIS_HASH, &e)
        );
    }

    #[test]
    fn linking_advances_the_head() {
        let k = key();
        let mut head = ChainHead::genesis();
        let first = k.link(&mut head, event());
        let second = k.link(&mut head, event());
        assert_eq!((first.seq, second.seq), (1, 2));
        assert_eq!(first.prev_hash, GENESIS_HASH);
        assert_eq!(second.prev_hash, first.hash);
        assert_eq!(
            head,
            ChainHead {
                seq: 2,
                hash: second.hash.clone()
            }
        );
        assert_eq!(k.hash(LinkVersion::Keyed, 2, &first.hash, &second.event), second.hash);
    }

    /// The version-1 bytes as first defined (a `serde_json::Value` array of the old string
    /// fields): chains written by earlier versions must keep verifying.
    #[test]
    fn legacy_bytes_are_unchanged_from_the_first_encoding() {
        let mut e = event();
        e.proxy_mode = Some(Surface::Path);
        e.credential = Some("git\"hub\u{1}é".into());
        e.credential_version = Some(-3);
        e.target_host = Some(Host::from("api.example.com"));
        e.target_path = Some(TargetPath::from("/a b/\\x?q=_"));
        e.status = Some(200);
        e.latency_ms = Some(i64::MAX);
        e.bytes = Some(0);
        e.client_ip = Some("2001:db8::1".parse().unwrap());
        e.outcome = Outcome::error("forbidden");
        let (kind, id) = e.actor.parts();
        let expected = serde_json::to_vec(&serde_json::json!([
            1,
            7,
            e.id.to_string(),
            e.tenant_id.as_str(),
            e.time.timestamp_micros(),
            kind,
            id,
            "proxy.request",
            "path",
            "git\"hub\u{1}é",
            -3,
            "GET",
            "api.example.com",
            "/a b/\\x?q=_",
            200,
            i64::MAX,
            0,
            "2001:db8::1",
            "forbidden",
        ]))
        .unwrap();
        assert_eq!(legacy_bytes(&e, 7), expected);
        let bare = AuditEvent::new(crate::audit::system_tenant(), Actor::None, "auth.failure");
        let bare_expected = serde_json::to_vec(&serde_json::json!([
            1,
            0,
            bare.id.to_string(),
            crate::audit::SYSTEM_TENANT,
            bare.time.timestamp_micros(),
            "none",
            null,
            "auth.failure",
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            "ok",
        ]))
        .unwrap();
        assert_eq!(legacy_bytes(&bare, 0), bare_expected);
    }

    #[test]
    fn a_hash_after_a_malformed_previous_hash_is_still_defined() {
        let k = key();
        let e = event();
        let good = k.hash(LinkVersion::Keyed, 1, GENESIS_HASH, &e);
        assert_ne!(k.hash(LinkVersion::Keyed, 1, "zz", &e), good);
        assert_eq!(
            k.hash(LinkVersion::Keyed, 1, "abcd", &e),
            k.hash(LinkVersion::Keyed, 1, "ABCD", &e)
        );
    }
}
