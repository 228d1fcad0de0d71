//! `/v1/keys`: API keys (admin only). The plaintext key is returned once, at creation.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiJson, AppState};
use crate::auth::Caller;
use crate::crypto::token;
use crate::domain::{ApiKeyId, Name, Permission, RoleId};
use crate::error::ApiError;
use crate::store::{ApiKeyRecord, now};

/// `POST /v1/keys` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    #[schema(value_type = String)]
    name: Name,
    role_id: String,
    expires_at: Option<DateTime<Utc>>,
}

/// The one response that shows a key.
#[derive(Serialize, ToSchema)]
pub struct CreatedKey {
    id: String,
    key: String,
    name: String,
    key_prefix: String,
}

/// A key as listed: never the key itself.
#[derive(Serialize, ToSchema)]
pub struct KeyView {
    id: String,
    name: String,
    key_prefix: String,
    role_id: String,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

/// The list of keys.
#[derive(Serialize, ToSchema)]
pub struct KeyList {
    keys: Vec<KeyView>,
    next_cursor: Option<String>,
}

/// Creates a key bound to a role.
#[utoipa::path(post, path = "/v1/keys", request_body = CreateKey,
    responses((status = 201, body = CreatedKey), (status = 400), (status = 404)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    caller.require(Permission::Admin)?;
    let role_id = RoleId::parse(&body.role_id).map_err(|_| ApiError::NotFound("role not found".into()))?;
    if body.expires_at.is_some_and(|t| t <= Utc::now()) {
        return Err(ApiError::InvalidRequest("expires_at must be in the future".into()));
    }
    let generated = token::generate();
    let record = ApiKeyRecord {
        id: ApiKeyId::generate(),
        tenant_id: caller.tenant_id.clone(),
        name: body.name,
        key_prefix: generated.prefix.clone(),
        key_hash: generated.hash,
        role_id,
        expires_at: body.expires_at,
        last_used_at: None,
        revoked_at: None,
        created_at: now(),
    };
    state.store().create_api_key(&record).await?;
    tracing::info!(key = %record.id, prefix = %record.key_prefix, "API key created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            id: record.id.to_string(),
            key: generated.plaintext.expose_secret().to_owned(),
            name: record.name.as_str().to_owned(),
            key_prefix: record.key_prefix,
        }),
    ))
}

/// Lists active keys.
#[utoipa::path(get, path = "/v1/keys", responses((status = 200, body = KeyList)))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<KeyList>, ApiError> {
    caller.require(Permission::Admin)?;
    let keys = state.store().list_api_keys(&caller.tenant_id).await?;
    let keys = keys
        .into_iter()
        .map(|k| KeyView {
            id: k.id.to_string(),
            name: k.name.as_str().to_owned(),
            key_prefix: k.key_prefix,
            role_id: k.role_id.to_string(),
            expires_at: k.expires_at,
            last_used_at: k.last_used_at,
            created_at: k.created_at,
        })
        .collect();
    Ok(Json(KeyList {
        keys,
        next_cursor: None,
    }))
}

/// Revokes a key, effective immediately on this replica and within a second on the others.
#[utoipa::path(delete, path = "/v1/keys/{id}", responses((status = 204), (status = 404)))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Permission::Admin)?;
    let id = ApiKeyId::parse(&id).map_err(|_| ApiError::NotFound("API key not found".into()))?;
    state.store().revoke_api_key(&caller.tenant_id, &id, now()).await?;
    state.keys().invalidate(&id);
    tracing::info!(key = %id, "API key revoked");
    Ok(StatusCode::NO_CONTENT)
}
