//! The SQL shared by the SQLite and PostgreSQL stores.
//!
//! Both backends accept the same statements (`$N` placeholders are numbered parameters in
//! SQLite too); what differs is the connection, the column types in the migrations and the
//! row type. [`impl_store!`] instantiates one `Store` implementation per backend from this
//! single text, so a query is written — and reviewed — once.

use anyhow::anyhow;

use super::StoreError;

/// Maps a driver error: unique violations become `Conflict(what)`, the rest `Database`.
pub(super) fn db_err(what: &str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
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
pub(super) fn one_row(affected: u64, what: &'static str) -> Result<(), StoreError> {
    if affected == 0 {
        Err(StoreError::NotFound(what))
    } else {
        Ok(())
    }
}

/// Parses a JSON column.
pub(super) fn json_col<T: serde::de::DeserializeOwned>(text: &str, column: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Database(anyhow!("malformed {column} column: {e}")))
}

/// Serializes a JSON column.
pub(super) fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Serializing our own plain data types to a String cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

/// Parses an id or enum column that we wrote ourselves.
pub(super) fn parsed<T, E>(value: Result<T, E>, column: &str) -> Result<T, StoreError> {
    value.map_err(|_| StoreError::Database(anyhow!("malformed {column} column")))
}

// Column lists are macros so that statements stay `&'static str` literals (sqlx refuses
// dynamically built SQL unless it is explicitly asserted safe).
macro_rules! role_cols {
    () => {
        "id, tenant_id, name, description, permissions, credential_scopes, created_at"
    };
}
macro_rules! key_cols {
    () => {
        "id, tenant_id, name, key_prefix, key_hash, role_id, expires_at, last_used_at, revoked_at, created_at"
    };
}
macro_rules! cred_cols {
    () => {
        "id, tenant_id, alias, kind, status, version, inject, policy, description, metadata, wrapped_key, ciphertext, created_at, updated_at"
    };
}

