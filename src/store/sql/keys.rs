//! API keys (hash only; the plaintext is never stored).

use chrono::{DateTime, Utc};
use sqlx::AnyExecutor;
use sqlx_macros::FromRow;

use super::{SqlStore, db_err, from_micros, from_opt_micros, micros, one_row, parsed, roles, tenants};
use crate::crypto::token::TokenHash;
use crate::domain::{ApiKeyId, Name, RoleId, TenantId};
use crate::store::{ApiKeyRecord, KeyGrant, StoreError, StoreResult};

/// An `api_keys` row.
#[derive(FromRow)]
struct ApiKeyRow {
    id: String,
    tenant_id: String,
    name: String,
    key_prefix: String,
    key_hash: String,
    role_id: String,
    expires_us: Option<i64>,
    last_used_us: Option<i64>,
    revoked_us: Option<i64>,
    created_us: i64,
}

impl TryFrom<ApiKeyRow> for ApiKeyRecord {
    type Error = StoreError;

    fn try_from(r: ApiKeyRow) -> StoreResult<Self> {
        Ok(Self {
            id: parsed(ApiKeyId::parse(&r.id), "api_keys.id")?,
            tenant_id: parsed(TenantId::parse(&r.tenant_id), "api_keys.tenant_id")?,
            name: parsed(Name::parse(&r.name), "api_keys.name")?,
            key_prefix: r.key_prefix,
            key_hash: parsed(TokenHash::from_hex(&r.key_hash).ok_or(()), "api_keys.key_hash")?,
            role_id: parsed(RoleId::parse(&r.role_id), "api_keys.role_id")?,
            expires_at: from_opt_micros(r.expires_us, "api_keys.expires_us")?,
            last_used_at: from_opt_micros(r.last_used_us, "api_keys.last_used_us")?,
            revoked_at: from_opt_micros(r.revoked_us, "api_keys.revoked_us")?,
            created_at: from_micros(r.created_us, "api_keys.created_us")?,
        })
    }
}

/// Creates an API key; `NotFound` unless its role exists in the same tenant (checked in the
/// same statement).
pub(super) async fn insert<'c>(db: impl AnyExecutor<'c>, k: &ApiKeyRecord) -> StoreResult<()> {
    let done = sqlx::query(
        "INSERT INTO api_keys \
         (id, tenant_id, name, key_prefix, key_hash, role_id, expires_us, last_used_us, revoked_us, created_us) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 \
         WHERE EXISTS (SELECT 1 FROM roles WHERE id = $6 AND tenant_id = $2)",
    )
    .bind(k.id.as_str())
    .bind(k.tenant_id.as_str())
    .bind(k.name.as_str())
    .bind(&k.key_prefix)
    .bind(k.key_hash.to_hex())
    .bind(k.role_id.as_str())
    .bind(k.expires_at.map(micros))
    .bind(k.last_used_at.map(micros))
    .bind(k.revoked_at.map(micros))
    .bind(micros(k.created_at))
    .execute(db)
    .await
    .map_err(db_err("API key"))?;
    one_row(done.rows_affected(), "role")
}

/// A tenant's unrevoked keys, newest first.
pub(super) async fn list(db: &SqlStore, tenant: &TenantId) -> StoreResult<Vec<ApiKeyRecord>> {
    let rows: Vec<ApiKeyRow> = sqlx::query_as(
        "SELECT * FROM api_keys WHERE tenant_id = $1 AND revoked_us IS NULL ORDER BY created_us DESC, id",
    )
    .bind(tenant.as_str())
    .fetch_all(&db.pool)
    .await
    .map_err(db_err("API keys"))?;
    rows.into_iter().map(TryInto::try_into).collect()
}

/// A key by hash (revoked ones too), with its role and its tenant's status and plan.
pub(super) async fn by_hash(db: &SqlStore, hash: &TokenHash) -> StoreResult<Option<KeyGrant>> {
    let row: Option<ApiKeyRow> = sqlx::query_as("SELECT * FROM api_keys WHERE key_hash = $1")
        .bind(hash.to_hex())
        .fetch_optional(&db.pool)
        .await
        .map_err(db_err("API key"))?;
    let Some(row) = row else { return Ok(None) };
    let key = ApiKeyRecord::try_from(row)?;
    let role = roles::one(&db.pool, &key.tenant_id, &key.role_id).await?;
    let tenant = tenants::one(&db.pool, &key.tenant_id).await?;
    Ok(Some(KeyGrant {
        key,
        role,
        tenant_status: tenant.status,
        tenant_plan: tenant.plan,
    }))
}

/// Revokes a key; `NotFound` for a missing or already revoked one.
pub(super) async fn revoke(db: &SqlStore, tenant: &TenantId, id: &ApiKeyId, at: DateTime<Utc>) -> StoreResult<()> {
    let done =
        sqlx::query("UPDATE api_keys SET revoked_us = $3 WHERE tenant_id = $1 AND id = $2 AND revoked_us IS NULL")
            .bind(tenant.as_str())
            .bind(id.as_str())
            .bind(micros(at))
            .execute(&db.pool)
            .await
            .map_err(db_err("API key"))?;
    one_row(done.rows_affected(), "API key")
}

/// Records that a key was used.
pub(super) async fn touch(db: &SqlStore, id: &ApiKeyId, at: DateTime<Utc>) -> StoreResult<()> {
    sqlx::query("UPDATE api_keys SET last_used_us = $2 WHERE id = $1")
        .bind(id.as_str())
        .bind(micros(at))
        .execute(&db.pool)
        .await
        .map_err(db_err("API key"))?;
    Ok(())
}

/// Counts a tenant's unrevoked keys.
pub(super) async fn count(db: &SqlStore, tenant: &TenantId) -> StoreResult<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM api_keys WHERE tenant_id = $1 AND revoked_us IS NULL")
        .bind(tenant.as_str())
        .fetch_one(&db.pool)
        .await
        .map_err(db_err("API keys"))
}
