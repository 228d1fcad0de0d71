//! Routes: pre-registered upstreams, per tenant.

use sqlx_macros::FromRow;

use super::{SqlStore, db_err, from_micros, json_col, micros, one_row, parsed, to_json};
use crate::domain::{Alias, RouteId, TenantId};
use crate::store::{RouteRecord, StoreError, StoreResult};

/// A `routes` row.
#[derive(FromRow)]
struct RouteRow {
    id: String,
    tenant_id: String,
    name: String,
    spec: String,
    created_us: i64,
    updated_us: i64,
}

impl TryFrom<RouteRow> for RouteRecord {
    type Error = StoreError;

    fn try_from(r: RouteRow) -> StoreResult<Self> {
        Ok(Self {
            id: parsed(RouteId::parse(&r.id), "routes.id")?,
            tenant_id: parsed(TenantId::parse(&r.tenant_id), "routes.tenant_id")?,
            name: parsed(Alias::parse(&r.name), "routes.name")?,
            spec: json_col(&r.spec, "routes.spec")?,
            created_at: from_micros(r.created_us, "routes.created_us")?,
            updated_at: from_micros(r.updated_us, "routes.updated_us")?,
        })
    }
}

/// Creates a route; `Conflict` if the name is taken in the tenant.
pub(super) async fn insert(db: &SqlStore, r: &RouteRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO routes (id, tenant_id, name, spec, created_us, updated_us) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(r.id.as_str())
    .bind(r.tenant_id.as_str())
    .bind(r.name.as_str())
    .bind(to_json(&r.spec))
    .bind(micros(r.created_at))
    .bind(micros(r.updated_at))
    .execute(&db.pool)
    .await
    .map_err(db_err("a route with this name"))?;
    Ok(())
}

/// One route by name.
pub(super) async fn one(db: &SqlStore, tenant: &TenantId, name: &Alias) -> StoreResult<RouteRecord> {
    let row: RouteRow = sqlx::query_as("SELECT * FROM routes WHERE tenant_id = $1 AND name = $2")
        .bind(tenant.as_str())
        .bind(name.as_str())
        .fetch_optional(&db.pool)
        .await
        .map_err(db_err("route"))?
        .ok_or(StoreError::NotFound("route"))?;
    row.try_into()
}

/// A tenant's routes by name.
pub(super) async fn list(db: &SqlStore, tenant: &TenantId) -> StoreResult<Vec<RouteRecord>> {
    let rows: Vec<RouteRow> = sqlx::query_as("SELECT * FROM routes WHERE tenant_id = $1 ORDER BY name")
        .bind(tenant.as_str())
        .fetch_all(&db.pool)
        .await
        .map_err(db_err("routes"))?;
    rows.into_iter().map(TryInto::try_into).collect()
}

/// Saves a route's spec.
pub(super) async fn update(db: &SqlStore, r: &RouteRecord) -> StoreResult<()> {
    let done = sqlx::query("UPDATE routes SET spec = $3, updated_us = $4 WHERE tenant_id = $1 AND id = $2")
        .bind(r.tenant_id.as_str())
        .bind(r.id.as_str())
        .bind(to_json(&r.spec))
        .bind(micros(r.updated_at))
        .execute(&db.pool)
        .await
        .map_err(db_err("route"))?;
    one_row(done.rows_affected(), "route")
}

/// Deletes a route.
pub(super) async fn delete(db: &SqlStore, tenant: &TenantId, name: &Alias) -> StoreResult<()> {
    let done = sqlx::query("DELETE FROM routes WHERE tenant_id = $1 AND name = $2")
        .bind(tenant.as_str())
        .bind(name.as_str())
        .execute(&db.pool)
        .await
        .map_err(db_err("route"))?;
    one_row(done.rows_affected(), "route")
}
