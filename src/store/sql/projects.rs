//! Projects, their Ed25519 keys, their configuration secrets and signature nonces.
//!
//! Every query is scoped by tenant except [`keys_by_name`]: a signature's `keyid` names a
//! project but no tenant, so that lookup is how the tenant is found (like an API key by hash).
//! Nonces are keyed by project id, which belongs to one tenant.

use chrono::{DateTime, Utc};
use sqlx::AnyExecutor;
use sqlx_macros::FromRow;

use super::{SqlStore, db_err, from_micros, from_opt_micros, micros, one_row, parsed};
use crate::crypto::Sealed;
use crate::domain::{EnvName, ProjectId, ProjectKeyId, ProjectName, SecretId, SecretName, TenantId};
use crate::store::{ProjectKeyRecord, ProjectRecord, SecretRecord, StoreError, StoreResult};

/// A `projects` row.
#[derive(FromRow)]
struct ProjectRow {
    id: String,
    tenant_id: String,
    name: String,
    created_us: i64,
}

impl TryFrom<ProjectRow> for ProjectRecord {
    type Error = StoreError;

    fn try_from(r: ProjectRow) -> StoreResult<Self> {
        Ok(Self {
            id: parsed(ProjectId::parse(&r.id), "projects.id")?,
            tenant_id: parsed(TenantId::parse(&r.tenant_id), "projects.tenant_id")?,
            name: parsed(ProjectName::parse(&r.name), "projects.name")?,
            created_at: from_micros(r.created_us, "projects.created_us")?,
        })
    }
}

/// A `project_keys` row.
#[derive(FromRow)]
struct ProjectKeyRow {
    id: String,
    project_id: String,
    tenant_id: String,
    public_key: Vec<u8>,
    created_us: i64,
    valid_until_us: Option<i64>,
}

impl TryFrom<ProjectKeyRow> for ProjectKeyRecord {
    type Error = StoreError;

    fn try_from(r: ProjectKeyRow) -> StoreResult<Self> {
        Ok(Self {
            id: parsed(ProjectKeyId::parse(&r.id), "project_keys.id")?,
            project_id: parsed(ProjectId::parse(&r.project_id), "project_keys.project_id")?,
            tenant_id: parsed(TenantId::parse(&r.tenant_id), "project_keys.tenant_id")?,
            public_key: parsed(<[u8; 32]>::try_from(r.public_key.as_slice()), "project_keys.public_key")?,
            created_at: from_micros(r.created_us, "project_keys.created_us")?,
            valid_until: from_opt_micros(r.valid_until_us, "project_keys.valid_until_us")?,
        })
    }
}

/// A `project_secrets` row.
#[derive(FromRow)]
struct SecretRow {
    id: String,
    tenant_id: String,
    project_id: String,
    env: String,
    name: String,
    version: i64,
    wrapped_key: Vec<u8>,
    ciphertext: Vec<u8>,
    created_us: i64,
    updated_us: i64,
}

impl TryFrom<SecretRow> for SecretRecord {
    type Error = StoreError;

    fn try_from(r: SecretRow) -> StoreResult<Self> {
        Ok(Self {
            id: parsed(SecretId::parse(&r.id), "project_secrets.id")?,
            tenant_id: parsed(TenantId::parse(&r.tenant_id), "project_secrets.tenant_id")?,
            project_id: parsed(ProjectId::parse(&r.project_id), "project_secrets.project_id")?,
            env: parsed(EnvName::parse(&r.env), "project_secrets.env")?,
            name: parsed(SecretName::parse(&r.name), "project_secrets.name")?,
            version: r.version,
            sealed: Sealed {
                wrapped_key: r.wrapped_key,
                ciphertext: r.ciphertext,
            },
            created_at: from_micros(r.created_us, "project_secrets.created_us")?,
            updated_at: from_micros(r.updated_us, "project_secrets.updated_us")?,
        })
    }
}

/// Creates a project with its first key; `Conflict` if the name is taken.
pub(super) async fn create(db: &SqlStore, p: &ProjectRecord, k: &ProjectKeyRecord) -> StoreResult<()> {
    let err = db_err("a project with this name");
    let mut tx = db.begin_write().await.map_err(&err)?;
    sqlx::query("INSERT INTO projects (id, tenant_id, name, created_us) VALUES ($1, $2, $3, $4)")
        .bind(p.id.as_str())
        .bind(p.tenant_id.as_str())
        .bind(p.name.as_str())
        .bind(micros(p.created_at))
        .execute(&mut *tx)
        .await
        .map_err(&err)?;
    insert_key(&mut *tx, k).await?;
    tx.commit().await.map_err(&err)
}