/// Implements [`Store`](super::Store) for `$store` (a struct with a `pool: sqlx::Pool<$db>`).
macro_rules! impl_store {
    ($store:ty, $db:ty) => {
        crate::store::sql_routes::impl_route_queries!($store, $db);
        crate::store::sql_audit::impl_audit_queries!($store, $db);
        crate::store::sql_tenants::impl_tenant_queries!($store, $db);
        crate::store::sql_projects::impl_project_queries!($store, $db);

        mod rows {
            use chrono::{DateTime, Utc};
            use sqlx::Row as _;

            use crate::crypto::Sealed;
            use crate::crypto::token::TokenHash;
            use crate::domain::{Alias, ApiKeyId, CredentialId, CredentialKind, Name, RoleId, TenantId};
            use crate::store::sql::{json_col, parsed};
            use crate::store::{
                ApiKeyRecord, CredentialRecord, CredentialStatus, RoleRecord, StoreError, TenantRecord, TenantStatus,
            };

            type Row = <$db as sqlx::Database>::Row;

            fn col<'r, T>(row: &'r Row, name: &str) -> Result<T, StoreError>
            where
                T: sqlx::Decode<'r, $db> + sqlx::Type<$db>,
            {
                row.try_get(name)
                    .map_err(|e| StoreError::Database(anyhow::Error::new(e).context(format!("column {name}"))))
            }

            pub fn tenant(row: &Row) -> Result<TenantRecord, StoreError> {
                Ok(TenantRecord {
                    id: parsed(TenantId::parse(&col::<String>(row, "id")?), "tenants.id")?,
                    name: col(row, "name")?,
                    status: parsed(TenantStatus::parse(&col::<String>(row, "status")?).ok_or(()), "tenants.status")?,
                    plan: json_col(&col::<String>(row, "plan")?, "tenants.plan")?,
                    created_at: col::<DateTime<Utc>>(row, "created_at")?,
                })
            }

            pub fn role(row: &Row) -> Result<RoleRecord, StoreError> {
                Ok(RoleRecord {
                    id: parsed(RoleId::parse(&col::<String>(row, "id")?), "roles.id")?,
                    tenant_id: parsed(TenantId::parse(&col::<String>(row, "tenant_id")?), "roles.tenant_id")?,
                    name: parsed(Name::parse(&col::<String>(row, "name")?), "roles.name")?,
                    description: col(row, "description")?,
                    permissions: json_col(&col::<String>(row, "permissions")?, "roles.permissions")?,
                    credential_scopes: json_col(&col::<String>(row, "credential_scopes")?, "roles.credential_scopes")?,
                    created_at: col(row, "created_at")?,
                })
            }

            pub fn api_key(row: &Row) -> Result<ApiKeyRecord, StoreError> {
                Ok(ApiKeyRecord {
                    id: parsed(ApiKeyId::parse(&col::<String>(row, "id")?), "api_keys.id")?,
                    tenant_id: parsed(TenantId::parse(&col::<String>(row, "tenant_id")?), "api_keys.tenant_id")?,
                    name: parsed(Name::parse(&col::<String>(row, "name")?), "api_keys.name")?,
                    key_prefix: col(row, "key_prefix")?,
                    key_hash: parsed(TokenHash::from_hex(&col::<String>(row, "key_hash")?).ok_or(()), "api_keys.key_hash")?,
                    role_id: parsed(RoleId::parse(&col::<String>(row, "role_id")?), "api_keys.role_id")?,
                    expires_at: col(row, "expires_at")?,
                    last_used_at: col(row, "last_used_at")?,
                    revoked_at: col(row, "revoked_at")?,
                    created_at: col(row, "created_at")?,
                })
            }

            pub fn credential(row: &Row) -> Result<CredentialRecord, StoreError> {
                let inject: Option<String> = col(row, "inject")?;
                Ok(CredentialRecord {
                    id: parsed(CredentialId::parse(&col::<String>(row, "id")?), "credentials.id")?,
                    tenant_id: parsed(TenantId::parse(&col::<String>(row, "tenant_id")?), "credentials.tenant_id")?,
                    alias: parsed(Alias::parse(&col::<String>(row, "alias")?), "credentials.alias")?,
                    kind: parsed(CredentialKind::parse(&col::<String>(row, "kind")?), "credentials.kind")?,
                    status: parsed(CredentialStatus::parse(&col::<String>(row, "status")?).ok_or(()), "credentials.status")?,
                    version: col(row, "version")?,
                    inject: inject.as_deref().map(|t| json_col(t, "credentials.inject")).transpose()?,
                    policy: json_col(&col::<String>(row, "policy")?, "credentials.policy")?,
                    description: col(row, "description")?,
                    metadata: json_col(&col::<String>(row, "metadata")?, "credentials.metadata")?,
                    sealed: Sealed { wrapped_key: col(row, "wrapped_key")?, ciphertext: col(row, "ciphertext")? },
                    created_at: col(row, "created_at")?,
                    updated_at: col(row, "updated_at")?,
                })
            }
        }

        #[async_trait::async_trait]
        impl crate::store::Store for $store {
            async fn ping(&self) -> crate::store::StoreResult<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await.map_err(crate::store::sql::db_err("ping"))?;
                Ok(())
            }

            async fn ensure_tenant(&self, name: &str) -> crate::store::StoreResult<crate::store::TenantRecord> {
                let err = crate::store::sql::db_err("tenant");
                sqlx::query(
                    "INSERT INTO tenants (id, name, status, created_at) VALUES ($1, $2, 'active', $3) ON CONFLICT (name) DO NOTHING",
                )
                .bind(crate::domain::TenantId::generate().as_str())
                .bind(name)
                .bind(crate::store::now())
                .execute(&self.pool)
                .await
                .map_err(&err)?;
                let row = sqlx::query("SELECT id, name, status, plan, created_at FROM tenants WHERE name = $1")
                    .bind(name)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(&err)?;
                rows::tenant(&row)
            }

            async fn create_role(&self, r: &crate::store::RoleRecord) -> crate::store::StoreResult<()> {
                sqlx::query(concat!("INSERT INTO roles (", role_cols!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7)"))
                    .bind(r.id.as_str())
                    .bind(r.tenant_id.as_str())
                    .bind(r.name.as_str())
                    .bind(r.description.as_deref())
                    .bind(crate::store::sql::to_json(&r.permissions))
                    .bind(crate::store::sql::to_json(&r.credential_scopes))
                    .bind(r.created_at)
                    .execute(&self.pool)
                    .await
                    .map_err(crate::store::sql::db_err("a role with this name"))?;
                Ok(())
            }

            async fn list_roles(&self, tenant: &crate::domain::TenantId) -> crate::store::StoreResult<Vec<crate::store::RoleRecord>> {
                let rows = sqlx::query(concat!("SELECT ", role_cols!(), " FROM roles WHERE tenant_id = $1 ORDER BY name"))
                    .bind(tenant.as_str())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(crate::store::sql::db_err("roles"))?;
                rows.iter().map(rows::role).collect()
            }

            async fn role(&self, tenant: &crate::domain::TenantId, id: &crate::domain::RoleId) -> crate::store::StoreResult<crate::store::RoleRecord> {
                let row = sqlx::query(concat!("SELECT ", role_cols!(), " FROM roles WHERE tenant_id = $1 AND id = $2"))
                    .bind(tenant.as_str())
                    .bind(id.as_str())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(crate::store::sql::db_err("role"))?
                    .ok_or(crate::store::StoreError::NotFound("role"))?;
                rows::role(&row)
            }

            async fn delete_role(&self, tenant: &crate::domain::TenantId, id: &crate::domain::RoleId) -> crate::store::StoreResult<()> {
                let err = crate::store::sql::db_err("role");
                let mut tx = self.begin_write().await.map_err(&err)?;
                let in_use: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM api_keys WHERE tenant_id = $1 AND role_id = $2 AND revoked_at IS NULL",
                )
                .bind(tenant.as_str())
                .bind(id.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err(&err)?;
                if in_use > 0 {
                    tx.rollback().await.map_err(&err)?;
                    return Err(crate::store::StoreError::Conflict(format!("role is used by {in_use} active API key(s); revoke them first")));
                }
                // Revoked keys keep their history; they can never authenticate again, so the
                // role row they point to may go.
                sqlx::query("DELETE FROM api_keys WHERE tenant_id = $1 AND role_id = $2 AND revoked_at IS NOT NULL")
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
                    // Release the write lock now: a transaction that is merely dropped is rolled
                    // back later, in the background, and SQLite refuses other writers meanwhile.
                    tx.rollback().await.map_err(&err)?;
                    return Err(crate::store::StoreError::NotFound("role"));
                }
                tx.commit().await.map_err(&err)?;
                Ok(())
            }

            async fn create_api_key(&self, k: &crate::store::ApiKeyRecord) -> crate::store::StoreResult<()> {
                let err = crate::store::sql::db_err("API key");
                // The role must belong to the key's tenant: checked in the same statement.
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
                .execute(&self.pool)
                .await
                .map_err(&err)?;
                crate::store::sql::one_row(done.rows_affected(), "role")
            }

            async fn list_api_keys(&self, tenant: &crate::domain::TenantId) -> crate::store::StoreResult<Vec<crate::store::ApiKeyRecord>> {
                let rows = sqlx::query(concat!("SELECT ", key_cols!(), " FROM api_keys WHERE tenant_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC, id"))
                .bind(tenant.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(crate::store::sql::db_err("API keys"))?;
                rows.iter().map(rows::api_key).collect()
            }

            async fn api_key_by_hash(&self, hash: &crate::crypto::token::TokenHash) -> crate::store::StoreResult<Option<crate::store::KeyGrant>> {
                let err = crate::store::sql::db_err("API key");
                let Some(row) = sqlx::query(concat!("SELECT ", key_cols!(), " FROM api_keys WHERE key_hash = $1"))
                .bind(hash.to_hex())
                .fetch_optional(&self.pool)
                .await
                .map_err(&err)?
                else {
                    return Ok(None);
                };
                let key = rows::api_key(&row)?;
                let role = self.role(&key.tenant_id, &key.role_id).await?;
                let tenant_row = sqlx::query("SELECT id, name, status, plan, created_at FROM tenants WHERE id = $1")
                    .bind(key.tenant_id.as_str())
                    .fetch_one(&self.pool)
                    .await
                    .map_err(&err)?;
                let tenant = rows::tenant(&tenant_row)?;
                Ok(Some(crate::store::KeyGrant { key, role, tenant_status: tenant.status, tenant_plan: tenant.plan }))
            }

            async fn revoke_api_key(&self, tenant: &crate::domain::TenantId, id: &crate::domain::ApiKeyId, at: chrono::DateTime<chrono::Utc>) -> crate::store::StoreResult<()> {
                let done = sqlx::query("UPDATE api_keys SET revoked_at = $3 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL")
                    .bind(tenant.as_str())
                    .bind(id.as_str())
                    .bind(at)
                    .execute(&self.pool)
                    .await
                    .map_err(crate::store::sql::db_err("API key"))?;
                crate::store::sql::one_row(done.rows_affected(), "API key")
            }

            async fn touch_api_key(&self, id: &crate::domain::ApiKeyId, at: chrono::DateTime<chrono::Utc>) -> crate::store::StoreResult<()> {
                sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
                    .bind(id.as_str())
                    .bind(at)
                    .execute(&self.pool)
                    .await
                    .map_err(crate::store::sql::db_err("API key"))?;
                Ok(())
            }

            async fn count_api_keys(&self, tenant: &crate::domain::TenantId) -> crate::store::StoreResult<i64> {
                sqlx::query_scalar("SELECT COUNT(*) FROM api_keys WHERE tenant_id = $1 AND revoked_at IS NULL")
                    .bind(tenant.as_str())
                    .fetch_one(&self.pool)
                    .await
                    .map_err(crate::store::sql::db_err("API keys"))
            }

            async fn create_credential(&self, c: &crate::store::CredentialRecord) -> crate::store::StoreResult<()> {
                sqlx::query(concat!("INSERT INTO credentials (", cred_cols!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"))
                .bind(c.id.as_str())
                .bind(c.tenant_id.as_str())
                .bind(c.alias.as_str())
                .bind(c.kind.as_str())
                .bind(c.status.as_str())
                .bind(c.version)
                .bind(c.inject.as_ref().map(crate::store::sql::to_json))
                .bind(crate::store::sql::to_json(&c.policy))
                .bind(c.description.as_deref())
                .bind(crate::store::sql::to_json(&c.metadata))
                .bind(&c.sealed.wrapped_key)
                .bind(&c.sealed.ciphertext)
                .bind(c.created_at)
                .bind(c.updated_at)
                .execute(&self.pool)
                .await
                .map_err(crate::store::sql::db_err("a credential with this alias"))?;
                Ok(())
            }

            async fn credential(&self, tenant: &crate::domain::TenantId, alias: &crate::domain::Alias) -> crate::store::StoreResult<crate::store::CredentialRecord> {
                let row = sqlx::query(concat!("SELECT ", cred_cols!(), " FROM credentials WHERE tenant_id = $1 AND alias = $2"))
                    .bind(tenant.as_str())
                    .bind(alias.as_str())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(crate::store::sql::db_err("credential"))?
                    .ok_or(crate::store::StoreError::NotFound("credential"))?;
                rows::credential(&row)
            }

            async fn list_credentials(
                &self,
                tenant: &crate::domain::TenantId,
                after: Option<&crate::domain::Alias>,
                limit: u32,
            ) -> crate::store::StoreResult<Vec<crate::store::CredentialRecord>> {
                let rows = sqlx::query(concat!("SELECT ", cred_cols!(), " FROM credentials WHERE tenant_id = $1 AND alias > $2 ORDER BY alias LIMIT $3"))
                .bind(tenant.as_str())
                .bind(after.map(|a| a.as_str()).unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(crate::store::sql::db_err("credentials"))?;
                rows.iter().map(rows::credential).collect()
            }

            async fn update_credential(&self, c: &crate::store::CredentialRecord) -> crate::store::StoreResult<()> {
                let done = sqlx::query(
                    "UPDATE credentials SET inject = $3, policy = $4, description = $5, metadata = $6, updated_at = $7 WHERE tenant_id = $1 AND id = $2",
                )
                .bind(c.tenant_id.as_str())
                .bind(c.id.as_str())
                .bind(c.inject.as_ref().map(crate::store::sql::to_json))
                .bind(crate::store::sql::to_json(&c.policy))
                .bind(c.description.as_deref())
                .bind(crate::store::sql::to_json(&c.metadata))
                .bind(c.updated_at)
                .execute(&self.pool)
                .await
                .map_err(crate::store::sql::db_err("credential"))?;
                crate::store::sql::one_row(done.rows_affected(), "credential")
            }

            async fn set_credential_status(
                &self,
                tenant: &crate::domain::TenantId,
                id: &crate::domain::CredentialId,
                status: crate::store::CredentialStatus,
                at: chrono::DateTime<chrono::Utc>,
            ) -> crate::store::StoreResult<()> {
                let done = sqlx::query("UPDATE credentials SET status = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.as_str())
                    .bind(id.as_str())
                    .bind(status.as_str())
                    .bind(at)
                    .execute(&self.pool)
                    .await
                    .map_err(crate::store::sql::db_err("credential"))?;
                crate::store::sql::one_row(done.rows_affected(), "credential")
            }

            async fn rotate_credential(
                &self,
                tenant: &crate::domain::TenantId,
                id: &crate::domain::CredentialId,
                expected_version: i64,
                sealed: &crate::crypto::Sealed,
                at: chrono::DateTime<chrono::Utc>,
            ) -> crate::store::StoreResult<()> {
                let done = sqlx::query(
                    "UPDATE credentials SET wrapped_key = $4, ciphertext = $5, version = version + 1, updated_at = $6 WHERE tenant_id = $1 AND id = $2 AND version = $3",
                )
                .bind(tenant.as_str())
                .bind(id.as_str())
                .bind(expected_version)
                .bind(&sealed.wrapped_key)
                .bind(&sealed.ciphertext)
                .bind(at)
                .execute(&self.pool)
                .await
                .map_err(crate::store::sql::db_err("credential"))?;
                if done.rows_affected() == 0 {
                    // Nothing matched: a missing credential (or another tenant's) is NotFound;
                    // only a moved-on version is a conflict worth retrying.
                    let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM credentials WHERE tenant_id = $1 AND id = $2")
                        .bind(tenant.as_str())
                        .bind(id.as_str())
                        .fetch_one(&self.pool)
                        .await
                        .map_err(crate::store::sql::db_err("credential"))?;
                    if exists == 0 {
                        return Err(crate::store::StoreError::NotFound("credential"));
                    }
                    return Err(crate::store::StoreError::Conflict("credential changed concurrently; retry".into()));
                }
                Ok(())
            }

            async fn create_route(&self, r: &crate::store::RouteRecord) -> crate::store::StoreResult<()> {
                self.q_create_route(r).await
            }

            async fn route(&self, tenant: &crate::domain::TenantId, name: &crate::domain::Alias) -> crate::store::StoreResult<crate::store::RouteRecord> {
                self.q_route(tenant, name).await
            }

            async fn list_routes(&self, tenant: &crate::domain::TenantId) -> crate::store::StoreResult<Vec<crate::store::RouteRecord>> {
                self.q_list_routes(tenant).await
            }

            async fn update_route(&self, r: &crate::store::RouteRecord) -> crate::store::StoreResult<()> {
                self.q_update_route(r).await
            }

            async fn delete_route(&self, tenant: &crate::domain::TenantId, name: &crate::domain::Alias) -> crate::store::StoreResult<()> {
                self.q_delete_route(tenant, name).await
            }

            async fn append_audit(&self, events: &[crate::audit::AuditEvent]) -> crate::store::StoreResult<Vec<crate::audit::AuditRecord>> {
                self.q_append_audit(events, None).await
            }

            async fn index_audit_journal(&self, events: &[crate::audit::AuditEvent], journal: &str, indexed_to: i64) -> crate::store::StoreResult<()> {
                self.q_append_audit(events, Some((journal, indexed_to))).await.map(drop)
            }

            async fn audit_journal_checkpoint(&self, journal: &str) -> crate::store::StoreResult<Option<i64>> {
                self.q_audit_journal_checkpoint(journal).await
            }

            async fn forget_audit_journal(&self, journal: &str) -> crate::store::StoreResult<()> {
                self.q_forget_audit_journal(journal).await
            }

            async fn list_audit(&self, tenant: &crate::domain::TenantId, filter: &crate::audit::AuditFilter) -> crate::store::StoreResult<Vec<crate::audit::AuditRecord>> {
                self.q_list_audit(tenant, filter).await
            }

            async fn audit_chain(&self, tenant: &crate::domain::TenantId, after_seq: i64, up_to_seq: i64, limit: u32) -> crate::store::StoreResult<Vec<crate::audit::AuditRecord>> {
                self.q_audit_chain(tenant, after_seq, up_to_seq, limit).await
            }

            async fn audit_head(&self, tenant: &crate::domain::TenantId) -> crate::store::StoreResult<Option<(i64, String)>> {
                self.q_audit_head(tenant).await
            }

            async fn create_tenant(
                &self,
                tenant: &crate::store::TenantRecord,
                role: &crate::store::RoleRecord,
                key: &crate::store::ApiKeyRecord,
            ) -> crate::store::StoreResult<()> {
                self.q_create_tenant(tenant, role, key).await
            }

            async fn tenant(&self, id: &crate::domain::TenantId) -> crate::store::StoreResult<crate::store::TenantRecord> {
                self.q_tenant(id).await
            }

            async fn list_tenants(&self, after: Option<&str>, limit: u32) -> crate::store::StoreResult<Vec<crate::store::TenantRecord>> {
                self.q_list_tenants(after, limit).await
            }

            async fn set_tenant_plan(&self, id: &crate::domain::TenantId, plan: &crate::domain::Plan) -> crate::store::StoreResult<()> {
                self.q_set_tenant_plan(id, plan).await
            }

            async fn set_tenant_status(&self, id: &crate::domain::TenantId, status: crate::store::TenantStatus) -> crate::store::StoreResult<()> {
                self.q_set_tenant_status(id, status).await
            }

            async fn add_usage(&self, tenant: &crate::domain::TenantId, period: &str, delta: i64) -> crate::store::StoreResult<i64> {
                self.q_add_usage(tenant, period, delta).await
            }

            async fn usage(&self, tenant: &crate::domain::TenantId, period: &str) -> crate::store::StoreResult<i64> {
                self.q_usage(tenant, period).await
            }

            async fn create_project(&self, p: &crate::store::ProjectRecord, k: &crate::store::ProjectKeyRecord) -> crate::store::StoreResult<()> {
                self.q_create_project(p, k).await
            }

            async fn list_projects(&self, tenant: &crate::domain::TenantId) -> crate::store::StoreResult<Vec<crate::store::ProjectRecord>> {
                self.q_list_projects(tenant).await
            }

            async fn project(&self, tenant: &crate::domain::TenantId, id: &crate::domain::ProjectId) -> crate::store::StoreResult<crate::store::ProjectRecord> {
                self.q_project(tenant, id).await
            }

            async fn delete_project(&self, tenant: &crate::domain::TenantId, id: &crate::domain::ProjectId) -> crate::store::StoreResult<()> {
                self.q_delete_project(tenant, id).await
            }

            async fn rotate_project_key(&self, k: &crate::store::ProjectKeyRecord, old_valid_until: chrono::DateTime<chrono::Utc>) -> crate::store::StoreResult<()> {
                self.q_rotate_project_key(k, old_valid_until).await
            }

            async fn project_keys(&self, tenant: &crate::domain::TenantId, project: &crate::domain::ProjectId) -> crate::store::StoreResult<Vec<crate::store::ProjectKeyRecord>> {
                self.q_project_keys(tenant, project).await
            }

            async fn project_keys_by_name(&self, name: &crate::domain::ProjectName, at: chrono::DateTime<chrono::Utc>) -> crate::store::StoreResult<Vec<(crate::store::ProjectRecord, crate::store::ProjectKeyRecord)>> {
                self.q_project_keys_by_name(name, at).await
            }

            async fn secret(&self, tenant: &crate::domain::TenantId, project: &crate::domain::ProjectId, env: &crate::domain::EnvName, name: &crate::domain::SecretName) -> crate::store::StoreResult<Option<crate::store::SecretRecord>> {
                self.q_secret(tenant, project, env, name).await
            }

            async fn create_secret(&self, s: &crate::store::SecretRecord) -> crate::store::StoreResult<()> {
                self.q_create_secret(s).await
            }

            async fn update_secret(&self, tenant: &crate::domain::TenantId, id: &crate::domain::SecretId, expected_version: i64, sealed: &crate::crypto::Sealed, at: chrono::DateTime<chrono::Utc>) -> crate::store::StoreResult<()> {
                self.q_update_secret(tenant, id, expected_version, sealed, at).await
            }

            async fn list_secrets(&self, tenant: &crate::domain::TenantId, project: &crate::domain::ProjectId, env: Option<&crate::domain::EnvName>) -> crate::store::StoreResult<Vec<crate::store::SecretRecord>> {
                self.q_list_secrets(tenant, project, env).await
            }

            async fn delete_secret(&self, tenant: &crate::domain::TenantId, id: &crate::domain::SecretId) -> crate::store::StoreResult<()> {
                self.q_delete_secret(tenant, id).await
            }

            async fn consume_nonce(&self, project: &crate::domain::ProjectId, nonce: &str, keep_until: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> crate::store::StoreResult<bool> {
                self.q_consume_nonce(project, nonce, keep_until, now).await
            }

            async fn delete_credential(&self, tenant: &crate::domain::TenantId, alias: &crate::domain::Alias) -> crate::store::StoreResult<()> {
                let done = sqlx::query("DELETE FROM credentials WHERE tenant_id = $1 AND alias = $2")
                    .bind(tenant.as_str())
                    .bind(alias.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(crate::store::sql::db_err("credential"))?;
                crate::store::sql::one_row(done.rows_affected(), "credential")
            }
        }
    };
}

pub(super) use {cred_cols, impl_store, key_cols, role_cols};
