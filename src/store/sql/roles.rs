//! Roles: permissions and credential scopes, per tenant.

use sqlx::AnyExecutor;
use sqlx_macros::FromRow;

use super::{SqlStore, db_err, from_micros, json_col, micros, parsed, to_json};
use crate::domain::{Name, RoleId, TenantId};
use crate::store::{RoleRecord, StoreError, StoreResult};

/// A `roles` row.
#[derive(FromRow)]
struct RoleRow {
    id: String,
    tenant_id: String,
    name: String,
    description: Option<String>,
    permissions: String,
    credential_scopes: String,
    created_us: i64,
}

impl TryFrom<RoleRow> for RoleRecord {
    type Error = StoreError;

    fn try_from(r: RoleRow) -> StoreResult<Self> {
        Ok(Self {
            id: parsed(RoleId::parse(&r.id), "roles.id")?,
            tenant_id: parsed(TenantId::parse(&r.tenant_id), "roles.tenant_id")?,
            name: parsed(Name::parse(&r.name), "roles.name")?,
            description: r.description,
            permissions: json_col(&r.permissions, "roles.permissions")?,
            credential_scopes: json_col(&r.credential_scopes, "roles.credential_scopes")?,
            created_at: from_micros(r.created_us, "roles.created_us")?,
        })
    }
}

/// Creates a role; `Conflict` if the name is taken in the tenant.
pub(super) async fn insert<'c>(db: impl AnyExecutor<'c>, r: &RoleRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO roles (id, tenant_id, name, description, permissions, credential_scopes, created_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(r.id.as_str())
    .bind(r.tenant_id.as_str())
    .bind(r.name.as_str())
    .bind(r.description.as_deref())
    .bind(to_json(&r.permissions))
    .bind(to_json(&r.credential_scopes))
    .bind(micros(r.created_at))
    .execute(db)
    .await
    .map_err(db_err("a role with this name"))?;
    Ok(())
}

/// A tenant's roles by name.
pub(super) async fn list(db: &SqlStore, tenant: &TenantId) -> StoreResult<Vec<RoleRecord>> {
    let rows: Vec<RoleRow> = sqlx::query_as("SELECT * FROM roles WHERE tenant_id = $1 ORDER BY name")
        .bind(tenant.as_str())
        .fetch_all(&db.pool)
        .await
        .map_err(db_err("roles"))?;
    rows.into_iter().map(TryInto::try_into).collect()
}

/// One role of a tenant.
pub(super) async fn one<'c>(db: impl AnyExecutor<'c>, tenant: &TenantId, id: &RoleId) -> StoreResult<RoleRecord> {
    let row: RoleRow = sqlx::query_as("SELECT * FROM roles WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_optional(db)
        .await
        .map_err(db_err("role"))?
        .ok_or(StoreError::NotFound("role"))?;
    row.try_into()
}

/// Deletes a role, refused while unrevoked keys use it; revoked keys using it go with it.
pub(super) async fn delete(db: &SqlStore, tenant: &TenantId, id: &RoleId) -> StoreResult<()> {
    let err = db_err("role");
    let mut tx = db.begin_write().await.map_err(&err)?;
    let in_use: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM api_keys WHERE tenant_id = $1 AND role_id = $2 AND revoked_us IS NULL",
    )
    .bind(tenant.as_str())
    .bind(id.as_str())
    .fetch_one(&mut *tx)
    .await
    .map_err(&err)?;
    if in_use > 0 {
        tx.rollback().await.map_err(&err)?;
        return Err(StoreError::Conflict(format!(
            "role is used by {in_use} active API key(s); revoke them first"
        )));
    }
    // Revoked keys keep their history; they can never authenticate again, so the role row they
    // point to may go.
    sqlx::query("DELETE FROM api_keys WHERE tenant_id = $1 AND role_id = $2 AND revoked_us IS NOT NULL")
        .bind(tenant.as_str())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(&err)?;
    let done = sqlx::query("DELETE FROM roles WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.as_str())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(&err)?;
    if done.rows_affected() == 0 {
        // Release the write lock now: a transaction that is merely dropped is rolled back
        // later, in the background, and SQLite refuses other writers meanwhile.
        tx.rollback().await.map_err(&err)?;
        return Err(StoreError::NotFound("role"));
    }
    tx.commit().await.map_err(&err)
}
