//! The data the legacy fixtures hold, built deterministically: fixed ids and instants, sealed
//! under a fixed (test-only) master key. The fixtures were written by the store of the last
//! landing (see `legacy/README.md`); the upgrade test reads them back through today's store.

use chrono::{DateTime, TimeZone as _, Utc};
use keystile::crypto::token::TokenHash;
use keystile::crypto::{Aad, MasterKey, Sealed};
use keystile::domain::glob::Glob;
use keystile::domain::{
    Alias, ApiKeyId, CredentialId, CredentialKind, EgressPolicy, EnvName, Injection, Name, Permission, Permissions,
    Plan, ProjectId, ProjectKeyId, ProjectName, RoleId, RouteId, RouteSpec, Scopes, SecretId, SecretName, TenantId,
};
use keystile::store::{
    ApiKeyRecord, CredentialRecord, CredentialStatus, ProjectKeyRecord, ProjectRecord, RoleRecord, RouteRecord,
    SecretRecord, TenantRecord, TenantStatus,
};

/// The fixture's master key (base64 of 32 bytes 0x2a): test data only.
pub const MASTER_KEY: &str = "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";

pub fn master() -> MasterKey {
    MasterKey::from_base64(MASTER_KEY).expect("fixture master key")
}

fn id(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// Instants that stress the old encodings (RFC 3339 text on SQLite, TIMESTAMPTZ on PostgreSQL).
pub fn instants() -> Vec<DateTime<Utc>> {
    vec![
        DateTime::from_timestamp_micros(1_767_225_600_123_456).expect("in range"),
        Utc.with_ymd_and_hms(2024, 2, 29, 12, 0, 0)
            .single()
            .expect("valid date"),
        DateTime::from_timestamp_micros(1_700_000_000_000_001).expect("in range"),
        DateTime::from_timestamp_micros(1_700_000_000_123_000).expect("in range"),
        DateTime::from_timestamp_micros(-1).expect("in range"),
        DateTime::from_timestamp_micros(32_503_679_999_999_999).expect("in range"),
    ]
}

pub fn t(i: usize) -> DateTime<Utc> {
    instants()[i]
}

pub fn acme() -> TenantRecord {
    TenantRecord {
        id: TenantId::parse(&id(1)).unwrap(),
        name: "acme".into(),
        status: TenantStatus::Active,
        plan: serde_json::from_value(serde_json::json!({"disabled_surfaces": ["mcp"], "operations_per_month": 1000}))
            .unwrap(),
        created_at: t(0),
    }
}

pub fn globex() -> TenantRecord {
    TenantRecord {
        id: TenantId::parse(&id(2)).unwrap(),
        name: "globex".into(),
        status: TenantStatus::Terminated,
        plan: Plan::default(),
        created_at: t(4),
    }
}

pub fn role(tenant: &TenantRecord, n: u32, i: usize) -> RoleRecord {
    RoleRecord {
        id: RoleId::parse(&id(100 + n)).unwrap(),
        tenant_id: tenant.id.clone(),
        name: Name::parse(&format!("role {n}")).unwrap(),
        description: n.is_multiple_of(2).then(|| format!("role number {n}")),
        permissions: Permissions::new([Permission::Read, Permission::Audit]),
        credential_scopes: Scopes::new(vec![Glob::parse("github-*").unwrap()]),
        created_at: t(i),
    }
}

pub fn key(tenant: &TenantRecord, role: &RoleRecord, n: u32, i: usize) -> ApiKeyRecord {
    ApiKeyRecord {
        id: ApiKeyId::parse(&id(200 + n)).unwrap(),
        tenant_id: tenant.id.clone(),
        name: Name::parse(&format!("key {n}")).unwrap(),
        key_prefix: format!("kst_{n:04}"),
        key_hash: TokenHash::from_hex(&format!("{n:064x}")).unwrap(),
        role_id: role.id.clone(),
        expires_at: (n % 2 == 1).then(|| t((i + 1) % 6)),
        last_used_at: (n % 3 == 1).then(|| t((i + 2) % 6)),
        revoked_at: (n == 4).then(|| t((i + 3) % 6)),
        created_at: t(i),
    }
}

pub fn credential_aad<'a>(tenant: &'a TenantId, id: &'a CredentialId, version: i64) -> Aad<'a> {
    Aad {
        kind: "credential",
        tenant: tenant.as_str(),
        object_id: id.as_str(),
        version,
    }
}

/// A credential without its sealed data (random on every seal: compared by decrypting).
pub fn credential(tenant: &TenantRecord, n: u32, i: usize) -> CredentialRecord {
    let id = CredentialId::parse(&id(300 + n)).unwrap();
    let policy: EgressPolicy =
        serde_json::from_value(serde_json::json!({"allowed_hosts": ["api.example.com", "*.example.org"]})).unwrap();
    CredentialRecord {
        sealed: Sealed {
            wrapped_key: Vec::new(),
            ciphertext: Vec::new(),
        },
        id,
        tenant_id: tenant.id.clone(),
        alias: Alias::parse(&format!("github-{n}")).unwrap(),
        kind: CredentialKind::ApiKey,
        status: if n == 2 {
            CredentialStatus::Frozen
        } else {
            CredentialStatus::Active
        },
        version: 1,
        inject: (n == 1).then(|| Injection::Header {
            header: "x-api-key".into(),
            format: "Token {key}".into(),
        }),
        policy,
        description: Some(format!("credential {n}")),
        metadata: serde_json::json!({"team": "platform", "n": n, "nested": {"ok": true}})
            .as_object()
            .unwrap()
            .clone(),
        created_at: t(i),
        updated_at: t((i + 1) % 6),
    }
}

pub fn credential_plaintext(n: u32, version: i64) -> Vec<u8> {
    format!(r#"{{"key":"sk-legacy-{n}-v{version}"}}"#).into_bytes()
}

pub fn route(tenant: &TenantRecord) -> RouteRecord {
    RouteRecord {
        id: RouteId::parse(&id(400)).unwrap(),
        tenant_id: tenant.id.clone(),
        name: Alias::parse("billing").unwrap(),
        spec: serde_json::from_value::<RouteSpec>(serde_json::json!({
            "base_url": "https://api.example.com/v1/",
            "credential": "github-1",
            "allowed_methods": ["GET", "POST"],
            "timeout_ms": 5000
        }))
        .unwrap(),
        created_at: t(2),
        updated_at: t(3),
    }
}

pub fn project(tenant: &TenantRecord) -> ProjectRecord {
    ProjectRecord {
        id: ProjectId::parse(&id(500)).unwrap(),
        tenant_id: tenant.id.clone(),
        name: ProjectName::parse("billing").unwrap(),
        created_at: t(1),
    }
}

pub fn project_key(p: &ProjectRecord, n: u32, i: usize) -> ProjectKeyRecord {
    ProjectKeyRecord {
        id: ProjectKeyId::parse(&id(600 + n)).unwrap(),
        project_id: p.id.clone(),
        tenant_id: p.tenant_id.clone(),
        public_key: [n as u8; 32],
        created_at: t(i),
        valid_until: None,
    }
}

pub fn secret_aad<'a>(tenant: &'a TenantId, id: &'a SecretId, version: i64) -> Aad<'a> {
    Aad {
        kind: "project_secret",
        tenant: tenant.as_str(),
        object_id: id.as_str(),
        version,
    }
}

pub fn secret(p: &ProjectRecord, n: u32, i: usize) -> SecretRecord {
    SecretRecord {
        sealed: Sealed {
            wrapped_key: Vec::new(),
            ciphertext: Vec::new(),
        },
        id: SecretId::parse(&id(700 + n)).unwrap(),
        tenant_id: p.tenant_id.clone(),
        project_id: p.id.clone(),
        env: EnvName::parse("production").unwrap(),
        name: SecretName::parse(&format!("SECRET_{n}")).unwrap(),
        version: 1,
        created_at: t(i),
        updated_at: t(i),
    }
}

pub fn secret_plaintext(n: u32, version: i64) -> Vec<u8> {
    format!("postgres://legacy-{n}-v{version}").into_bytes()
}
