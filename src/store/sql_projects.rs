//! Project, project key, secret and signature-nonce queries, shared by both backends like
//! those in `sql.rs` (kept apart for size).
//!
//! Every query is scoped by tenant, except [`project_keys_by_name`](crate::store::Store::project_keys_by_name):
//! a signature's `keyid` names a project but no tenant, so that lookup is how the tenant is
//! found (like an API key by hash). Nonces are keyed by project id, which belongs to one tenant.

macro_rules! project_cols {
    () => {
        "id, tenant_id, name, created_at"
    };
}
macro_rules! project_key_cols {
    () => {
        "id, project_id, tenant_id, public_key, created_at, valid_until"
    };
}
macro_rules! secret_cols {
    () => {
        "id, tenant_id, project_id, env, name, version, wrapped_key, ciphertext, created_at, updated_at"
    };
}

/// Implements the project queries as inherent methods of `$store`; the `Store` impl delegates.
macro_rules! impl_project_queries {
    ($store:ty, $db:ty) => {
        mod project_rows {
            use sqlx::Row as _;

            use crate::crypto::Sealed;
            use crate::domain::{EnvName, ProjectId, ProjectKeyId, ProjectName, SecretId, SecretName, TenantId};
            use crate::store::sql::parsed;
            use crate::store::{ProjectKeyRecord, ProjectRecord, SecretRecord, StoreError};

            type Row = <$db as sqlx::Database>::Row;

            fn col<'r, T>(row: &'r Row, name: &str) -> Result<T, StoreError>
            where
                T: sqlx::Decode<'r, $db> + sqlx::Type<$db>,
            {
                row.try_get(name)
                    .map_err(|e| StoreError::Database(anyhow::Error::new(e).context(format!("column {name}"))))
            }

            pub fn project(row: &Row) -> Result<ProjectRecord, StoreError> {
                Ok(ProjectRecord {
                    id: parsed(ProjectId::parse(&col::<String>(row, "id")?), "projects.id")?,
                    tenant_id: parsed(TenantId::parse(&col::<String>(row, "tenant_id")?), "projects.tenant_id")?,
                    name: parsed(ProjectName::parse(&col::<String>(row, "name")?), "projects.name")?,
                    created_at: col(row, "created_at")?,
                })
            }

            pub fn project_key(row: &Row) -> Result<ProjectKeyRecord, StoreError> {
                let key: Vec<u8> = col(row, "public_key")?;
                Ok(ProjectKeyRecord {
                    id: parsed(ProjectKeyId::parse(&col::<String>(row, "id")?), "project_keys.id")?,
                    project_id: parsed(ProjectId::parse(&col::<String>(row, "project_id")?), "project_keys.project_id")?,
                    tenant_id: parsed(TenantId::parse(&col::<String>(row, "tenant_id")?), "project_keys.tenant_id")?,
                    public_key: parsed(<[u8; 32]>::try_from(key.as_slice()), "project_keys.public_key")?,
                    created_at: col(row, "created_at")?,
                    valid_until: col(row, "valid_until")?,
                })
            }

            pub fn secret(row: &Row) -> Result<SecretRecord, StoreError> {
                Ok(SecretRecord {
                    id: parsed(SecretId::parse(&col::<String>(row, "id")?), "project_secrets.id")?,
                    tenant_id: parsed(TenantId::parse(&col::<String>(row, "tenant_id")?), "project_secrets.tenant_id")?,
                    project_id: parsed(ProjectId::parse(&col::<String>(row, "project_id")?), "project_secrets.project_id")?,
                    env: parsed(EnvName::parse(&col::<String>(row, "env")?), "project_secrets.env")?,
                    name: parsed(SecretName::parse(&col::<String>(row, "name")?), "project_secrets.name")?,
                    version: col(row, "version")?,
                    sealed: Sealed { wrapped_key: col(row, "wrapped_key")?, ciphertext: col(row, "ciphertext")? },
                    created_at: col(row, "created_at")?,
                    updated_at: col(row, "updated_at")?,
                })
            }
        }

        impl $store {
            async fn q_create_project(&self, p: &crate::store::ProjectRecord, k: &crate::store::ProjectKeyRecord) -> crate::store::StoreResult<()> {
                let err = crate::store::sql::db_err("a project with this name");
                let mut tx = self.begin_write().await.map_err(&err)?;
                sqlx::query(concat!("INSERT INTO projects (", project_cols!(), ") VALUES ($1, $2, $3, $4)"))
                    .bind(p.id.as_str())
                    .bind(p.tenant_id.as_str())
                    .bind(p.name.as_str())
                    .bind(p.created_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(&err)?;
                Self::insert_project_key(&mut tx, k).await?;
                tx.commit().await.map_err(&err)?;
                Ok(())
            }

            async fn insert_project_key(
                tx: &mut sqlx::Transaction<'_, $db>,
                k: &crate::store::ProjectKeyRecord,
            ) -> crate::store::StoreResult<()> {
                // The project must belong to the key's tenant: checked in the same statement.
                let done = sqlx::query(concat!("INSERT INTO project_keys (", project_key_cols!(), ") SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM projects WHERE id = $2 AND tenant_id = $3)"))
                    .bind(k.id.as_str())
                    .bind(k.project_id.as_str())
                    .bind(k.tenant_id.as_str())
                    .bind(k.public_key.as_slice())
                    .bind(k.created_at)
                    .bind(k.valid_until)
                    .execute(&mut **tx)
                    .await
                    .map_err(crate::store::sql::db_err("project key"))?;
                crate::store::sql::one_row(done.rows_affected(), "project")
            }

            async fn q_list_projects(&self, tenant: &crate::domain::TenantId) -> crate::store::StoreResult<Vec<crate::store::ProjectRecord>> {
                let rows = sqlx::query(concat!("SELECT ", project_cols!(), " FROM projects WHERE tenant_id = $1 ORDER BY name"))
                    .bind(tenant.as_str())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(crate::store::sql::db_err("projects"))?;
                rows.iter().map(project_rows::project).collect()
            }

            async fn q_project(&self, tenant: &crate::domain::TenantId, id: &crate::domain::ProjectId) -> crate::store::StoreResult<crate::store::ProjectRecord> {
                let row = sqlx::query(concat!("SELECT ", project_cols!(), " FROM projects WHERE tenant_id = $1 AND id = $2"))
                    .bind(tenant.as_str())
                    .bind(id.as_str())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(crate::store::sql::db_err("project"))?
                    .ok_or(crate::store::StoreError::NotFound("project"))?;
                project_rows::project(&row)
            }

            async fn q_delete_project(&self, tenant: &crate::domain::TenantId, id: &crate::domain::ProjectId) -> crate::store::StoreResult<()> {
                let err = crate::store::sql::db_err("project");
                let mut tx = self.begin_write().await.map_err(&err)?;
                // Keys and secrets go with the project (the schema cascades too; explicit here so
                // the rule does not depend on a backend's foreign-key setting).
                for sql in [
                    "DELETE FROM project_secrets WHERE tenant_id = $1 AND project_id = $2",
                    "DELETE FROM project_keys WHERE tenant_id = $1 AND project_id = $2",
                    "DELETE FROM signature_nonces WHERE project_id = $2 AND EXISTS (SELECT 1 FROM projects WHERE id = $2 AND tenant_id = $1)",
                ] {
                    sqlx::query(sql).bind(tenant.as_str()).bind(id.as_str()).execute(&mut *tx).await.map_err(&err)?;
                }
                let done = sqlx::query("DELETE FROM projects WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.as_str())
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(&err)?;
                crate::store::sql::one_row(done.rows_affected(), "project")?;
                tx.commit().await.map_err(&err)?;
                Ok(())
            }

            async fn q_rotate_project_key(
                &self,
                k: &crate::store::ProjectKeyRecord,
                old_valid_until: chrono::DateTime<chrono::Utc>,
            ) -> crate::store::StoreResult<()> {
                let err = crate::store::sql::db_err("project key");
                let mut tx = self.begin_write().await.map_err(&err)?;
                // Keys already on their way out keep their (earlier) end; only the current key
                // gets the overlap.
                sqlx::query("UPDATE project_keys SET valid_until = $3 WHERE tenant_id = $1 AND project_id = $2 AND valid_until IS NULL")
                    .bind(k.tenant_id.as_str())
                    .bind(k.project_id.as_str())
                    .bind(old_valid_until)
                    .execute(&mut *tx)
                    .await
                    .map_err(&err)?;
                Self::insert_project_key(&mut tx, k).await?;
                tx.commit().await.map_err(&err)?;
                Ok(())
            }

            async fn q_project_keys(&self, tenant: &crate::domain::TenantId, project: &crate::domain::ProjectId) -> crate::store::StoreResult<Vec<crate::store::ProjectKeyRecord>> {
                let rows = sqlx::query(concat!("SELECT ", project_key_cols!(), " FROM project_keys WHERE tenant_id = $1 AND project_id = $2 ORDER BY created_at, id"))
                    .bind(tenant.as_str())
                    .bind(project.as_str())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(crate::store::sql::db_err("project keys"))?;
                rows.iter().map(project_rows::project_key).collect()
            }

            async fn q_project_keys_by_name(
                &self,
                name: &crate::domain::ProjectName,
                at: chrono::DateTime<chrono::Utc>,
            ) -> crate::store::StoreResult<Vec<(crate::store::ProjectRecord, crate::store::ProjectKeyRecord)>> {
                let err = crate::store::sql::db_err("projects");
                let projects = sqlx::query(concat!("SELECT ", project_cols!(), " FROM projects WHERE name = $1 ORDER BY id"))
                    .bind(name.as_str())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(&err)?;
                let mut out = Vec::new();
                for row in &projects {
                    let project = project_rows::project(row)?;
                    for key in self.q_project_keys(&project.tenant_id, &project.id).await? {
                        // Validity is decided here, in Rust, on the typed timestamp.
                        if key.valid_at(at) {
                            out.push((project.clone(), key));
                        }
                    }
                }
                Ok(out)
            }

            async fn q_secret(
                &self,
                tenant: &crate::domain::TenantId,
                project: &crate::domain::ProjectId,
                env: &crate::domain::EnvName,
                name: &crate::domain::SecretName,
            ) -> crate::store::StoreResult<Option<crate::store::SecretRecord>> {
                let row = sqlx::query(concat!("SELECT ", secret_cols!(), " FROM project_secrets WHERE tenant_id = $1 AND project_id = $2 AND env = $3 AND name = $4"))
                    .bind(tenant.as_str())
                    .bind(project.as_str())
                    .bind(env.as_str())
                    .bind(name.as_str())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(crate::store::sql::db_err("secret"))?;
                row.as_ref().map(project_rows::secret).transpose()
            }

            async fn q_create_secret(&self, s: &crate::store::SecretRecord) -> crate::store::StoreResult<()> {
                // The project must belong to the secret's tenant: checked in the same statement.
                let done = sqlx::query(concat!("INSERT INTO project_secrets (", secret_cols!(), ") SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 WHERE EXISTS (SELECT 1 FROM projects WHERE id = $3 AND tenant_id = $2)"))
                    .bind(s.id.as_str())
                    .bind(s.tenant_id.as_str())
                    .bind(s.project_id.as_str())
                    .bind(s.env.as_str())
                    .bind(s.name.as_str())
                    .bind(s.version)
                    .bind(&s.sealed.wrapped_key)
                    .bind(&s.sealed.ciphertext)
                    .bind(s.created_at)
                    .bind(s.updated_at)
                    .execute(&self.pool)
                    .await
                    .map_err(crate::store::sql::db_err("a secret with this key in this env"))?;
                crate::store::sql::one_row(done.rows_affected(), "project")
            }

            async fn q_update_secret(
                &self,
                tenant: &crate::domain::TenantId,
                id: &crate::domain::SecretId,
                expected_version: i64,
                sealed: &crate::crypto::Sealed,
                at: chrono::DateTime<chrono::Utc>,
            ) -> crate::store::StoreResult<()> {
                let err = crate::store::sql::db_err("secret");
                let done = sqlx::query("UPDATE project_secrets SET wrapped_key = $4, ciphertext = $5, version = version + 1, updated_at = $6 WHERE tenant_id = $1 AND id = $2 AND version = $3")
                    .bind(tenant.as_str())
                    .bind(id.as_str())
                    .bind(expected_version)
                    .bind(&sealed.wrapped_key)
                    .bind(&sealed.ciphertext)
                    .bind(at)
                    .execute(&self.pool)
                    .await
                    .map_err(&err)?;
                if done.rows_affected() == 0 {
                    let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM project_secrets WHERE tenant_id = $1 AND id = $2")
                        .bind(tenant.as_str())
                        .bind(id.as_str())
                        .fetch_one(&self.pool)
                        .await
                        .map_err(&err)?;
                    if exists == 0 {
                        return Err(crate::store::StoreError::NotFound("secret"));
                    }
                    return Err(crate::store::StoreError::Conflict("secret changed concurrently; retry".into()));
                }
                Ok(())
            }

            async fn q_list_secrets(
                &self,
                tenant: &crate::domain::TenantId,
                project: &crate::domain::ProjectId,
                env: Option<&crate::domain::EnvName>,
            ) -> crate::store::StoreResult<Vec<crate::store::SecretRecord>> {
                let rows = sqlx::query(concat!("SELECT ", secret_cols!(), " FROM project_secrets WHERE tenant_id = $1 AND project_id = $2 AND ($3 IS NULL OR env = $3) ORDER BY env, name"))
                    .bind(tenant.as_str())
                    .bind(project.as_str())
                    .bind(env.map(|e| e.as_str()))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(crate::store::sql::db_err("secrets"))?;
                rows.iter().map(project_rows::secret).collect()
            }

            async fn q_delete_secret(&self, tenant: &crate::domain::TenantId, id: &crate::domain::SecretId) -> crate::store::StoreResult<()> {
                let done = sqlx::query("DELETE FROM project_secrets WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.as_str())
                    .bind(id.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(crate::store::sql::db_err("secret"))?;
                crate::store::sql::one_row(done.rows_affected(), "secret")
            }

            async fn q_consume_nonce(
                &self,
                project: &crate::domain::ProjectId,
                nonce: &str,
                keep_until: chrono::DateTime<chrono::Utc>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> crate::store::StoreResult<bool> {
                let err = crate::store::sql::db_err("nonce");
                // Opportunistic purge: a nonce past its retention can no longer be replayed
                // (its signature is expired), so the row is no longer needed.
                sqlx::query("DELETE FROM signature_nonces WHERE expires_at <= $1")
                    .bind(now.timestamp())
                    .execute(&self.pool)
                    .await
                    .map_err(&err)?;
                // One statement decides, on every replica sharing this database: exactly one
                // insert of a (project, nonce) pair succeeds.
                let done = sqlx::query("INSERT INTO signature_nonces (project_id, nonce, expires_at) VALUES ($1, $2, $3) ON CONFLICT (project_id, nonce) DO NOTHING")
                    .bind(project.as_str())
                    .bind(nonce)
                    .bind(keep_until.timestamp())
                    .execute(&self.pool)
                    .await
                    .map_err(&err)?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

pub(super) use {impl_project_queries, project_cols, project_key_cols, secret_cols};
