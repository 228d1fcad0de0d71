//! Tenant and usage queries, shared by both backends like those in `sql.rs` (kept apart for
//! size). Tenants are the isolation boundary itself, so these are operator-level queries by
//! tenant id; usage rows are scoped by tenant.

/// Implements the tenant and usage queries as inherent methods of `$store`; the `Store` impl
/// delegates.
macro_rules! impl_tenant_queries {
    ($store:ty, $db:ty) => {
        impl $store {
            async fn q_create_tenant(
                &self,
                t: &crate::store::TenantRecord,
                r: &crate::store::RoleRecord,
                k: &crate::store::ApiKeyRecord,
            ) -> crate::store::StoreResult<()> {
                let err = crate::store::sql::db_err("a tenant with this name");
                let mut tx = self.begin_write().await.map_err(&err)?;
                let written = Self::q_insert_tenant_rows(&mut tx, t, r, k).await;
                if let Err(e) = written {
                    // Release the write lock now: a transaction that is merely dropped is rolled
                    // back later, in the background, and SQLite refuses other writers meanwhile.
                    tx.rollback().await.map_err(&err)?;
                    return Err(e);
                }
                tx.commit().await.map_err(&err)?;
                Ok(())
            }

            async fn q_insert_tenant_rows(
                tx: &mut sqlx::Transaction<'static, $db>,
                t: &crate::store::TenantRecord,
                r: &crate::store::RoleRecord,
                k: &crate::store::ApiKeyRecord,
            ) -> crate::store::StoreResult<()> {
                let err = crate::store::sql::db_err("a tenant with this name");
                sqlx::query("INSERT INTO tenants (id, name, status, plan, created_at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(t.id.as_str())
                    .bind(&t.name)
                    .bind(t.status.as_str())
                    .bind(crate::store::sql::to_json(&t.plan))
                    .bind(t.created_at)
                    .execute(&mut **tx)
                    .await
                    .map_err(&err)?;
                sqlx::query(concat!("INSERT INTO roles (", role_cols!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7)"))
                    .bind(r.id.as_str())
                    .bind(r.tenant_id.as_str())
                    .bind(r.name.as_str())
                    .bind(r.description.as_deref())
                    .bind(crate::store::sql::to_json(&r.permissions))
                    .bind(crate::store::sql::to_json(&r.credential_scopes))
                    .bind(r.created_at)
                    .execute(&mut **tx)
                    .await
                    .map_err(crate::store::sql::db_err("the tenant's admin role"))?;
                let done = sqlx::query(concat!("INSERT INTO api_keys (", key_cols!(), ") SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 WHERE EXISTS (SELECT 1 FROM roles WHERE id = $6 AND tenant_id = $2)"))
                    .bind(k.id.as_str())
                    .bind(k.tenant_id.as_str())
                    .bind(k.name.as_str())
                    .bind(&k.key_prefix)
                    .bind(k.key_hash.to_hex())
                    .bind(k.role_id.as_str())
                    .bind(k.expires_at)
                    .bind(k.last_used_at)
                    .bind(k.revoked_at)
                    .bind(k.created_at)
                    .execute(&mut **tx)
                    .await
                    .map_err(crate::store::sql::db_err("the tenant's admin key"))?;
                crate::store::sql::one_row(done.rows_affected(), "role")
            }

            async fn q_tenant(&self, id: &crate::domain::TenantId) -> crate::store::StoreResult<crate::store::TenantRecord> {
                let row = sqlx::query("SELECT id, name, status, plan, created_at FROM tenants WHERE id = $1")
                    .bind(id.as_str())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(crate::store::sql::db_err("tenant"))?
                    .ok_or(crate::store::StoreError::NotFound("tenant"))?;
                rows::tenant(&row)
            }

            async fn q_list_tenants(&self, after: Option<&str>, limit: u32) -> crate::store::StoreResult<Vec<crate::store::TenantRecord>> {
                let rows = sqlx::query("SELECT id, name, status, plan, created_at FROM tenants WHERE name > $1 ORDER BY name LIMIT $2")
                    .bind(after.unwrap_or(""))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(crate::store::sql::db_err("tenants"))?;
                rows.iter().map(rows::tenant).collect()
            }

            async fn q_set_tenant_plan(&self, id: &crate::domain::TenantId, plan: &crate::domain::Plan) -> crate::store::StoreResult<()> {
                let done = sqlx::query("UPDATE tenants SET plan = $2 WHERE id = $1")
                    .bind(id.as_str())
                    .bind(crate::store::sql::to_json(plan))
                    .execute(&self.pool)
                    .await
                    .map_err(crate::store::sql::db_err("tenant"))?;
                crate::store::sql::one_row(done.rows_affected(), "tenant")
            }

            async fn q_set_tenant_status(&self, id: &crate::domain::TenantId, status: crate::store::TenantStatus) -> crate::store::StoreResult<()> {
                let done = sqlx::query("UPDATE tenants SET status = $2 WHERE id = $1")
                    .bind(id.as_str())
                    .bind(status.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(crate::store::sql::db_err("tenant"))?;
                crate::store::sql::one_row(done.rows_affected(), "tenant")
            }

            async fn q_add_usage(&self, tenant: &crate::domain::TenantId, period: &str, delta: i64) -> crate::store::StoreResult<i64> {
                sqlx::query_scalar(
                    "INSERT INTO tenant_usage (tenant_id, period, count) VALUES ($1, $2, $3) ON CONFLICT (tenant_id, period) DO UPDATE SET count = tenant_usage.count + excluded.count RETURNING count",
                )
                .bind(tenant.as_str())
                .bind(period)
                .bind(delta)
                .fetch_one(&self.pool)
                .await
                .map_err(crate::store::sql::db_err("usage"))
            }

            async fn q_usage(&self, tenant: &crate::domain::TenantId, period: &str) -> crate::store::StoreResult<i64> {
                let count: Option<i64> = sqlx::query_scalar("SELECT count FROM tenant_usage WHERE tenant_id = $1 AND period = $2")
                    .bind(tenant.as_str())
                    .bind(period)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(crate::store::sql::db_err("usage"))?;
                Ok(count.unwrap_or(0))
            }
        }
    };
}

pub(super) use impl_tenant_queries;
