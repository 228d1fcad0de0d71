//! Records as the store reads and writes them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::crypto::Sealed;
use crate::crypto::token::TokenHash;
use crate::domain::{
    Alias, ApiKeyId, CredentialId, CredentialKind, EgressPolicy, EnvName, Injection, Name, Permissions, ProjectId,
    ProjectKeyId, ProjectName, RoleId, RouteId, RouteSpec, Scopes, SecretId, SecretName, TenantId,
};

/// Whether a tenant may act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    Active,
    Terminated,
}

/// Whether a credential may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialStatus {
    Active,
    Frozen,
}

impl TenantStatus {
    /// The stored text form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Terminated => "terminated",
        }
    }

    /// Parses the stored text form.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Active, Self::Terminated].into_iter().find(|v| v.as_str() == s)
    }
}

impl CredentialStatus {
    /// The stored text form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Frozen => "frozen",
        }
    }

    /// Parses the stored text form.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Active, Self::Frozen].into_iter().find(|v| v.as_str() == s)
    }
}

/// A tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantRecord {
    pub id: TenantId,
    pub name: String,
    pub status: TenantStatus,
    pub plan: crate::domain::Plan,
    pub created_at: DateTime<Utc>,
}

/// A role.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleRecord {
    pub id: RoleId,
    pub tenant_id: TenantId,
    pub name: Name,
    pub description: Option<String>,
    pub permissions: Permissions,
    pub credential_scopes: Scopes,
    pub created_at: DateTime<Utc>,
}

/// An API key (hash only; the plaintext is never stored).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRecord {
    pub id: ApiKeyId,
    pub tenant_id: TenantId,
    pub name: Name,
    pub key_prefix: String,
    pub key_hash: TokenHash,
    pub role_id: RoleId,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// What a presented key grants: the key, its role and its tenant's status.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyGrant {
    pub key: ApiKeyRecord,
    pub role: RoleRecord,
    pub tenant_status: TenantStatus,
    pub tenant_plan: crate::domain::Plan,
}

/// A credential with its sealed data.
#[derive(Debug, Clone, PartialEq)]
pub struct CredentialRecord {
    pub id: CredentialId,
    pub tenant_id: TenantId,
    pub alias: Alias,
    pub kind: CredentialKind,
    pub status: CredentialStatus,
    pub version: i64,
    pub inject: Option<Injection>,
    pub policy: EgressPolicy,
    pub description: Option<String>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub sealed: Sealed,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A route.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteRecord {
    pub id: RouteId,
    pub tenant_id: TenantId,
    pub name: Alias,
    pub spec: RouteSpec,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A project: an application that fetches its configuration with signed requests (SPEC S7).
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectRecord {
    pub id: ProjectId,
    pub tenant_id: TenantId,
    pub name: ProjectName,
    pub created_at: DateTime<Utc>,
}

/// One Ed25519 public key of a project. `valid_until` is `None` for the current key; a rotated
/// key keeps verifying until then.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectKeyRecord {
    pub id: ProjectKeyId,
    pub project_id: ProjectId,
    pub tenant_id: TenantId,
    pub public_key: [u8; 32],
    pub created_at: DateTime<Utc>,
    pub valid_until: Option<DateTime<Utc>>,
}

impl ProjectKeyRecord {
    /// Whether the key verifies signatures at `at`.
    pub fn valid_at(&self, at: DateTime<Utc>) -> bool {
        self.valid_until.is_none_or(|until| at < until)
    }
}

/// A configuration secret of a project in one environment, sealed like a credential.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretRecord {
    pub id: SecretId,
    pub tenant_id: TenantId,
    pub project_id: ProjectId,
    pub env: EnvName,
    pub name: SecretName,
    pub version: i64,
    pub sealed: Sealed,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