/// Adds a key; `NotFound` unless its project is in the key's tenant (checked in the same
/// statement).
async fn insert_key<'c>(db: impl AnyExecutor<'c>, k: &ProjectKeyRecord) -> StoreResult<()> {
    let done = sqlx::query(
        "INSERT INTO project_keys (id, project_id, tenant_id, public_key, created_us, valid_until_us) \
         SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM projects WHERE id = $2 AND tenant_id = $3)",
    )
    .bind(k.id.as_str())
    .bind(k.project_id.as_str())
    .bind(k.tenant_id.as_str())
    .bind(k.public_key.as_slice())
    .bind(micros(k.created_at))
    .bind(k.valid_until.map(micros))
    .execute(db)
    .await
    .map_err(db_err("project key"))?;
    one_row(done.rows_affected(), "project")
}

/// A tenant's projects by name.
pub(super) async fn list(db: &SqlStore, tenant: &TenantId) -> StoreResult<Vec<ProjectRecord>> {
    let rows: Vec<ProjectRow> = sqlx::query_as("SELECT * FROM projects WHERE tenant_id = $1 ORDER BY name")
        .bind(tenant.as_str())
        .fetch_all(&db.pool)
        .await
        .map_err(db_err("projects"))?;
    rows.into_iter().map(TryInto::try_into).collect()
}

