//! `/v1/projects` and their secrets, administered with an API key (SPEC S7). Every operation
//! takes `admin`; a project or secret of another tenant is 404.
//!
//! Secret values go in and never come out here: listings are metadata only. Values are read
//! only by the project itself, through the signed `GET /v1/secrets` (`project_secrets.rs`).

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiJson, AppState};
use crate::auth::Caller;
use crate::crypto::httpsig::keys;
use crate::crypto::{Aad, Sealed};
use crate::domain::{EnvName, Permission, ProjectId, ProjectKeyId, ProjectName, SecretId, SecretName, TenantId};
use crate::error::ApiError;
use crate::store::{ProjectKeyRecord, ProjectRecord, SecretRecord, StoreError, now};

/// How long a rotated-out key keeps verifying.
pub const ROTATION_OVERLAP_SECS: i64 = 600;
/// Largest secret value, in bytes.
pub const MAX_SECRET_VALUE: usize = 64 * 1024;

/// `POST /v1/projects` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    #[schema(value_type = String, example = "billing")]
    name: ProjectName,
    /// Ed25519 public key: 64 hex digits or a JWK (`{"kty":"OKP","crv":"Ed25519","x":…}`).
    /// Omitted: a key pair is generated and the private key returned once.
    #[schema(value_type = Option<Object>)]
    public_key: Option<serde_json::Value>,
}

/// A project as shown; `private_key` only right after it was generated.
#[derive(Serialize, ToSchema)]
pub struct ProjectView {
    id: String,
    name: String,
    /// The `keyid` to sign with.
    keyid: String,
    /// The current public key (hex).
    public_key: String,
    created_at: DateTime<Utc>,
    /// The generated private key (hex seed), shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    private_key: Option<String>,
    /// After a rotation: until when the previous key still verifies.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_key_valid_until: Option<DateTime<Utc>>,
}

/// The list of projects.
#[derive(Serialize, ToSchema)]
pub struct ProjectList {
    projects: Vec<ProjectView>,
    next_cursor: Option<String>,
}

/// `PUT /v1/projects/{id}/secrets` body (and the signed `PUT /v1/secrets`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutSecret {
    #[schema(value_type = String, example = "DATABASE_URL")]
    pub(super) key: SecretName,
    /// The value; never returned by any listing.
    #[schema(value_type = String)]
    pub(super) value: SecretString,
    #[schema(value_type = String, example = "production")]
    pub(super) env: EnvName,
}

/// A secret's metadata (never its value).
#[derive(Serialize, ToSchema)]
pub struct SecretView {
    id: String,
    key: String,
    env: String,
    updated_at: DateTime<Utc>,
}

impl From<&SecretRecord> for SecretView {
    fn from(s: &SecretRecord) -> Self {
        Self {
            id: s.id.to_string(),
            key: s.name.to_string(),
            env: s.env.to_string(),
            updated_at: s.updated_at,
        }
    }
}

/// The list of a project's secrets.
#[derive(Serialize, ToSchema)]
pub struct SecretList {
    secrets: Vec<SecretView>,
    next_cursor: Option<String>,
}

/// `?env=` filter. Describes the query for the OpenAPI document; [`env_param`] parses it.
#[derive(utoipa::IntoParams)]
#[allow(dead_code)]
pub struct EnvQuery {
    /// The environment (URL-encoded).
    env: Option<String>,
}

/// Reads `env` from a raw query string (percent- and `+`-decoded); at most one `env`.
pub(super) fn env_param(query: Option<&str>) -> Result<Option<EnvName>, ApiError> {
    let mut found = None;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if k == "env" {
            if found.is_some() {
                return Err(ApiError::InvalidRequest("env given more than once".into()));
            }
            found = Some(EnvName::parse(&v)?);
        }
    }
    Ok(found)
}

fn view(p: &ProjectRecord, key: &ProjectKeyRecord) -> ProjectView {
    ProjectView {
        id: p.id.to_string(),
        name: p.name.to_string(),
        keyid: p.name.keyid(),
        public_key: hex::encode(key.public_key),
        created_at: p.created_at,
        private_key: None,
        previous_key_valid_until: None,
    }
}

