//! Credentials with their sealed data.

use chrono::{DateTime, Utc};
use sqlx_macros::FromRow;

use super::{SqlStore, db_err, from_micros, json_col, micros, one_row, parsed, to_json};
use crate::crypto::Sealed;
use crate::domain::{Alias, CredentialId, CredentialKind, TenantId};
use crate::store::{CredentialRecord, CredentialStatus, StoreError, StoreResult};

/// A `credentials` row.
#[derive(FromRow)]
struct CredentialRow {
    id: String,
    tenant_id: String,
    alias: String,
    kind: String,
    status: String,
    version: i64,
    inject: Option<String>,
    policy: String,
    description: Option<String>,
    metadata: String,
    wrapped_key: Vec<u8>,
    ciphertext: Vec<u8>,
    created_us: i64,
    updated_us: i64,
}

impl TryFrom<CredentialRow> for CredentialRecord {
    type Error = StoreError;

    fn try_from(r: CredentialRow) -> StoreResult<Self> {
        Ok(Self {
            id: parsed(CredentialId::parse(&r.id), "credentials.id")?,
            tenant_id: parsed(TenantId::parse(&r.tenant_id), "credentials.tenant_id")?,
            alias: parsed(Alias::parse(&r.alias), "credentials.alias")?,
            kind: parsed(CredentialKind::parse(&r.kind), "credentials.kind")?,
            status: parsed(CredentialStatus::parse(&r.status).ok_or(()), "credentials.status")?,
            version: r.version,
            inject: r
                .inject
                .as_deref()
                .map(|t| json_col(t, "credentials.inject"))
                .transpose()?,
            policy: json_col(&r.policy, "credentials.policy")?,
            description: r.description,
            metadata: json_col(&r.metadata, "credentials.metadata")?,
            sealed: Sealed {
                wrapped_key: r.wrapped_key,
                ciphertext: r.ciphertext,
            },
            created_at: from_micros(r.created_us, "credentials.created_us")?,
            updated_at: from_micros(r.updated_us, "credentials.updated_us")?,
        })
    }
}

/// Creates a credential; `Conflict` if the alias is taken in the tenant.
pub(super) async fn insert(db: &SqlStore, c: &CredentialRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO credentials (id, tenant_id, alias, kind, status, version, inject, policy, description, \
         metadata, wrapped_key, ciphertext, created_us, updated_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(c.id.as_str())
    .bind(c.tenant_id.as_str())
    .bind(c.alias.as_str())
    .bind(c.kind.as_str())
    .bind(c.status.as_str())
    .bind(c.version)
    .bind(c.inject.as_ref().map(to_json))
    .bind(to_json(&c.policy))
    .bind(c.description.as_deref())
    .bind(to_json(&c.metadata))
    .bind(c.sealed.wrapped_key.as_slice())
    .bind(c.sealed.ciphertext.as_slice())
    .bind(micros(c.created_at))
    .bind(micros(c.updated_at))
    .execute(&db.pool)
    .await
    .map_err(db_err("a credential with this alias"))?;
    Ok(())
}

/// One credential by alias.
pub(super) async fn one(db: &SqlStore, tenant: &TenantId, alias: &Alias) -> StoreResult<CredentialRecord> {
    let row: CredentialRow = sqlx::query_as("SELECT * FROM credentials WHERE tenant_id = $1 AND alias = $2")
        .bind(tenant.as_str())
        .bind(alias.as_str())
        .fetch_optional(&db.pool)
        .await
        .map_err(db_err("credential"))?
        .ok_or(StoreError::NotFound("credential"))?;
    row.try_into()
}

/// A page of credentials ordered by alias, after `after`.
pub(super) async fn page(
    db: &SqlStore,
    tenant: &TenantId,
    after: Option<&Alias>,
    limit: u32,
) -> StoreResult<Vec<CredentialRecord>> {
    let rows: Vec<CredentialRow> =
        sqlx::query_as("SELECT * FROM credentials WHERE tenant_id = $1 AND alias > $2 ORDER BY alias LIMIT $3")
            .bind(tenant.as_str())
            .bind(after.map(Alias::as_str).unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(&db.pool)
            .await
            .map_err(db_err("credentials"))?;
    rows.into_iter().map(TryInto::try_into).collect()
}

/// Saves injection, policy, description and metadata (never status, data or version).
pub(super) async fn update(db: &SqlStore, c: &CredentialRecord) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE credentials SET inject = $3, policy = $4, description = $5, metadata = $6, updated_us = $7 \
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(c.tenant_id.as_str())
    .bind(c.id.as_str())
    .bind(c.inject.as_ref().map(to_json))
    .bind(to_json(&c.policy))
    .bind(c.description.as_deref())
    .bind(to_json(&c.metadata))
    .bind(micros(c.updated_at))
    .execute(&db.pool)
    .await
    .map_err(db_err("credential"))?;
    one_row(done.rows_affected(), "credential")
}

/// Freezes or unfreezes, touching nothing else.
pub(super) async fn set_status(
    db: &SqlStore,
    tenant: &TenantId,
    id: &CredentialId,
    status: CredentialStatus,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let done = sqlx::query("UPDATE credentials SET status = $3, updated_us = $4 WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.as_str())
        .bind(id.as_str())
        .bind(status.as_str())
        .bind(micros(at))
        .execute(&db.pool)
        .await
        .map_err(db_err("credential"))?;
    one_row(done.rows_affected(), "credential")
}

/// Replaces the sealed data and bumps the version, if the version is still `expected`.
pub(super) async fn rotate(
    db: &SqlStore,
    tenant: &TenantId,
    id: &CredentialId,
    expected_version: i64,
    sealed: &Sealed,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let err = db_err("credential");
    let done = sqlx::query(
        "UPDATE credentials SET wrapped_key = $4, ciphertext = $5, version = version + 1, updated_us = $6 \
         WHERE tenant_id = $1 AND id = $2 AND version = $3",
    )
    .bind(tenant.as_str())
    .bind(id.as_str())
    .bind(expected_version)
    .bind(sealed.wrapped_key.as_slice())
    .bind(sealed.ciphertext.as_slice())
    .bind(micros(at))
    .execute(&db.pool)
    .await
    .map_err(&err)?;
    if done.rows_affected() > 0 {
        return Ok(());
    }
    // Nothing matched: a missing credential (or another tenant's) is NotFound; only a
    // moved-on version is a conflict worth retrying.
    let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM credentials WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_one(&db.pool)
        .await
        .map_err(&err)?;
    if exists == 0 {
        return Err(StoreError::NotFound("credential"));
    }
    Err(StoreError::Conflict("credential changed concurrently; retry".into()))
}

/// Deletes a credential.
pub(super) async fn delete(db: &SqlStore, tenant: &TenantId, alias: &Alias) -> StoreResult<()> {
    let done = sqlx::query("DELETE FROM credentials WHERE tenant_id = $1 AND alias = $2")
        .bind(tenant.as_str())
        .bind(alias.as_str())
        .execute(&db.pool)
        .await
        .map_err(db_err("credential"))?;
    one_row(done.rows_affected(), "credential")
}
