//! `/v1/credentials`: create, list, show, update, delete, freeze/unfreeze and rotate (SPEC S4).
//!
//! Secret data goes in (create, rotate) and never comes out: every view is built from
//! [`CredentialView`], which has no data field.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiJson, AppState};
use crate::auth::Caller;
use crate::crypto::{Aad, Sealed};
use crate::domain::credential::RawSecretData;
use crate::domain::{Alias, CredentialId, CredentialKind, CredentialSecret, EgressPolicy, Injection, Permission};
use crate::error::ApiError;
use crate::store::{CredentialRecord, CredentialStatus, now};

type Metadata = serde_json::Map<String, serde_json::Value>;

const MAX_DESCRIPTION: usize = 1024;
const MAX_METADATA_BYTES: usize = 16 * 1024;
const MAX_PAGE: u32 = 500;

/// `POST /v1/credentials` body: the canonical JSON of SPEC S4.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCredential {
    #[schema(value_type = String, example = "github")]
    alias: Alias,
    /// `api_key`, `basic_auth` or `headers`.
    #[serde(rename = "type")]
    kind: String,
    /// The secret: `{key}`, `{username, password}` or `{headers: {…}}`. Never returned.
    #[schema(value_type = Object)]
    data: RawSecretData,
    #[schema(value_type = Option<Object>)]
    inject: Option<Injection>,
    #[schema(value_type = Object)]
    policy: EgressPolicy,
    description: Option<String>,
    #[schema(value_type = Option<Object>)]
    metadata: Option<Metadata>,
}

/// `PATCH /v1/credentials/{alias}` body: any of the non-secret fields.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCredential {
    #[schema(value_type = Option<Object>)]
    inject: Option<Injection>,
    #[schema(value_type = Option<Object>)]
    policy: Option<EgressPolicy>,
    description: Option<String>,
    #[schema(value_type = Option<Object>)]
    metadata: Option<Metadata>,
}

/// `POST /v1/credentials/{alias}/rotate` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateCredential {
    #[schema(value_type = Object)]
    data: RawSecretData,
}