/// One project of a tenant.
pub(super) async fn one(db: &SqlStore, tenant: &TenantId, id: &ProjectId) -> StoreResult<ProjectRecord> {
    let row: ProjectRow = sqlx::query_as("SELECT * FROM projects WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_optional(&db.pool)
        .await
        .map_err(db_err("project"))?
        .ok_or(StoreError::NotFound("project"))?;
    row.try_into()
}

/// Deletes a project with its keys, secrets and nonces.
pub(super) async fn delete(db: &SqlStore, tenant: &TenantId, id: &ProjectId) -> StoreResult<()> {
    let err = db_err("project");
    let mut tx = db.begin_write().await.map_err(&err)?;
    // Keys and secrets go with the project (the schema cascades too; explicit here so the rule
    // does not depend on a backend's foreign-key setting).
    for sql in [
        "DELETE FROM project_secrets WHERE tenant_id = $1 AND project_id = $2",
        "DELETE FROM project_keys WHERE tenant_id = $1 AND project_id = $2",
        "DELETE FROM signature_nonces WHERE project_id = $2 \
         AND EXISTS (SELECT 1 FROM projects WHERE id = $2 AND tenant_id = $1)",
        "DELETE FROM projects WHERE tenant_id = $1 AND id = $2",
    ] {
        let done = sqlx::query(sql)
            .bind(tenant.as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
        if sql.starts_with("DELETE FROM projects") && done.rows_affected() == 0 {
            tx.rollback().await.map_err(&err)?;
            return Err(StoreError::NotFound("project"));
        }
    }
    tx.commit().await.map_err(&err)
}

/// Makes `k` the project's current key; the current one stays valid until `old_valid_until`.
pub(super) async fn rotate_key(db: &SqlStore, k: &ProjectKeyRecord, old_valid_until: DateTime<Utc>) -> StoreResult<()> {
    let err = db_err("project key");
    let mut tx = db.begin_write().await.map_err(&err)?;
    // Keys already on their way out keep their (earlier) end; only the current key gets the
    // overlap.
    sqlx::query(
        "UPDATE project_keys SET valid_until_us = $3 \
         WHERE tenant_id = $1 AND project_id = $2 AND valid_until_us IS NULL",
    )
    .bind(k.tenant_id.as_str())
    .bind(k.project_id.as_str())
    .bind(micros(old_valid_until))
    .execute(&mut *tx)
    .await
    .map_err(&err)?;
    if let Err(e) = insert_key(&mut *tx, k).await {
        tx.rollback().await.map_err(&err)?;
        return Err(e);
    }
    tx.commit().await.map_err(&err)
}

/// All keys of a project, oldest first.
pub(super) async fn keys(db: &SqlStore, tenant: &TenantId, project: &ProjectId) -> StoreResult<Vec<ProjectKeyRecord>> {
    let rows: Vec<ProjectKeyRow> =
        sqlx::query_as("SELECT * FROM project_keys WHERE tenant_id = $1 AND project_id = $2 ORDER BY created_us, id")
            .bind(tenant.as_str())
            .bind(project.as_str())
            .fetch_all(&db.pool)
            .await
            .map_err(db_err("project keys"))?;
    rows.into_iter().map(TryInto::try_into).collect()
}

/// The keys valid at `at` of every project named `name`, in any tenant.
pub(super) async fn keys_by_name(
    db: &SqlStore,
    name: &ProjectName,
    at: DateTime<Utc>,
) -> StoreResult<Vec<(ProjectRecord, ProjectKeyRecord)>> {
    let rows: Vec<ProjectRow> = sqlx::query_as("SELECT * FROM projects WHERE name = $1 ORDER BY id")
        .bind(name.as_str())
        .fetch_all(&db.pool)
        .await
        .map_err(db_err("projects"))?;
    let mut out = Vec::new();
    for row in rows {
        let project = ProjectRecord::try_from(row)?;
        for key in keys(db, &project.tenant_id, &project.id).await? {
            // Validity is decided here, in Rust, on the typed timestamp.
            if key.valid_at(at) {
                out.push((project.clone(), key));
            }
        }
    }
    Ok(out)
}

/// A project's secret by environment and name.
pub(super) async fn secret(
    db: &SqlStore,
    tenant: &TenantId,
    project: &ProjectId,
    env: &EnvName,
    name: &SecretName,
) -> StoreResult<Option<SecretRecord>> {
    let row: Option<SecretRow> = sqlx::query_as(
        "SELECT * FROM project_secrets WHERE tenant_id = $1 AND project_id = $2 AND env = $3 AND name = $4",
    )
    .bind(tenant.as_str())
    .bind(project.as_str())
    .bind(env.as_str())
    .bind(name.as_str())
    .fetch_optional(&db.pool)
    .await
    .map_err(db_err("secret"))?;
    row.map(TryInto::try_into).transpose()
}

/// Creates a secret; `NotFound` unless its project is in the secret's tenant (checked in the
/// same statement).
pub(super) async fn create_secret(db: &SqlStore, s: &SecretRecord) -> StoreResult<()> {
    let done = sqlx::query(
        "INSERT INTO project_secrets \
         (id, tenant_id, project_id, env, name, version, wrapped_key, ciphertext, created_us, updated_us) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 \
         WHERE EXISTS (SELECT 1 FROM projects WHERE id = $3 AND tenant_id = $2)",
    )
    .bind(s.id.as_str())
    .bind(s.tenant_id.as_str())
    .bind(s.project_id.as_str())
    .bind(s.env.as_str())
    .bind(s.name.as_str())
    .bind(s.version)
    .bind(s.sealed.wrapped_key.as_slice())
    .bind(s.sealed.ciphertext.as_slice())
    .bind(micros(s.created_at))
    .bind(micros(s.updated_at))
    .execute(&db.pool)
    .await
    .map_err(db_err("a secret with this key in this env"))?;
    one_row(done.rows_affected(), "project")
}

/// Replaces a secret's sealed value and bumps its version, if it is still `expected_version`.
pub(super) async fn update_secret(
    db: &SqlStore,
    tenant: &TenantId,
    id: &SecretId,
    expected_version: i64,
    sealed: &Sealed,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let err = db_err("secret");
    let done = sqlx::query(
        "UPDATE project_secrets SET wrapped_key = $4, ciphertext = $5, version = version + 1, updated_us = $6 \
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
    let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM project_secrets WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_one(&db.pool)
        .await
        .map_err(&err)?;
    if exists == 0 {
        return Err(StoreError::NotFound("secret"));
    }
    Err(StoreError::Conflict("secret changed concurrently; retry".into()))
}

/// A project's secrets (of one environment, or all), by env then name.
pub(super) async fn secrets(
    db: &SqlStore,
    tenant: &TenantId,
    project: &ProjectId,
    env: Option<&EnvName>,
) -> StoreResult<Vec<SecretRecord>> {
    let rows: Vec<SecretRow> = sqlx::query_as(
        "SELECT * FROM project_secrets WHERE tenant_id = $1 AND project_id = $2 AND ($3 IS NULL OR env = $3) \
         ORDER BY env, name",
    )
    .bind(tenant.as_str())
    .bind(project.as_str())
    .bind(env.map(EnvName::as_str))
    .fetch_all(&db.pool)
    .await
    .map_err(db_err("secrets"))?;
    rows.into_iter().map(TryInto::try_into).collect()
}

/// Deletes a secret.
pub(super) async fn delete_secret(db: &SqlStore, tenant: &TenantId, id: &SecretId) -> StoreResult<()> {
    let done = sqlx::query("DELETE FROM project_secrets WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.as_str())
        .bind(id.as_str())
        .execute(&db.pool)
        .await
        .map_err(db_err("secret"))?;
    one_row(done.rows_affected(), "secret")
}

/// Records a nonce kept until `keep_until`; false if it was already recorded (a replay).
pub(super) async fn consume_nonce(
    db: &SqlStore,
    project: &ProjectId,
    nonce: &str,
    keep_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let err = db_err("nonce");
    // Opportunistic purge: a nonce past its retention can no longer be replayed (its signature
    // is expired), so the row is no longer needed.
    sqlx::query("DELETE FROM signature_nonces WHERE expires_at <= $1")
        .bind(now.timestamp())
        .execute(&db.pool)
        .await
        .map_err(&err)?;
    // One statement decides, on every replica sharing this database: exactly one insert of a
    // (project, nonce) pair succeeds.
    let done = sqlx::query(
        "INSERT INTO signature_nonces (project_id, nonce, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (project_id, nonce) DO NOTHING",
    )
    .bind(project.as_str())
    .bind(nonce)
    .bind(keep_until.timestamp())
    .execute(&db.pool)
    .await
    .map_err(&err)?;
    Ok(done.rows_affected() == 1)
}