fn parse_project_id(raw: &str) -> Result<ProjectId, ApiError> {
    ProjectId::parse(raw).map_err(|_| ApiError::NotFound("project not found".into()))
}

fn new_key(p: &ProjectRecord, public_key: [u8; 32], at: DateTime<Utc>) -> ProjectKeyRecord {
    ProjectKeyRecord {
        id: ProjectKeyId::generate(),
        project_id: p.id.clone(),
        tenant_id: p.tenant_id.clone(),
        public_key,
        created_at: at,
        valid_until: None,
    }
}

/// The AAD binding a secret's ciphertext to its tenant, id and version.
pub(super) fn secret_aad<'a>(tenant: &'a TenantId, id: &'a SecretId, version: i64) -> Aad<'a> {
    Aad {
        kind: "project_secret",
        tenant: tenant.as_str(),
        object_id: id.as_str(),
        version,
    }
}

/// Creates or overwrites a project's secret (envelope-encrypted, version bumped on overwrite).
pub(super) async fn store_secret(
    state: &AppState,
    project: &ProjectRecord,
    body: &PutSecret,
) -> Result<SecretRecord, ApiError> {
    let value = body.value.expose_secret();
    if value.len() > MAX_SECRET_VALUE {
        return Err(ApiError::PayloadTooLarge(format!(
            "value must be at most {MAX_SECRET_VALUE} bytes"
        )));
    }
    if value.contains('\0') {
        return Err(ApiError::InvalidRequest(
            "value must not contain NUL (it becomes an environment variable)".into(),
        ));
    }
    let store = state.store();
    let tenant = &project.tenant_id;
    // Two attempts: a concurrent first write of the same key turns our insert into an update.
    for _ in 0..2 {
        let at = now();
        match store.secret(tenant, &project.id, &body.env, &body.key).await? {
            Some(mut existing) => {
                let sealed = Sealed::seal(
                    state.master_key(),
                    secret_aad(tenant, &existing.id, existing.version + 1),
                    value.as_bytes(),
                );
                match store
                    .update_secret(tenant, &existing.id, existing.version, &sealed, at)
                    .await
                {
                    Ok(()) => {
                        existing.version += 1;
                        existing.sealed = sealed;
                        existing.updated_at = at;
                        return Ok(existing);
                    }
                    Err(StoreError::Conflict(_) | StoreError::NotFound(_)) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            None => {
                let id = SecretId::generate();
                let record = SecretRecord {
                    sealed: Sealed::seal(state.master_key(), secret_aad(tenant, &id, 1), value.as_bytes()),
                    id,
                    tenant_id: tenant.clone(),
                    project_id: project.id.clone(),
                    env: body.env.clone(),
                    name: body.key.clone(),
                    version: 1,
                    created_at: at,
                    updated_at: at,
                };
                match store.create_secret(&record).await {
                    Ok(()) => return Ok(record),
                    Err(StoreError::Conflict(_)) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Err(ApiError::Conflict("secret changed concurrently; retry".into()))
}

/// Creates a project.
#[utoipa::path(post, path = "/v1/projects", request_body = CreateProject,
    responses((status = 201, body = ProjectView), (status = 400), (status = 409)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateProject>,
) -> Result<(StatusCode, Json<ProjectView>), ApiError> {
    caller.require(Permission::Admin)?;
    let (public_key, private_key) = match &body.public_key {
        Some(v) => (keys::parse_public_key(v)?, None),
        None => {
            let g = keys::generate();
            (g.public_key, Some(g.private_hex))
        }
    };
    let at = now();
    let project = ProjectRecord {
        id: ProjectId::generate(),
        tenant_id: caller.tenant_id.clone(),
        name: body.name,
        created_at: at,
    };
    let key = new_key(&project, public_key, at);
    state.store().create_project(&project, &key).await?;
    tracing::info!(project = %project.id, name = %project.name, "project created");
    let mut v = view(&project, &key);
    v.private_key = private_key.map(|k| k.to_string());
    Ok((StatusCode::CREATED, Json(v)))
}

/// Lists the tenant's projects.
#[utoipa::path(get, path = "/v1/projects", responses((status = 200, body = ProjectList)))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<ProjectList>, ApiError> {
    caller.require(Permission::Admin)?;
    let store = state.store();
    let mut projects = Vec::new();
    for p in store.list_projects(&caller.tenant_id).await? {
        let keys = store.project_keys(&caller.tenant_id, &p.id).await?;
        if let Some(current) = keys.iter().rev().find(|k| k.valid_until.is_none()) {
            projects.push(view(&p, current));
        }
    }
    Ok(Json(ProjectList {
        projects,
        next_cursor: None,
    }))
}

/// Deletes a project with its keys and secrets.
#[utoipa::path(delete, path = "/v1/projects/{id}", responses((status = 204), (status = 404)))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Permission::Admin)?;
    let id = parse_project_id(&id)?;
    state.store().delete_project(&caller.tenant_id, &id).await?;
    tracing::info!(project = %id, "project deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Generates a new key pair; the previous key verifies for 10 more minutes.
#[utoipa::path(put, path = "/v1/projects/{id}/rotate", responses((status = 200, body = ProjectView), (status = 404)))]
pub async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ProjectView>, ApiError> {
    caller.require(Permission::Admin)?;
    let project = state
        .store()
        .project(&caller.tenant_id, &parse_project_id(&id)?)
        .await?;
    let g = keys::generate();
    let at = now();
    let key = new_key(&project, g.public_key, at);
    let until = at + Duration::seconds(ROTATION_OVERLAP_SECS);
    state.store().rotate_project_key(&key, until).await?;
    tracing::info!(project = %project.id, "project key rotated");
    let mut v = view(&project, &key);
    v.private_key = Some(g.private_hex.to_string());
    v.previous_key_valid_until = Some(until);
    Ok(Json(v))
}

/// Creates or overwrites a secret of a project.
#[utoipa::path(put, path = "/v1/projects/{id}/secrets", request_body = PutSecret,
    responses((status = 200, body = SecretView), (status = 400), (status = 404)))]
pub async fn put_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PutSecret>,
) -> Result<Json<SecretView>, ApiError> {
    caller.require(Permission::Admin)?;
    let project = state
        .store()
        .project(&caller.tenant_id, &parse_project_id(&id)?)
        .await?;
    let secret = store_secret(&state, &project, &body).await?;
    tracing::info!(project = %project.id, secret = %secret.id, version = secret.version, "secret written");
    Ok(Json(SecretView::from(&secret)))
}

/// Lists a project's secrets (metadata only), optionally of one environment.
#[utoipa::path(get, path = "/v1/projects/{id}/secrets", params(EnvQuery),
    responses((status = 200, body = SecretList), (status = 404)))]
pub async fn list_secrets(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<SecretList>, ApiError> {
    caller.require(Permission::Admin)?;
    let project = state
        .store()
        .project(&caller.tenant_id, &parse_project_id(&id)?)
        .await?;
    let env = env_param(query.as_deref())?;
    let secrets = state
        .store()
        .list_secrets(&caller.tenant_id, &project.id, env.as_ref())
        .await?;
    Ok(Json(SecretList {
        secrets: secrets.iter().map(SecretView::from).collect(),
        next_cursor: None,
    }))
}

/// Deletes a secret.
#[utoipa::path(delete, path = "/v1/secrets/{id}", responses((status = 204), (status = 404)))]
pub async fn delete_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Permission::Admin)?;
    let id = SecretId::parse(&id).map_err(|_| ApiError::NotFound("secret not found".into()))?;
    state.store().delete_secret(&caller.tenant_id, &id).await?;
    tracing::info!(secret = %id, "secret deleted");
    Ok(StatusCode::NO_CONTENT)
}
