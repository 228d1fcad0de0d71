//! Persistence: the [`Store`] seam, its records, and [`SqlStore`], its implementation on
//! SQLite and PostgreSQL.
//!
//! Every query is scoped by tenant (except key lookup by hash, which is how a tenant is found).
//! Stored secrets are always [`Sealed`](crate::crypto::Sealed); this layer never sees
//! plaintext. Must not contain business rules beyond uniqueness and referential integrity (the
//! audit chain's links, for one, are computed by `audit`, and only persisted here).

pub mod postgres;
mod records;
mod sql;
pub mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use records::*;
pub use sql::{Dialect, SqlStore};

use crate::audit::{AuditEvent, AuditFilter, AuditRecord, ChainHead, ChainKey};
use crate::crypto::Sealed;
use crate::crypto::token::TokenHash;
use crate::domain::{
    Alias, ApiKeyId, CredentialId, EnvName, Plan, ProjectId, ProjectName, RoleId, SecretId, SecretName, TenantId,
};

/// A storage failure, classified by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist (in this tenant).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness or reference rule refused the write; the text is safe to show.
    #[error("{0}")]
    Conflict(String),
    /// Anything else: logged, never shown.
    #[error("database error")]
    Database(#[source] anyhow::Error),
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// The persistence seam. One implementation per backend; one conformance suite for all.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Whether the database answers (for `/ready`).
    async fn ping(&self) -> StoreResult<()>;

    /// Returns the tenant named `name`, creating it (active) if absent.
    async fn ensure_tenant(&self, name: &str) -> StoreResult<TenantRecord>;

    /// Creates a role; `Conflict` if the name is taken in the tenant.
    async fn create_role(&self, role: &RoleRecord) -> StoreResult<()>;
    /// Lists a tenant's roles by name.
    async fn list_roles(&self, tenant: &TenantId) -> StoreResult<Vec<RoleRecord>>;
    /// One role of a tenant.
    async fn role(&self, tenant: &TenantId, id: &RoleId) -> StoreResult<RoleRecord>;
    /// Deletes a role; `Conflict` while unrevoked keys use it.
    async fn delete_role(&self, tenant: &TenantId, id: &RoleId) -> StoreResult<()>;

    /// Creates an API key; the role must exist in the same tenant.
    async fn create_api_key(&self, key: &ApiKeyRecord) -> StoreResult<()>;
    /// Lists a tenant's unrevoked keys, newest first.
    async fn list_api_keys(&self, tenant: &TenantId) -> StoreResult<Vec<ApiKeyRecord>>;
    /// Finds a key by hash (revoked ones too, so callers can say so), with role and tenant status.
    async fn api_key_by_hash(&self, hash: &TokenHash) -> StoreResult<Option<KeyGrant>>;
    /// Revokes a key (idempotent for an already revoked key: `NotFound`).
    async fn revoke_api_key(&self, tenant: &TenantId, id: &ApiKeyId, at: DateTime<Utc>) -> StoreResult<()>;
    /// Records that a key was used.
    async fn touch_api_key(&self, id: &ApiKeyId, at: DateTime<Utc>) -> StoreResult<()>;
    /// Counts a tenant's unrevoked keys.
    async fn count_api_keys(&self, tenant: &TenantId) -> StoreResult<i64>;

    /// Creates a credential; `Conflict` if the alias is taken in the tenant.
    async fn create_credential(&self, c: &CredentialRecord) -> StoreResult<()>;
    /// One credential by alias.
    async fn credential(&self, tenant: &TenantId, alias: &Alias) -> StoreResult<CredentialRecord>;
    /// A page of credentials ordered by alias, starting after `after`.
    async fn list_credentials(
        &self,
        tenant: &TenantId,
        after: Option<&Alias>,
        limit: u32,
    ) -> StoreResult<Vec<CredentialRecord>>;
    /// Saves injection, policy, description and metadata (never status, data or version).
    async fn update_credential(&self, c: &CredentialRecord) -> StoreResult<()>;
    /// Freezes or unfreezes, touching nothing else (so it cannot race a concurrent update).
    async fn set_credential_status(
        &self,
        tenant: &TenantId,
        id: &CredentialId,
        status: CredentialStatus,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Replaces the sealed data and bumps the version, if the version is still `expected`.
    async fn rotate_credential(
        &self,
        tenant: &TenantId,
        id: &CredentialId,
        expected_version: i64,
        sealed: &Sealed,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Deletes a credential.
    async fn delete_credential(&self, tenant: &TenantId, alias: &Alias) -> StoreResult<()>;

    /// Creates a route; `Conflict` if the name is taken in the tenant.
    async fn create_route(&self, route: &RouteRecord) -> StoreResult<()>;
    /// One route by name.
    async fn route(&self, tenant: &TenantId, name: &Alias) -> StoreResult<RouteRecord>;
    /// A tenant's routes by name.
    async fn list_routes(&self, tenant: &TenantId) -> StoreResult<Vec<RouteRecord>>;
    /// Saves a route's spec.
    async fn update_route(&self, route: &RouteRecord) -> StoreResult<()>;
    /// Deletes a route.
    async fn delete_route(&self, tenant: &TenantId, name: &Alias) -> StoreResult<()>;

    /// Appends events to their tenants' hash chains in one transaction (all or nothing), each
    /// linked by `chain` after its chain's head (read and advanced under a lock, so writers on
    /// one database never fork a chain), and returns them as stored, in the order given. With
    /// `journal`, also records in the same transaction how far that journal is indexed, so a
    /// restart resumes after the last indexed event, never before or after it.
    async fn append_audit(
        &self,
        events: Vec<AuditEvent>,
        chain: &ChainKey,
        journal: Option<JournalMark<'_>>,
    ) -> StoreResult<Vec<AuditRecord>>;
    /// How far `journal` has been indexed (bytes), if it has been at all.
    async fn audit_journal_checkpoint(&self, journal: &str) -> StoreResult<Option<i64>>;
    /// Forgets a journal that has been indexed to its end and deleted.
    async fn forget_audit_journal(&self, journal: &str) -> StoreResult<()>;
    /// A tenant's events matching `filter`, newest first.
    async fn list_audit(&self, tenant: &TenantId, filter: &AuditFilter) -> StoreResult<Vec<AuditRecord>>;
    /// A tenant's events with `after_seq < seq <= up_to_seq`, oldest first, at most `limit`.
    async fn audit_chain(
        &self,
        tenant: &TenantId,
        after_seq: i64,
        up_to_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<AuditRecord>>;
    /// A tenant's chain head, if it has any event.
    async fn audit_head(&self, tenant: &TenantId) -> StoreResult<Option<ChainHead>>;
    /// The tenants whose newest event has an unkeyed (version 1) link: chains written before
    /// links were keyed and not sealed since.
    async fn unkeyed_audit_chains(&self) -> StoreResult<Vec<TenantId>>;

    /// Creates a tenant with its first admin role and API key, all or nothing; `Conflict` if
    /// the tenant's name is taken. (Operator-level: tenants are the scope, not scoped.)
    async fn create_tenant(&self, tenant: &TenantRecord, role: &RoleRecord, key: &ApiKeyRecord) -> StoreResult<()>;
    /// One tenant by id.
    async fn tenant(&self, id: &TenantId) -> StoreResult<TenantRecord>;
    /// A page of tenants ordered by name, starting after the name `after`.
    async fn list_tenants(&self, after: Option<&str>, limit: u32) -> StoreResult<Vec<TenantRecord>>;
    /// Replaces a tenant's plan.
    async fn set_tenant_plan(&self, id: &TenantId, plan: &Plan) -> StoreResult<()>;
    /// Sets a tenant's status (its data is kept either way).
    async fn set_tenant_status(&self, id: &TenantId, status: TenantStatus) -> StoreResult<()>;
    /// Adds `delta` operations to a tenant's count for `period` (`YYYY-MM`) atomically and
    /// returns the new total.
    async fn add_usage(&self, tenant: &TenantId, period: &str, delta: i64) -> StoreResult<i64>;
    /// A tenant's operation count for `period` (0 when none was recorded).
    async fn usage(&self, tenant: &TenantId, period: &str) -> StoreResult<i64>;

    /// Creates a project with its first key; `Conflict` if the name is taken in the tenant.
    async fn create_project(&self, project: &ProjectRecord, key: &ProjectKeyRecord) -> StoreResult<()>;
    /// A tenant's projects by name.
    async fn list_projects(&self, tenant: &TenantId) -> StoreResult<Vec<ProjectRecord>>;
    /// One project of a tenant.
    async fn project(&self, tenant: &TenantId, id: &ProjectId) -> StoreResult<ProjectRecord>;
    /// Deletes a project with its keys, secrets and nonces.
    async fn delete_project(&self, tenant: &TenantId, id: &ProjectId) -> StoreResult<()>;
    /// Makes `key` the project's current key; the previous current key stays valid until
    /// `old_valid_until`. `NotFound` if the project is not in `key.tenant_id`.
    async fn rotate_project_key(&self, key: &ProjectKeyRecord, old_valid_until: DateTime<Utc>) -> StoreResult<()>;
    /// All keys of a project, oldest first (expired ones too).
    async fn project_keys(&self, tenant: &TenantId, project: &ProjectId) -> StoreResult<Vec<ProjectKeyRecord>>;
    /// The keys valid at `at` of every project named `name`, in any tenant: a signature's
    /// `keyid` names a project but no tenant, so this is how the tenant is found.
    async fn project_keys_by_name(
        &self,
        name: &ProjectName,
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<(ProjectRecord, ProjectKeyRecord)>>;

    /// A project's secret by environment and name.
    async fn secret(
        &self,
        tenant: &TenantId,
        project: &ProjectId,
        env: &EnvName,
        name: &SecretName,
    ) -> StoreResult<Option<SecretRecord>>;
    /// Creates a secret; `Conflict` if the (project, env, name) exists, `NotFound` if the
    /// project is not in the secret's tenant.
    async fn create_secret(&self, secret: &SecretRecord) -> StoreResult<()>;
    /// Replaces a secret's sealed value and bumps its version, if it is still `expected_version`.
    async fn update_secret(
        &self,
        tenant: &TenantId,
        id: &SecretId,
        expected_version: i64,
        sealed: &Sealed,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// A project's secrets (of one environment, or all), by env then name.
    async fn list_secrets(
        &self,
        tenant: &TenantId,
        project: &ProjectId,
        env: Option<&EnvName>,
    ) -> StoreResult<Vec<SecretRecord>>;
    /// Deletes a secret.
    async fn delete_secret(&self, tenant: &TenantId, id: &SecretId) -> StoreResult<()>;

    /// Records a signature nonce of a project, kept until `keep_until`. Returns `false` when
    /// the nonce is already recorded (a replay), on any replica sharing the database. Nonces
    /// whose retention ended before `now` are purged on the way.
    async fn consume_nonce(
        &self,
        project: &ProjectId,
        nonce: &str,
        keep_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
}

/// Where an audit journal has been indexed to: the journal's name and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalMark<'a> {
    pub journal: &'a str,
    pub indexed_to: i64,
}

/// The current time in the unit the store keeps (whole microseconds), so a record built now
/// is equal to itself read back.
pub fn now() -> DateTime<Utc> {
    let t = Utc::now();
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}
