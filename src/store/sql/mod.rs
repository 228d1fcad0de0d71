//! [`SqlStore`]: the [`Store`] on SQLite or PostgreSQL, through sqlx's `Any` driver.
//!
//! One implementation for both backends, in plain functions: the two accept the same
//! statements (`$N` placeholders are numbered parameters in SQLite too, both have `ON
//! CONFLICT … DO UPDATE` and `RETURNING`), so a query is written — and reviewed — once. What
//! differs is small and named in [`Dialect`]: how a writing transaction begins, the migration
//! directory, and how to connect (`sqlite.rs`, `postgres.rs`). The `Any` driver carries only
//! integers, floats, text and bytes, so timestamps are stored as integer microseconds since
//! the epoch (exact on both backends, where text and `TIMESTAMPTZ` were not the same thing).
//!
//! Each group of tables has a module with its row types (`#[derive(FromRow)]`, turned into
//! records by `TryFrom`, where ids and enums are parsed) and its queries; the `Store` impl at
//! the bottom forwards to them. Adding a table: a migration file in each of
//! `migrations/sqlite` and `migrations/postgres`, a module here with its rows and queries,
//! the methods on [`Store`] with their forwarding lines, and cases in `tests/store`.

mod audit;
mod credentials;
mod keys;
mod migrate;
mod projects;
mod roles;
mod routes;
mod tenants;

use anyhow::anyhow;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Any, AnyPool, Transaction};

use super::{
    ApiKeyRecord, CredentialRecord, CredentialStatus, JournalMark, KeyGrant, ProjectKeyRecord, ProjectRecord,
    RoleRecord, RouteRecord, SecretRecord, Store, StoreError, StoreResult, TenantRecord, TenantStatus,
};
use crate::audit::{AuditEvent, AuditFilter, AuditRecord, ChainHead, ChainKey};
use crate::crypto::Sealed;
use crate::crypto::token::TokenHash;
use crate::domain::{
    Alias, ApiKeyId, CredentialId, EnvName, Plan, ProjectId, ProjectName, RoleId, SecretId, SecretName, TenantId,
};

/// What differs between the backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The statement that begins a transaction which may write. SQLite: `BEGIN IMMEDIATE`
    /// takes the write lock (waiting up to the busy timeout) before the first read; a deferred
    /// transaction that reads and then writes fails at once with "database is locked" when
    /// another connection committed in between, and the busy timeout cannot help it.
    /// PostgreSQL: row locks serialize writers.
    fn begin_write(self) -> &'static str {
        match self {
            Self::Sqlite => "BEGIN IMMEDIATE",
            Self::Postgres => "BEGIN",
        }
    }
}

/// A store on an SQLite file or a PostgreSQL database (see [`SqlStore::open`] and
/// [`SqlStore::connect`]).
#[derive(Clone)]
pub struct SqlStore {
    pool: AnyPool,
    dialect: Dialect,
}

impl SqlStore {
    /// Applies pending migrations on `pool` and wraps it.
    pub(in crate::store) async fn migrated(pool: AnyPool, dialect: Dialect) -> anyhow::Result<Self> {
        migrate::run(&pool, dialect).await?;
        Ok(Self { pool, dialect })
    }

    /// The underlying pool (for tests that look at or tamper with rows directly).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which backend this is.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Begins a transaction that may write (see [`Dialect::begin_write`]).
    async fn begin_write(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        self.pool.begin_with(self.dialect.begin_write()).await
    }
}

/// Maps a driver error: unique violations become `Conflict(what)`, the rest `Database`.
fn db_err(what: &str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(format!("{what} already exists")),
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::Conflict(format!("{what} refers to something that does not exist"))
        }
        _ => StoreError::Database(anyhow::Error::new(e).context(format!("store: {what}"))),
    }
}

/// A write that must have touched a row: none touched means the object is not there (in this
/// tenant).
fn one_row(affected: u64, what: &'static str) -> StoreResult<()> {
    if affected == 0 {
        Err(StoreError::NotFound(what))
    } else {
        Ok(())
    }
}

/// Parses a JSON column.
fn json_col<T: serde::de::DeserializeOwned>(text: &str, column: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Database(anyhow!("malformed {column} column: {e}")))
}

/// Serializes a JSON column.
fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Serializing our own plain data types to a String cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

/// Parses an id or enum column that we wrote ourselves.
fn parsed<T, E>(value: Result<T, E>, column: &str) -> StoreResult<T> {
    value.map_err(|_| StoreError::Database(anyhow!("malformed {column} column")))
}

