//! `GET /openapi.json`, generated from the handlers' annotations (never hand-written).

use axum::Json;
use utoipa::OpenApi;

use super::{audit, credentials, health, keys, project_secrets, projects, roles, routes, surfaces, tenants};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Keystile", description = "Self-hosted credential gateway"),
    paths(
        health::health,
        health::ready,
        credentials::create,
        credentials::list,
        credentials::show,
        credentials::update,
        credentials::remove,
        credentials::freeze,
        credentials::unfreeze,
        credentials::rotate,
        roles::create,
        roles::list,
        roles::show,
        roles::remove,
        keys::create,
        keys::list,
        keys::revoke,
        surfaces::execute,
        routes::create,
        routes::list,
        routes::show,
        routes::update,
        routes::remove,
        audit::list,
        audit::verify,
        tenants::create,
        tenants::list,
        tenants::show,
        tenants::update,
        tenants::terminate,
        projects::create,
        projects::list,
        projects::remove,
        projects::rotate,
        projects::put_secret,
        projects::list_secrets,
        projects::delete_secret,
        project_secrets::fetch,
        project_secrets::write,
    ),
    components(schemas(
        credentials::CreateCredential,
        credentials::UpdateCredential,
        credentials::RotateCredential,
        credentials::CredentialView,
        credentials::CredentialList,
        roles::CreateRole,
        roles::RoleView,
        roles::RoleList,
        keys::CreateKey,
        keys::CreatedKey,
        keys::KeyView,
        keys::KeyList,
        surfaces::ExecuteRequest,
        surfaces::ExecuteParams,
        routes::CreateRoute,
        routes::UpdateRoute,
        routes::RouteView,
        routes::RouteList,
        audit::AuditList,
        crate::audit::AuditView,
        crate::audit::event::ActorView,
        crate::audit::Verification,
        tenants::CreateTenant,
        tenants::UpdateTenant,
        tenants::UsageView,
        tenants::TenantView,
        tenants::AdminKey,
        tenants::CreatedTenant,
        tenants::TenantList,
        projects::CreateProject,
        projects::ProjectView,
        projects::ProjectList,
        projects::PutSecret,
        projects::SecretView,
        projects::SecretList,
        project_secrets::SecretValues,
    ))
)]
pub struct ApiDoc;

/// Serves the document.
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
