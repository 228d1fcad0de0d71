//! `/v1/roles`: permissions and credential scopes (admin only).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiJson, AppState};
use crate::auth::Caller;
use crate::domain::glob::Glob;
use crate::domain::{Name, Permission, Permissions, RoleId, Scopes};
use crate::error::ApiError;
use crate::store::{RoleRecord, now};

/// `POST /v1/roles` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRole {
    #[schema(value_type = String)]
    name: Name,
    description: Option<String>,
    #[schema(value_type = Vec<String>, example = json!(["read", "execute"]))]
    permissions: Vec<Permission>,
    #[serde(default)]
    #[schema(value_type = Vec<String>, example = json!(["github-*"]))]
    credential_scopes: Vec<Glob>,
}

/// A role as shown.
#[derive(Serialize, ToSchema)]
pub struct RoleView {
    id: String,
    name: String,
    description: Option<String>,
    #[schema(value_type = Vec<String>)]
    permissions: Permissions,
    #[schema(value_type = Vec<String>)]
    credential_scopes: Scopes,
    created_at: DateTime<Utc>,
}

impl From<&RoleRecord> for RoleView {
    fn from(r: &RoleRecord) -> Self {
        Self {
            id: r.id.to_string(),
            name: r.name.as_str().to_owned(),
            description: r.description.clone(),
            permissions: r.permissions.clone(),
            credential_scopes: r.credential_scopes.clone(),
            created_at: r.created_at,
        }
    }
}

/// The list of roles.
#[derive(Serialize, ToSchema)]
pub struct RoleList {
    roles: Vec<RoleView>,
    next_cursor: Option<String>,
}

/// Creates a role.
#[utoipa::path(post, path = "/v1/roles", request_body = CreateRole,
    responses((status = 201, description = "{id, name}"), (status = 400), (status = 403), (status = 409)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateRole>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    caller.require(Permission::Admin)?;
    if body.permissions.is_empty() {
        return Err(ApiError::InvalidRequest("permissions must not be empty".into()));
    }
    if body.description.as_ref().is_some_and(|d| d.chars().count() > 1024) {
        return Err(ApiError::InvalidRequest(
            "description must be at most 1024 characters".into(),
        ));
    }
    let role = RoleRecord {
        id: RoleId::generate(),
        tenant_id: caller.tenant_id.clone(),
        name: body.name,
        description: body.description,
        permissions: Permissions::new(body.permissions),
        credential_scopes: Scopes::new(body.credential_scopes),
        created_at: now(),
    };
    state.store().create_role(&role).await?;
    tracing::info!(role = %role.id, "role created");
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"id": role.id, "name": role.name})),
    ))
}

/// Lists roles.
#[utoipa::path(get, path = "/v1/roles", responses((status = 200, body = RoleList)))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<RoleList>, ApiError> {
    caller.require(Permission::Admin)?;
    let roles = state.store().list_roles(&caller.tenant_id).await?;
    Ok(Json(RoleList {
        roles: roles.iter().map(RoleView::from).collect(),
        next_cursor: None,
    }))
}

/// Shows a role.
#[utoipa::path(get, path = "/v1/roles/{id}", responses((status = 200, body = RoleView), (status = 404)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RoleView>, ApiError> {
    caller.require(Permission::Admin)?;
    let id = RoleId::parse(&id).map_err(|_| ApiError::NotFound("role not found".into()))?;
    let role = state.store().role(&caller.tenant_id, &id).await?;
    Ok(Json(RoleView::from(&role)))
}

/// Deletes a role no active key uses.
#[utoipa::path(delete, path = "/v1/roles/{id}", responses((status = 204), (status = 404), (status = 409)))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Permission::Admin)?;
    let id = RoleId::parse(&id).map_err(|_| ApiError::NotFound("role not found".into()))?;
    state.store().delete_role(&caller.tenant_id, &id).await?;
    tracing::info!(role = %id, "role deleted");
    Ok(StatusCode::NO_CONTENT)
}