/// A credential as the API shows it: everything but the secret data.
#[derive(Serialize, ToSchema)]
pub struct CredentialView {
    id: String,
    alias: String,
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    kind: CredentialKind,
    #[schema(value_type = Option<Object>)]
    inject: Option<Injection>,
    #[schema(value_type = Object)]
    policy: EgressPolicy,
    description: Option<String>,
    #[schema(value_type = Object)]
    metadata: Metadata,
    #[schema(value_type = String)]
    status: CredentialStatus,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<&CredentialRecord> for CredentialView {
    fn from(c: &CredentialRecord) -> Self {
        Self {
            id: c.id.to_string(),
            alias: c.alias.to_string(),
            kind: c.kind,
            inject: c.inject.clone(),
            policy: c.policy.clone(),
            description: c.description.clone(),
            metadata: c.metadata.clone(),
            status: c.status,
            version: c.version,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// A page of credentials.
#[derive(Serialize, ToSchema)]
pub struct CredentialList {
    credentials: Vec<CredentialView>,
    next_cursor: Option<String>,
}

/// List query: page size and cursor.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

fn validate_fields(
    description: Option<&String>,
    metadata: Option<&Metadata>,
    policy: Option<&EgressPolicy>,
) -> Result<(), ApiError> {
    if description.is_some_and(|d| d.chars().count() > MAX_DESCRIPTION) {
        return Err(ApiError::InvalidRequest(format!(
            "description must be at most {MAX_DESCRIPTION} characters"
        )));
    }
    if metadata.is_some_and(|m| serde_json::to_vec(m).map_or(true, |b| b.len() > MAX_METADATA_BYTES)) {
        return Err(ApiError::InvalidRequest(format!(
            "metadata must be at most {MAX_METADATA_BYTES} bytes"
        )));
    }
    if let Some(p) = policy {
        p.validate()?;
    }
    Ok(())
}

fn seal(state: &AppState, c: &CredentialRecord, secret: &CredentialSecret, version: i64) -> Sealed {
    let aad = Aad {
        kind: "credential",
        tenant: c.tenant_id.as_str(),
        object_id: c.id.as_str(),
        version,
    };
    Sealed::seal(state.master_key(), aad, &secret.to_plaintext())
}

/// Finds a credential the caller may see.
async fn visible(state: &AppState, caller: &Caller, alias: &str) -> Result<CredentialRecord, ApiError> {
    let alias = Alias::parse(alias)?;
    caller.require_scope(alias.as_str())?;
    Ok(state.store().credential(&caller.tenant_id, &alias).await?)
}

/// Creates a credential.
#[utoipa::path(post, path = "/v1/credentials", request_body = CreateCredential,
    responses((status = 201, body = CredentialView), (status = 400), (status = 403), (status = 409)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateCredential>,
) -> Result<(StatusCode, Json<CredentialView>), ApiError> {
    caller.require(Permission::Write)?;
    caller.require_scope(body.alias.as_str())?;
    let kind = CredentialKind::parse(&body.kind)?;
    let secret = CredentialSecret::from_raw(kind, body.data)?;
    if let Some(i) = &body.inject {
        i.validate(kind)?;
    }
    validate_fields(body.description.as_ref(), body.metadata.as_ref(), Some(&body.policy))?;
    let at = now();
    let mut record = CredentialRecord {
        id: CredentialId::generate(),
        tenant_id: caller.tenant_id.clone(),
        alias: body.alias,
        kind,
        status: CredentialStatus::Active,
        version: 1,
        inject: body.inject,
        policy: body.policy,
        description: body.description,
        metadata: body.metadata.unwrap_or_default(),
        sealed: Sealed {
            wrapped_key: Vec::new(),
            ciphertext: Vec::new(),
        },
        created_at: at,
        updated_at: at,
    };
    record.sealed = seal(&state, &record, &secret, record.version);
    state.store().create_credential(&record).await?;
    tracing::info!(credential = %record.id, alias = %record.alias, kind = kind.as_str(), "credential created");
    Ok((StatusCode::CREATED, Json(CredentialView::from(&record))))
}

/// Lists the credentials within the caller's scopes.
#[utoipa::path(get, path = "/v1/credentials", params(ListQuery), responses((status = 200, body = CredentialList)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<CredentialList>, ApiError> {
    caller.require(Permission::Read)?;
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let mut after = q.cursor.as_deref().map(Alias::parse).transpose()?;
    let mut credentials = Vec::new();
    let mut exhausted = false;
    while credentials.len() < limit as usize {
        let page = state
            .store()
            .list_credentials(&caller.tenant_id, after.as_ref(), limit)
            .await?;
        exhausted = page.len() < limit as usize;
        for c in &page {
            if credentials.len() == limit as usize {
                exhausted = false;
                break;
            }
            after = Some(c.alias.clone());
            if caller.sees(c.alias.as_str()) {
                credentials.push(CredentialView::from(c));
            }
        }
        if exhausted {
            break;
        }
    }
    let next_cursor = if exhausted { None } else { after.map(|a| a.to_string()) };
    Ok(Json(CredentialList {
        credentials,
        next_cursor,
    }))
}

/// Shows one credential (without its data).
#[utoipa::path(get, path = "/v1/credentials/{alias}", responses((status = 200, body = CredentialView), (status = 404)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(alias): Path<String>,
) -> Result<Json<CredentialView>, ApiError> {
    caller.require(Permission::Read)?;
    let c = visible(&state, &caller, &alias).await?;
    Ok(Json(CredentialView::from(&c)))
}

/// Updates the non-secret fields.
#[utoipa::path(patch, path = "/v1/credentials/{alias}", request_body = UpdateCredential,
    responses((status = 200, body = CredentialView), (status = 400), (status = 404)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(alias): Path<String>,
    ApiJson(body): ApiJson<UpdateCredential>,
) -> Result<Json<CredentialView>, ApiError> {
    caller.require(Permission::Write)?;
    // Re-pointing where (or how) an existing secret is sent would let a `write` key send it to
    // a host of its choosing and read it there: that takes `admin`.
    if body.policy.is_some() || body.inject.is_some() {
        caller.require(Permission::Admin)?;
    }
    let mut c = visible(&state, &caller, &alias).await?;
    validate_fields(body.description.as_ref(), body.metadata.as_ref(), body.policy.as_ref())?;
    if let Some(i) = &body.inject {
        i.validate(c.kind)?;
        c.inject = Some(i.clone());
    }
    if let Some(p) = body.policy {
        c.policy = p;
    }
    if let Some(d) = body.description {
        c.description = Some(d);
    }
    if let Some(m) = body.metadata {
        c.metadata = m;
    }
    c.updated_at = now();
    state.store().update_credential(&c).await?;
    state.lookups().forget_credential(&c.tenant_id, &c.alias);
    Ok(Json(CredentialView::from(&c)))
}

/// Deletes a credential.
#[utoipa::path(delete, path = "/v1/credentials/{alias}", responses((status = 204), (status = 404)))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(alias): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Permission::Delete)?;
    let c = visible(&state, &caller, &alias).await?;
    state.store().delete_credential(&caller.tenant_id, &c.alias).await?;
    state.lookups().forget_credential(&c.tenant_id, &c.alias);
    tracing::info!(credential = %c.id, "credential deleted");
    Ok(StatusCode::NO_CONTENT)
}

async fn set_status(
    state: &AppState,
    caller: &Caller,
    alias: &str,
    status: CredentialStatus,
) -> Result<Json<CredentialView>, ApiError> {
    caller.require(Permission::Write)?;
    let mut c = visible(state, caller, alias).await?;
    c.status = status;
    c.updated_at = now();
    state
        .store()
        .set_credential_status(&c.tenant_id, &c.id, status, c.updated_at)
        .await?;
    state.lookups().forget_credential(&c.tenant_id, &c.alias);
    tracing::info!(credential = %c.id, status = status.as_str(), "credential status changed");
    Ok(Json(CredentialView::from(&c)))
}

/// Freezes a credential: kept, but every use answers 404 `credential_frozen`.
#[utoipa::path(post, path = "/v1/credentials/{alias}/freeze", responses((status = 200, body = CredentialView)))]
pub async fn freeze(
    State(state): State<AppState>,
    caller: Caller,
    Path(alias): Path<String>,
) -> Result<Json<CredentialView>, ApiError> {
    set_status(&state, &caller, &alias, CredentialStatus::Frozen).await
}

/// Unfreezes a credential.
#[utoipa::path(post, path = "/v1/credentials/{alias}/unfreeze", responses((status = 200, body = CredentialView)))]
pub async fn unfreeze(
    State(state): State<AppState>,
    caller: Caller,
    Path(alias): Path<String>,
) -> Result<Json<CredentialView>, ApiError> {
    set_status(&state, &caller, &alias, CredentialStatus::Active).await
}

/// Replaces the secret data; the version increments.
#[utoipa::path(post, path = "/v1/credentials/{alias}/rotate", request_body = RotateCredential,
    responses((status = 200, body = CredentialView), (status = 409)))]
pub async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    Path(alias): Path<String>,
    ApiJson(body): ApiJson<RotateCredential>,
) -> Result<Json<CredentialView>, ApiError> {
    caller.require(Permission::Write)?;
    let mut c = visible(&state, &caller, &alias).await?;
    let secret = CredentialSecret::from_raw(c.kind, body.data)?;
    let sealed = seal(&state, &c, &secret, c.version + 1);
    let at = now();
    state
        .store()
        .rotate_credential(&c.tenant_id, &c.id, c.version, &sealed, at)
        .await?;
    state.lookups().forget_credential(&c.tenant_id, &c.alias);
    c.version += 1;
    c.updated_at = at;
    tracing::info!(credential = %c.id, version = c.version, "credential rotated");
    Ok(Json(CredentialView::from(&c)))
}
