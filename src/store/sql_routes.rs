//! Route queries, shared by both backends like those in `sql.rs` (kept apart for size).

/// Implements the route queries as inherent methods of `$store`; the `Store` impl delegates.
macro_rules! impl_route_queries {
    ($store:ty, $db:ty) => {
        impl $store {
            fn route_from_row(row: &<$db as sqlx::Database>::Row) -> crate::store::StoreResult<crate::store::RouteRecord> {
                use sqlx::Row as _;
                let get = |e: sqlx::Error| crate::store::StoreError::Database(anyhow::Error::new(e).context("routes row"));
                let text = |name: &str| row.try_get::<String, _>(name).map_err(get);
                Ok(crate::store::RouteRecord {
                    id: crate::store::sql::parsed(crate::domain::RouteId::parse(&text("id")?), "routes.id")?,
                    tenant_id: crate::store::sql::parsed(crate::domain::TenantId::parse(&text("tenant_id")?), "routes.tenant_id")?,
                    name: crate::store::sql::parsed(crate::domain::Alias::parse(&text("name")?), "routes.name")?,
                    spec: crate::store::sql::json_col(&text("spec")?, "routes.spec")?,
                    created_at: row.try_get("created_at").map_err(get)?,
                    updated_at: row.try_get("updated_at").map_err(get)?,
                })
            }

            async fn q_create_route(&self, r: &crate::store::RouteRecord) -> crate::store::StoreResult<()> {
                sqlx::query("INSERT INTO routes (id, tenant_id, name, spec, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)")
                    .bind(r.id.as_str())
                    .bind(r.tenant_id.as_str())
                    .bind(r.name.as_str())
                    .bind(crate::store::sql::to_json(&r.spec))
                    .bind(r.created_at)
                    .bind(r.updated_at)
                    .execute(&self.pool)
                    .await
                    .map_err(crate::store::sql::db_err("a route with this name"))?;
                Ok(())
            }

            async fn q_route(&self, tenant: &crate::domain::TenantId, name: &crate::domain::Alias) -> crate::store::StoreResult<crate::store::RouteRecord> {
                let row = sqlx::query("SELECT id, tenant_id, name, spec, created_at, updated_at FROM routes WHERE tenant_id = $1 AND name = $2")
                    .bind(tenant.as_str())
                    .bind(name.as_str())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(crate::store::sql::db_err("route"))?
                    .ok_or(crate::store::StoreError::NotFound("route"))?;
                Self::route_from_row(&row)
            }

            async fn q_list_routes(&self, tenant: &crate::domain::TenantId) -> crate::store::StoreResult<Vec<crate::store::RouteRecord>> {
                let rows = sqlx::query("SELECT id, tenant_id, name, spec, created_at, updated_at FROM routes WHERE tenant_id = $1 ORDER BY name")
                    .bind(tenant.as_str())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(crate::store::sql::db_err("routes"))?;
                rows.iter().map(Self::route_from_row).collect()
            }

            async fn q_update_route(&self, r: &crate::store::RouteRecord) -> crate::store::StoreResult<()> {
                let done = sqlx::query("UPDATE routes SET spec = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2")
                    .bind(r.tenant_id.as_str())
                    .bind(r.id.as_str())
                    .bind(crate::store::sql::to_json(&r.spec))
                    .bind(r.updated_at)
                    .execute(&self.pool)
                    .await
                    .map_err(crate::store::sql::db_err("route"))?;
                crate::store::sql::one_row(done.rows_affected(), "route")
            }

            async fn q_delete_route(&self, tenant: &crate::domain::TenantId, name: &crate::domain::Alias) -> crate::store::StoreResult<()> {
                let done = sqlx::query("DELETE FROM routes WHERE tenant_id = $1 AND name = $2")
                    .bind(tenant.as_str())
                    .bind(name.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(crate::store::sql::db_err("route"))?;
                crate::store::sql::one_row(done.rows_affected(), "route")
            }
        }
    };
}

pub(super) use impl_route_queries;
