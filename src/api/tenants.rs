//! `/v1/tenants`: the operator API. The operator is an `admin` key of the bootstrap tenant
//! (`default`); every other caller gets 403. Creating a tenant creates its `admin` role and
//! first admin key (shown once); terminating one keeps its data and makes its keys answer
//! 403 `account_terminated` (at once on this replica, within a second on the others).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiJson, AppState};
use crate::auth::Caller;
use crate::crypto::token;
use crate::domain::{Alias, ApiKeyId, Name, Permission, Plan, TenantId};
use crate::error::ApiError;
use crate::store::{ApiKeyRecord, TenantRecord, TenantStatus, now};

const MAX_PAGE: u32 = 200;

/// `POST /v1/tenants` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// 1–64 characters of `[A-Za-z0-9._-]`.
    #[schema(value_type = String, example = "acme")]
    name: Alias,
    /// `{"disabled_surfaces"?, "operations_per_month"?, "requests_per_second"?,
    /// "template_expressions_per_request"?}`; omitted: everything enabled, no quota.
    #[schema(value_type = Option<Object>)]
    plan: Option<Plan>,
}

/// `PATCH /v1/tenants/{id}` body: the new plan (replaces the old one).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    #[schema(value_type = Object)]
    plan: Plan,
}

/// This month's usage.
#[derive(Serialize, ToSchema)]
pub struct UsageView {
    /// `YYYY-MM` (UTC).
    period: String,
    /// Proxied operations counted so far this month.
    operations: u64,
}

/// A tenant as the operator sees it.
#[derive(Serialize, ToSchema)]
pub struct TenantView {
    id: String,
    name: String,
    /// `active` or `terminated`.
    status: String,
    #[schema(value_type = Object)]
    plan: Plan,
    created_at: DateTime<Utc>,
    /// Only on `GET /v1/tenants/{id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<UsageView>,
}

impl From<&TenantRecord> for TenantView {
    fn from(t: &TenantRecord) -> Self {
        Self {
            id: t.id.to_string(),
            name: t.name.clone(),
            status: t.status.as_str().to_owned(),
            plan: t.plan.clone(),
            created_at: t.created_at,
            usage: None,
        }
    }
}

/// The new tenant's first admin key: the only time `key` is shown.
#[derive(Serialize, ToSchema)]
pub struct AdminKey {
    id: String,
    key: String,
    key_prefix: String,
    role_id: String,
}

/// `POST /v1/tenants` answer.
#[derive(Serialize, ToSchema)]
pub struct CreatedTenant {
    #[serde(flatten)]
    tenant: TenantView,
    admin_key: AdminKey,
}

/// A page of tenants, by name.
#[derive(Serialize, ToSchema)]
pub struct TenantList {
    tenants: Vec<TenantView>,
    next_cursor: Option<String>,
}

/// List query: page size and cursor (the last name of the previous page).
#[derive(Deserialize, utoipa::IntoParams)]
pub struct TenantListQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// Only an admin of the bootstrap tenant manages tenants.
fn require_operator(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    caller.require(Permission::Admin)?;
    if &caller.tenant_id != state.operator_tenant() {
        return Err(ApiError::Forbidden(
            "only the operator (an admin of the default tenant) may manage tenants".into(),
        ));
    }
    Ok(())
}

fn tenant_id(raw: &str) -> Result<TenantId, ApiError> {
    TenantId::parse(raw).map_err(|_| ApiError::NotFound("tenant not found".into()))
}

