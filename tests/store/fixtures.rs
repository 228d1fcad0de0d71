//! Records to store, built the way the application builds them, and result assertions.

use std::fmt::Debug;

use chrono::{DateTime, Duration, Utc};
use keystile::crypto::token::{self, TokenHash};
use keystile::crypto::{Aad, MasterKey, Sealed};
use keystile::domain::glob::Glob;
use keystile::domain::{
    Alias, ApiKeyId, CredentialId, CredentialKind, EgressPolicy, Injection, Name, Permission, Permissions, RoleId,
    Scopes, TenantId,
};
use keystile::store::{
    ApiKeyRecord, CredentialRecord, CredentialStatus, RoleRecord, Store, StoreError, StoreResult, now,
};
use serde_json::json;

/// Creates (or finds) a tenant and returns its id.
pub async fn tenant(store: &dyn Store, name: &str) -> TenantId {
    store.ensure_tenant(name).await.expect("ensure_tenant").id
}

pub fn name(raw: &str) -> Name {
    Name::parse(raw).expect("valid name")
}

pub fn alias(raw: &str) -> Alias {
    Alias::parse(raw).expect("valid alias")
}

/// A role with a description, several permissions and scopes.
pub fn role(tenant: &TenantId, role_name: &str) -> RoleRecord {
    RoleRecord {
        id: RoleId::generate(),
        tenant_id: tenant.clone(),
        name: name(role_name),
        description: Some(format!("the {role_name} role")),
        permissions: Permissions::new([Permission::Read, Permission::Execute, Permission::Audit]),
        credential_scopes: Scopes::new(vec![
            Glob::parse("github-*").expect("glob"),
            Glob::parse("openai").expect("glob"),
        ]),
        created_at: now(),
    }
}

/// Creates a role in the store and returns it.
pub async fn create_role(store: &dyn Store, tenant: &TenantId, role_name: &str) -> RoleRecord {
    let r = role(tenant, role_name);
    store.create_role(&r).await.expect("create_role");
    r
}

/// A fresh, unrevoked, never used API key with a real `kst_` token hash.
pub fn api_key(tenant: &TenantId, role: &RoleId, key_name: &str) -> ApiKeyRecord {
    let t = token::generate();
    ApiKeyRecord {
        id: ApiKeyId::generate(),
        tenant_id: tenant.clone(),
        name: name(key_name),
        key_prefix: t.prefix,
        key_hash: t.hash,
        role_id: role.clone(),
        expires_at: Some(now() + Duration::days(30)),
        last_used_at: None,
        revoked_at: None,
        created_at: now(),
    }
}

/// Creates an API key in the store and returns it.
pub async fn create_api_key(store: &dyn Store, tenant: &TenantId, role: &RoleId, key_name: &str) -> ApiKeyRecord {
    let k = api_key(tenant, role, key_name);
    store.create_api_key(&k).await.expect("create_api_key");
    k
}

/// The associated data the application binds a credential's sealed data to.
pub fn credential_aad<'a>(tenant: &'a TenantId, id: &'a CredentialId, version: i64) -> Aad<'a> {
    Aad {
        kind: "credential",
        tenant: tenant.as_str(),
        object_id: id.as_str(),
        version,
    }
}

/// An `api_key` credential (version 1) whose data is `plaintext` sealed under `master`.
pub fn credential(master: &MasterKey, tenant: &TenantId, raw_alias: &str, plaintext: &[u8]) -> CredentialRecord {
    let id = CredentialId::generate();
    let sealed = Sealed::seal(master, credential_aad(tenant, &id, 1), plaintext);
    let at = now();
    CredentialRecord {
        id,
        tenant_id: tenant.clone(),
        alias: alias(raw_alias),
        kind: CredentialKind::ApiKey,
        status: CredentialStatus::Active,
        version: 1,
        inject: Some(Injection::Header {
            header: "x-api-key".into(),
            format: "Token {key}".into(),
        }),
        policy: policy(json!({"allowed_hosts": ["api.example.com", "*.example.org"]})),
        description: Some(format!("{raw_alias} for the test suite")),
        metadata: metadata(json!({"team": "platform", "tags": ["a", "b"], "nested": {"n": 1.5, "ok": true}})),
        sealed,
        created_at: at,
        updated_at: at,
    }
}

/// Creates a credential in the store and returns it.
pub async fn create_credential(
    store: &dyn Store,
    master: &MasterKey,
    tenant: &TenantId,
    raw_alias: &str,
) -> CredentialRecord {
    let c = credential(
        master,
        tenant,
        raw_alias,
        format!(r#"{{"key":"sk-{raw_alias}"}}"#).as_bytes(),
    );
    store.create_credential(&c).await.expect("create_credential");
    c
}

/// A validated egress policy from its JSON form.
pub fn policy(value: serde_json::Value) -> EgressPolicy {
    let p: EgressPolicy = serde_json::from_value(value).expect("policy JSON");
    p.validate().expect("valid policy");
    p
}

/// A metadata object from its JSON form.
pub fn metadata(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match value {
        serde_json::Value::Object(map) => map,
        other => panic!("metadata must be an object, got {other}"),
    }
}

/// A hash no stored key has.
pub fn unknown_hash() -> TokenHash {
    token::generate().hash
}

/// `t` shifted by whole seconds (keeps microsecond precision).
pub fn secs(t: DateTime<Utc>, s: i64) -> DateTime<Utc> {
    t + Duration::seconds(s)
}

/// Asserts that a store call failed with `NotFound`.
#[track_caller]
pub fn assert_not_found<T: Debug>(result: StoreResult<T>, what: &str) {
    match result {
        Err(StoreError::NotFound(_)) => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

/// Asserts that a store call failed with `Conflict`.
#[track_caller]
pub fn assert_conflict<T: Debug>(result: StoreResult<T>, what: &str) {
    match result {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("{what}: expected Conflict, got {other:?}"),
    }
}
