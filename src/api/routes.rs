//! `/v1/routes`: pre-registered upstreams (SPEC S5.4). The forwarding itself lives in
//! `surfaces::route`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiJson, AppState};
use crate::auth::Caller;
use crate::domain::{Alias, Permission, RouteId, RouteSpec};
use crate::error::ApiError;
use crate::store::{RouteRecord, now};

/// `POST /v1/routes` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRoute {
    #[schema(value_type = String, example = "openai")]
    name: Alias,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    spec: RouteSpec,
}

/// `PATCH /v1/routes/{name}` body: any field of the spec.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRoute {
    #[schema(value_type = Option<String>)]
    base_url: Option<url::Url>,
    #[schema(value_type = Option<String>)]
    credential: Option<Alias>,
    #[schema(value_type = Option<Vec<String>>)]
    allowed_methods: Option<Vec<String>>,
    #[schema(value_type = Option<Vec<String>>)]
    allowed_paths: Option<Vec<crate::domain::glob::Glob>>,
    follow_redirects: Option<bool>,
    timeout_ms: Option<u64>,
}

/// A route as shown.
#[derive(Serialize, ToSchema)]
pub struct RouteView {
    id: String,
    name: String,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    spec: RouteSpec,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<&RouteRecord> for RouteView {
    fn from(r: &RouteRecord) -> Self {
        Self {
            id: r.id.to_string(),
            name: r.name.to_string(),
            spec: r.spec.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// The list of routes.
#[derive(Serialize, ToSchema)]
pub struct RouteList {
    routes: Vec<RouteView>,
    next_cursor: Option<String>,
}

/// The route's credential must exist and be within the caller's scopes.
async fn check_credential(state: &AppState, caller: &Caller, alias: &Alias) -> Result<(), ApiError> {
    caller.require_scope(alias.as_str())?;
    state.store().credential(&caller.tenant_id, alias).await?;
    Ok(())
}

fn parse_name(name: &str) -> Result<Alias, ApiError> {
    Alias::parse(name).map_err(|_| ApiError::NotFound("route not found".into()))
}

/// Creates a route.
#[utoipa::path(post, path = "/v1/routes", request_body = CreateRoute,
    responses((status = 201, body = RouteView), (status = 400), (status = 404), (status = 409)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateRoute>,
) -> Result<(StatusCode, Json<RouteView>), ApiError> {
    caller.require(Permission::Write)?;
    body.spec.validate()?;
    check_credential(&state, &caller, &body.spec.credential).await?;
    let at = now();
    let route = RouteRecord {
        id: RouteId::generate(),
        tenant_id: caller.tenant_id.clone(),
        name: body.name,
        spec: body.spec,
        created_at: at,
        updated_at: at,
    };
    state.store().create_route(&route).await?;
    tracing::info!(route = %route.id, name = %route.name, "route created");
    Ok((StatusCode::CREATED, Json(RouteView::from(&route))))
}

/// Lists routes.
#[utoipa::path(get, path = "/v1/routes", responses((status = 200, body = RouteList)))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<RouteList>, ApiError> {
    caller.require(Permission::Read)?;
    let routes = state.store().list_routes(&caller.tenant_id).await?;
    let routes = routes
        .iter()
        .filter(|r| caller.sees(r.spec.credential.as_str()))
        .map(RouteView::from)
        .collect();
    Ok(Json(RouteList {
        routes,
        next_cursor: None,
    }))
}

/// Shows a route.
#[utoipa::path(get, path = "/v1/routes/{name}", responses((status = 200, body = RouteView), (status = 404)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<RouteView>, ApiError> {
    caller.require(Permission::Read)?;
    let route = state.store().route(&caller.tenant_id, &parse_name(&name)?).await?;
    caller.require_scope(route.spec.credential.as_str())?;
    Ok(Json(RouteView::from(&route)))
}

/// Updates a route.
#[utoipa::path(patch, path = "/v1/routes/{name}", request_body = UpdateRoute,
    responses((status = 200, body = RouteView), (status = 400), (status = 404)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<UpdateRoute>,
) -> Result<Json<RouteView>, ApiError> {
    caller.require(Permission::Write)?;
    let mut route = state.store().route(&caller.tenant_id, &parse_name(&name)?).await?;
    caller.require_scope(route.spec.credential.as_str())?;
    let mut spec = serde_json::to_value(&route.spec).map_err(ApiError::internal)?;
    let patch = serde_json::json!({
        "base_url": body.base_url, "credential": body.credential, "allowed_methods": body.allowed_methods,
        "allowed_paths": body.allowed_paths, "follow_redirects": body.follow_redirects, "timeout_ms": body.timeout_ms,
    });
    for (k, v) in patch.as_object().into_iter().flatten() {
        if !v.is_null() {
            spec[k] = v.clone();
        }
    }
    route.spec = serde_json::from_value(spec).map_err(|e| ApiError::InvalidRequest(format!("invalid route: {e}")))?;
    route.spec.validate()?;
    check_credential(&state, &caller, &route.spec.credential).await?;
    route.updated_at = now();
    state.store().update_route(&route).await?;
    state.lookups().forget_route(&route.tenant_id, &route.name);
    Ok(Json(RouteView::from(&route)))
}

/// Deletes a route.
#[utoipa::path(delete, path = "/v1/routes/{name}", responses((status = 204), (status = 404)))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Permission::Delete)?;
    let name = parse_name(&name)?;
    let route = state.store().route(&caller.tenant_id, &name).await?;
    caller.require_scope(route.spec.credential.as_str())?;
    state.store().delete_route(&caller.tenant_id, &name).await?;
    state.lookups().forget_route(&caller.tenant_id, &name);
    Ok(StatusCode::NO_CONTENT)
}