/// A timestamp as stored: microseconds since the Unix epoch.
fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// A stored timestamp.
fn from_micros(us: i64, column: &str) -> StoreResult<DateTime<Utc>> {
    parsed(DateTime::from_timestamp_micros(us).ok_or(()), column)
}

/// A stored optional timestamp.
fn from_opt_micros(us: Option<i64>, column: &str) -> StoreResult<Option<DateTime<Utc>>> {
    us.map(|us| from_micros(us, column)).transpose()
}

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db_err("ping"))?;
        Ok(())
    }

    async fn ensure_tenant(&self, name: &str) -> StoreResult<TenantRecord> {
        tenants::ensure(self, name).await
    }

    async fn create_role(&self, role: &RoleRecord) -> StoreResult<()> {
        roles::insert(&self.pool, role).await
    }
    async fn list_roles(&self, tenant: &TenantId) -> StoreResult<Vec<RoleRecord>> {
        roles::list(self, tenant).await
    }
    async fn role(&self, tenant: &TenantId, id: &RoleId) -> StoreResult<RoleRecord> {
        roles::one(&self.pool, tenant, id).await
    }
    async fn delete_role(&self, tenant: &TenantId, id: &RoleId) -> StoreResult<()> {
        roles::delete(self, tenant, id).await
    }

    async fn create_api_key(&self, key: &ApiKeyRecord) -> StoreResult<()> {
        keys::insert(&self.pool, key).await
    }
    async fn list_api_keys(&self, tenant: &TenantId) -> StoreResult<Vec<ApiKeyRecord>> {
        keys::list(self, tenant).await
    }
    async fn api_key_by_hash(&self, hash: &TokenHash) -> StoreResult<Option<KeyGrant>> {
        keys::by_hash(self, hash).await
    }
    async fn revoke_api_key(&self, tenant: &TenantId, id: &ApiKeyId, at: DateTime<Utc>) -> StoreResult<()> {
        keys::revoke(self, tenant, id, at).await
    }
    async fn touch_api_key(&self, id: &ApiKeyId, at: DateTime<Utc>) -> StoreResult<()> {
        keys::touch(self, id, at).await
    }
    async fn count_api_keys(&self, tenant: &TenantId) -> StoreResult<i64> {
        keys::count(self, tenant).await
    }

    async fn create_credential(&self, c: &CredentialRecord) -> StoreResult<()> {
        credentials::insert(self, c).await
    }
    async fn credential(&self, tenant: &TenantId, alias: &Alias) -> StoreResult<CredentialRecord> {
        credentials::one(self, tenant, alias).await
    }
    async fn list_credentials(
        &self,
        tenant: &TenantId,
        after: Option<&Alias>,
        limit: u32,
    ) -> StoreResult<Vec<CredentialRecord>> {
        credentials::page(self, tenant, after, limit).await
    }
    async fn update_credential(&self, c: &CredentialRecord) -> StoreResult<()> {
        credentials::update(self, c).await
    }
    async fn set_credential_status(
        &self,
        tenant: &TenantId,
        id: &CredentialId,
        status: CredentialStatus,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        credentials::set_status(self, tenant, id, status, at).await
    }
    async fn rotate_credential(
        &self,
        tenant: &TenantId,
        id: &CredentialId,
        expected_version: i64,
        sealed: &Sealed,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        credentials::rotate(self, tenant, id, expected_version, sealed, at).await
    }
    async fn delete_credential(&self, tenant: &TenantId, alias: &Alias) -> StoreResult<()> {
        credentials::delete(self, tenant, alias).await
    }

    async fn create_route(&self, route: &RouteRecord) -> StoreResult<()> {
        routes::insert(self, route).await
    }
    async fn route(&self, tenant: &TenantId, name: &Alias) -> StoreResult<RouteRecord> {
        routes::one(self, tenant, name).await
    }
    async fn list_routes(&self, tenant: &TenantId) -> StoreResult<Vec<RouteRecord>> {
        routes::list(self, tenant).await
    }
    async fn update_route(&self, route: &RouteRecord) -> StoreResult<()> {
        routes::update(self, route).await
    }
    async fn delete_route(&self, tenant: &TenantId, name: &Alias) -> StoreResult<()> {
        routes::delete(self, tenant, name).await
    }

    async fn append_audit(
        &self,
        events: Vec<AuditEvent>,
        chain: &ChainKey,
        journal: Option<JournalMark<'_>>,
    ) -> StoreResult<Vec<AuditRecord>> {
        audit::append(self, events, chain, journal).await
    }
    async fn audit_journal_checkpoint(&self, journal: &str) -> StoreResult<Option<i64>> {
        audit::journal_checkpoint(self, journal).await
    }
    async fn forget_audit_journal(&self, journal: &str) -> StoreResult<()> {
        audit::forget_journal(self, journal).await
    }
    async fn list_audit(&self, tenant: &TenantId, filter: &AuditFilter) -> StoreResult<Vec<AuditRecord>> {
        audit::list(self, tenant, filter).await
    }
    async fn audit_chain(
        &self,
        tenant: &TenantId,
        after_seq: i64,
        up_to_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<AuditRecord>> {
        audit::chain(self, tenant, after_seq, up_to_seq, limit).await
    }
    async fn audit_head(&self, tenant: &TenantId) -> StoreResult<Option<ChainHead>> {
        audit::head(self, tenant).await
    }
    async fn unkeyed_audit_chains(&self) -> StoreResult<Vec<TenantId>> {
        audit::unkeyed_chains(self).await
    }

    async fn create_tenant(&self, tenant: &TenantRecord, role: &RoleRecord, key: &ApiKeyRecord) -> StoreResult<()> {
        tenants::create(self, tenant, role, key).await
    }
    async fn tenant(&self, id: &TenantId) -> StoreResult<TenantRecord> {
        tenants::one(&self.pool, id).await
    }
    async fn list_tenants(&self, after: Option<&str>, limit: u32) -> StoreResult<Vec<TenantRecord>> {
        tenants::page(self, after, limit).await
    }
    async fn set_tenant_plan(&self, id: &TenantId, plan: &Plan) -> StoreResult<()> {
        tenants::set_plan(self, id, plan).await
    }
    async fn set_tenant_status(&self, id: &TenantId, status: TenantStatus) -> StoreResult<()> {
        tenants::set_status(self, id, status).await
    }
    async fn add_usage(&self, tenant: &TenantId, period: &str, delta: i64) -> StoreResult<i64> {
        tenants::add_usage(self, tenant, period, delta).await
    }
    async fn usage(&self, tenant: &TenantId, period: &str) -> StoreResult<i64> {
        tenants::usage(self, tenant, period).await
    }

    async fn create_project(&self, project: &ProjectRecord, key: &ProjectKeyRecord) -> StoreResult<()> {
        projects::create(self, project, key).await
    }
    async fn list_projects(&self, tenant: &TenantId) -> StoreResult<Vec<ProjectRecord>> {
        projects::list(self, tenant).await
    }
    async fn project(&self, tenant: &TenantId, id: &ProjectId) -> StoreResult<ProjectRecord> {
        projects::one(self, tenant, id).await
    }
    async fn delete_project(&self, tenant: &TenantId, id: &ProjectId) -> StoreResult<()> {
        projects::delete(self, tenant, id).await
    }
    async fn rotate_project_key(&self, key: &ProjectKeyRecord, old_valid_until: DateTime<Utc>) -> StoreResult<()> {
        projects::rotate_key(self, key, old_valid_until).await
    }
    async fn project_keys(&self, tenant: &TenantId, project: &ProjectId) -> StoreResult<Vec<ProjectKeyRecord>> {
        projects::keys(self, tenant, project).await
    }
    async fn project_keys_by_name(
        &self,
        name: &ProjectName,
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<(ProjectRecord, ProjectKeyRecord)>> {
        projects::keys_by_name(self, name, at).await
    }

    async fn secret(
        &self,
        tenant: &TenantId,
        project: &ProjectId,
        env: &EnvName,
        name: &SecretName,
    ) -> StoreResult<Option<SecretRecord>> {
        projects::secret(self, tenant, project, env, name).await
    }
    async fn create_secret(&self, secret: &SecretRecord) -> StoreResult<()> {
        projects::create_secret(self, secret).await
    }
    async fn update_secret(
        &self,
        tenant: &TenantId,
        id: &SecretId,
        expected_version: i64,
        sealed: &Sealed,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        projects::update_secret(self, tenant, id, expected_version, sealed, at).await
    }
    async fn list_secrets(
        &self,
        tenant: &TenantId,
        project: &ProjectId,
        env: Option<&EnvName>,
    ) -> StoreResult<Vec<SecretRecord>> {
        projects::secrets(self, tenant, project, env).await
    }
    async fn delete_secret(&self, tenant: &TenantId, id: &SecretId) -> StoreResult<()> {
        projects::delete_secret(self, tenant, id).await
    }

    async fn consume_nonce(
        &self,
        project: &ProjectId,
        nonce: &str,
        keep_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        projects::consume_nonce(self, project, nonce, keep_until, now).await
    }
}