/// Creates a tenant with an `admin` role and its first admin key.
#[utoipa::path(post, path = "/v1/tenants", request_body = CreateTenant,
    responses((status = 201, body = CreatedTenant), (status = 400), (status = 403), (status = 409)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateTenant>,
) -> Result<(StatusCode, Json<CreatedTenant>), ApiError> {
    require_operator(&state, &caller)?;
    let plan = body.plan.unwrap_or_default();
    plan.validate()?;
    let tenant = TenantRecord {
        id: TenantId::generate(),
        name: body.name.to_string(),
        status: TenantStatus::Active,
        plan,
        created_at: now(),
    };
    let role = crate::server::admin_role_record(&tenant.id).map_err(ApiError::internal)?;
    let generated = token::generate();
    let key = ApiKeyRecord {
        id: ApiKeyId::generate(),
        tenant_id: tenant.id.clone(),
        name: Name::parse("first admin")?,
        key_prefix: generated.prefix.clone(),
        key_hash: generated.hash,
        role_id: role.id.clone(),
        expires_at: None,
        last_used_at: None,
        revoked_at: None,
        created_at: now(),
    };
    state.store().create_tenant(&tenant, &role, &key).await?;
    tracing::info!(tenant = %tenant.id, name = %tenant.name, key = %key.id, "tenant created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedTenant {
            tenant: TenantView::from(&tenant),
            admin_key: AdminKey {
                id: key.id.to_string(),
                key: generated.plaintext.expose_secret().to_owned(),
                key_prefix: key.key_prefix,
                role_id: role.id.to_string(),
            },
        }),
    ))
}

/// Lists tenants by name.
#[utoipa::path(get, path = "/v1/tenants", params(TenantListQuery),
    responses((status = 200, body = TenantList), (status = 403)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<TenantListQuery>, QueryRejection>,
) -> Result<Json<TenantList>, ApiError> {
    require_operator(&state, &caller)?;
    let Query(q) = query.map_err(|_| ApiError::InvalidRequest("limit must be a number".into()))?;
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let page = state.store().list_tenants(q.cursor.as_deref(), limit).await?;
    let next_cursor = (page.len() == limit as usize)
        .then(|| page.last().map(|t| t.name.clone()))
        .flatten();
    Ok(Json(TenantList {
        tenants: page.iter().map(TenantView::from).collect(),
        next_cursor,
    }))
}

/// One tenant, with this month's usage.
#[utoipa::path(get, path = "/v1/tenants/{id}",
    responses((status = 200, body = TenantView), (status = 403), (status = 404)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TenantView>, ApiError> {
    require_operator(&state, &caller)?;
    let tenant = state.store().tenant(&tenant_id(&id)?).await?;
    Ok(Json(with_usage(&state, &tenant).await?))
}

/// Replaces a tenant's plan; its keys see the new plan at once on this replica and within a
/// second on the others.
#[utoipa::path(patch, path = "/v1/tenants/{id}", request_body = UpdateTenant,
    responses((status = 200, body = TenantView), (status = 400), (status = 403), (status = 404)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateTenant>,
) -> Result<Json<TenantView>, ApiError> {
    require_operator(&state, &caller)?;
    let id = tenant_id(&id)?;
    body.plan.validate()?;
    state.store().set_tenant_plan(&id, &body.plan).await?;
    state.keys().invalidate_tenant(&id);
    tracing::info!(tenant = %id, "tenant plan changed");
    let tenant = state.store().tenant(&id).await?;
    Ok(Json(with_usage(&state, &tenant).await?))
}

/// Terminates a tenant: its data is kept, its keys get 403 `account_terminated`. The
/// operator's own tenant cannot be terminated (409).
#[utoipa::path(post, path = "/v1/tenants/{id}/terminate",
    responses((status = 200, body = TenantView), (status = 403), (status = 404), (status = 409)))]
pub async fn terminate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TenantView>, ApiError> {
    require_operator(&state, &caller)?;
    let id = tenant_id(&id)?;
    if &id == state.operator_tenant() {
        return Err(ApiError::Conflict(
            "the operator's own tenant cannot be terminated".into(),
        ));
    }
    state.store().set_tenant_status(&id, TenantStatus::Terminated).await?;
    state.keys().invalidate_tenant(&id);
    tracing::info!(tenant = %id, "tenant terminated");
    let tenant = state.store().tenant(&id).await?;
    Ok(Json(TenantView::from(&tenant)))
}

async fn with_usage(state: &AppState, tenant: &TenantRecord) -> Result<TenantView, ApiError> {
    let now_ms = state.limiter().clock().now_ms();
    let operations = state.limiter().usage().current(&tenant.id, now_ms).await?;
    let mut view = TenantView::from(tenant);
    view.usage = Some(UsageView {
        period: crate::limits::usage::period_of(now_ms),
        operations,
    });
    Ok(view)
}
