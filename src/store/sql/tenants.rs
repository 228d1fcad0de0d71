//! Tenants and their usage counts. Tenants are the isolation boundary itself, so these are
//! operator-level queries by tenant id; usage rows are scoped by tenant.

use sqlx::AnyExecutor;
use sqlx_macros::FromRow;

use super::{SqlStore, db_err, from_micros, json_col, micros, one_row, parsed, roles, to_json};
use crate::domain::{Plan, TenantId};
use crate::store::{ApiKeyRecord, RoleRecord, StoreError, StoreResult, TenantRecord, TenantStatus, now};

/// A `tenants` row.
#[derive(FromRow)]
struct TenantRow {
    id: String,
    name: String,
    status: String,
    plan: String,
    created_us: i64,
}

impl TryFrom<TenantRow> for TenantRecord {
    type Error = StoreError;

    fn try_from(r: TenantRow) -> StoreResult<Self> {
        Ok(Self {
            id: parsed(TenantId::parse(&r.id), "tenants.id")?,
            name: r.name,
            status: parsed(TenantStatus::parse(&r.status).ok_or(()), "tenants.status")?,
            plan: json_col(&r.plan, "tenants.plan")?,
            created_at: from_micros(r.created_us, "tenants.created_us")?,
        })
    }
}

/// Returns the tenant named `name`, creating it (active) if absent.
pub(super) async fn ensure(db: &SqlStore, name: &str) -> StoreResult<TenantRecord> {
    let err = db_err("tenant");
    sqlx::query(
        "INSERT INTO tenants (id, name, status, plan, created_us) VALUES ($1, $2, 'active', '{}', $3) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(TenantId::generate().as_str())
    .bind(name)
    .bind(micros(now()))
    .execute(&db.pool)
    .await
    .map_err(&err)?;
    let row: TenantRow = sqlx::query_as("SELECT * FROM tenants WHERE name = $1")
        .bind(name)
        .fetch_one(&db.pool)
        .await
        .map_err(&err)?;
    row.try_into()
}

/// Creates a tenant with its first admin role and API key, all or nothing.
pub(super) async fn create(db: &SqlStore, t: &TenantRecord, r: &RoleRecord, k: &ApiKeyRecord) -> StoreResult<()> {
    let err = db_err("a tenant with this name");
    let mut tx = db.begin_write().await.map_err(&err)?;
    let written = async {
        sqlx::query("INSERT INTO tenants (id, name, status, plan, created_us) VALUES ($1, $2, $3, $4, $5)")
            .bind(t.id.as_str())
            .bind(&t.name)
            .bind(t.status.as_str())
            .bind(to_json(&t.plan))
            .bind(micros(t.created_at))
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
        roles::insert(&mut *tx, r).await?;
        super::keys::insert(&mut *tx, k).await
    }
    .await;
    if let Err(e) = written {
        // Release the write lock now: a transaction that is merely dropped is rolled back
        // later, in the background, and SQLite refuses other writers meanwhile.
        tx.rollback().await.map_err(&err)?;
        return Err(e);
    }
    tx.commit().await.map_err(&err)
}

/// One tenant by id.
pub(super) async fn one<'c>(db: impl AnyExecutor<'c>, id: &TenantId) -> StoreResult<TenantRecord> {
    let row: TenantRow = sqlx::query_as("SELECT * FROM tenants WHERE id = $1")
        .bind(id.as_str())
        .fetch_optional(db)
        .await
        .map_err(db_err("tenant"))?
        .ok_or(StoreError::NotFound("tenant"))?;
    row.try_into()
}

/// A page of tenants ordered by name, after the name `after`.
pub(super) async fn page(db: &SqlStore, after: Option<&str>, limit: u32) -> StoreResult<Vec<TenantRecord>> {
    let rows: Vec<TenantRow> = sqlx::query_as("SELECT * FROM tenants WHERE name > $1 ORDER BY name LIMIT $2")
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&db.pool)
        .await
        .map_err(db_err("tenants"))?;
    rows.into_iter().map(TryInto::try_into).collect()
}

/// Replaces a tenant's plan.
pub(super) async fn set_plan(db: &SqlStore, id: &TenantId, plan: &Plan) -> StoreResult<()> {
    let done = sqlx::query("UPDATE tenants SET plan = $2 WHERE id = $1")
        .bind(id.as_str())
        .bind(to_json(plan))
        .execute(&db.pool)
        .await
        .map_err(db_err("tenant"))?;
    one_row(done.rows_affected(), "tenant")
}

/// Sets a tenant's status.
pub(super) async fn set_status(db: &SqlStore, id: &TenantId, status: TenantStatus) -> StoreResult<()> {
    let done = sqlx::query("UPDATE tenants SET status = $2 WHERE id = $1")
        .bind(id.as_str())
        .bind(status.as_str())
        .execute(&db.pool)
        .await
        .map_err(db_err("tenant"))?;
    one_row(done.rows_affected(), "tenant")
}

/// Adds `delta` to a tenant's count for `period`, atomically; returns the new total.
pub(super) async fn add_usage(db: &SqlStore, tenant: &TenantId, period: &str, delta: i64) -> StoreResult<i64> {
    sqlx::query_scalar(
        "INSERT INTO tenant_usage (tenant_id, period, count) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant_id, period) DO UPDATE SET count = tenant_usage.count + excluded.count RETURNING count",
    )
    .bind(tenant.as_str())
    .bind(period)
    .bind(delta)
    .fetch_one(&db.pool)
    .await
    .map_err(db_err("usage"))
}

/// A tenant's count for `period` (0 when none was recorded).
pub(super) async fn usage(db: &SqlStore, tenant: &TenantId, period: &str) -> StoreResult<i64> {
    let count: Option<i64> = sqlx::query_scalar("SELECT count FROM tenant_usage WHERE tenant_id = $1 AND period = $2")
        .bind(tenant.as_str())
        .bind(period)
        .fetch_optional(&db.pool)
        .await
        .map_err(db_err("usage"))?;
    Ok(count.unwrap_or(0))
}
