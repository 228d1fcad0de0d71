//! The HTTP API: shared state, the router and one module per resource.
//!
//! Handlers parse input into domain types, check permissions through the `Caller` extractor
//! and call the store; they must not format error bodies themselves (see `error.rs`).

mod audit;
mod credentials;
mod health;
mod json;
mod keys;
pub mod openapi;
mod project_secrets;
mod projects;
mod roles;
mod routes;
mod surfaces;
mod tenants;

use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get, post};

pub use json::ApiJson;

use crate::audit::AuditLog;
use crate::auth::KeyCache;
use crate::config::{ProxyConfig, PublicAddress};
use crate::crypto::MasterKey;
use crate::domain::TenantId;
use crate::error::ApiError;
use crate::limits::{Limiter, ProxyCall};
use crate::metrics::{self, Metrics};
use crate::proxy::client::Outbound;
use crate::proxy::lookup::Lookups;
use crate::store::Store;

/// Everything a request handler may use. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    master_key: MasterKey,
    keys: KeyCache,
    lookups: Arc<Lookups>,
    outbound: Outbound,
    limits: ProxyConfig,
    metrics: Metrics,
    audit: AuditLog,
    limiter: Arc<Limiter>,
    operator_tenant: TenantId,
    public: PublicAddress,
}

impl AppState {
    /// Assembles the state. `operator_tenant` is the bootstrap tenant, whose admins manage
    /// tenants; `public` is how clients address the gateway (for signed requests).
    #[allow(clippy::too_many_arguments)] // one argument per part; built in one place (server::prepare)
    pub fn new(
        store: Arc<dyn Store>,
        master_key: MasterKey,
        outbound: Outbound,
        limits: ProxyConfig,
        limiter: Arc<Limiter>,
        audit: AuditLog,
        operator_tenant: TenantId,
        public: PublicAddress,
    ) -> Self {
        let keys = KeyCache::new(store.clone());
        let lookups = Arc::new(Lookups::new(store.clone()));
        Lookups::spawn_sweeper(&lookups);
        Self {
            inner: Arc::new(Inner {
                store,
                master_key,
                keys,
                lookups,
                outbound,
                limits,
                metrics: Metrics::new().with_audit_journal_damage(audit.damaged_segments()),
                audit,
                limiter,
                operator_tenant,
                public,
            }),
        }
    }

    /// Rate limits and quotas.
    pub fn limiter(&self) -> &Arc<Limiter> {
        &self.inner.limiter
    }

    /// The bootstrap tenant, whose admins are the operators.
    pub fn operator_tenant(&self) -> &TenantId {
        &self.inner.operator_tenant
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The master key.
    pub fn master_key(&self) -> &MasterKey {
        &self.inner.master_key
    }

    /// The key verification cache.
    pub fn keys(&self) -> &KeyCache {
        &self.inner.keys
    }

    /// The pipeline's credential and route lookups (cached; forget after a change).
    pub fn lookups(&self) -> &Lookups {
        &self.inner.lookups
    }

    /// The outbound client.
    pub fn outbound(&self) -> &Outbound {
        &self.inner.outbound
    }

    /// The metric families.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Proxy limits and timeouts.
    pub fn limits(&self) -> &ProxyConfig {
        &self.inner.limits
    }

    /// The audit trail's group-commit writer (its `queue_depth()` is a metric).
    pub fn audit(&self) -> &AuditLog {
        &self.inner.audit
    }

    /// How clients address the gateway (for signed requests).
    pub fn public_address(&self) -> &PublicAddress {
        &self.inner.public
    }
}

/// The whole HTTP surface. Every response to an authenticated caller carries the
/// `X-RateLimit-*` headers (the middleware); proxy surfaces are marked [`ProxyCall`] so their
/// calls draw on the key's proxy budget, everything else on its management budget.
pub fn router(state: AppState) -> Router {
    let proxy = axum::Extension(ProxyCall);
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/metrics", get(metrics::serve))
        .route("/openapi.json", get(openapi::serve))
        .route("/v1/credentials", post(credentials::create).get(credentials::list))
        .route(
            "/v1/credentials/{alias}",
            get(credentials::show)
                .patch(credentials::update)
                .delete(credentials::remove),
        )
        .route("/v1/credentials/{alias}/freeze", post(credentials::freeze))
        .route("/v1/credentials/{alias}/unfreeze", post(credentials::unfreeze))
        .route("/v1/credentials/{alias}/rotate", post(credentials::rotate))
        .route("/v1/roles", post(roles::create).get(roles::list))
        .route("/v1/roles/{id}", get(roles::show).delete(roles::remove))
        .route("/v1/keys", post(keys::create).get(keys::list))
        .route("/v1/keys/{id}", axum::routing::delete(keys::revoke))
        .route("/v1/execute", post(surfaces::execute).layer(proxy))
        .route("/v1/proxy", any(surfaces::ephemeral).layer(proxy))
        .route("/v1/routes", post(routes::create).get(routes::list))
        .route(
            "/v1/routes/{name}",
            get(routes::show).patch(routes::update).delete(routes::remove),
        )
        .route("/v1/projects", post(projects::create).get(projects::list))
        .route("/v1/projects/{id}", axum::routing::delete(projects::remove))
        .route("/v1/projects/{id}/rotate", axum::routing::put(projects::rotate))
        .route(
            "/v1/projects/{id}/secrets",
            axum::routing::put(projects::put_secret).get(projects::list_secrets),
        )
        .route("/v1/secrets", get(project_secrets::fetch).put(project_secrets::write))
        .route("/v1/secrets/{id}", axum::routing::delete(projects::delete_secret))
        .route("/v1/audit", get(audit::list))
        .route("/v1/audit/verify", get(audit::verify))
        .route("/v1/tenants", post(tenants::create).get(tenants::list))
        .route("/v1/tenants/{id}", get(tenants::show).patch(tenants::update))
        .route("/v1/tenants/{id}/terminate", post(tenants::terminate))
        .route("/r/{route}", any(surfaces::route).layer(proxy))
        .route("/r/{route}/{*rest}", any(surfaces::route).layer(proxy))
        // Keep last among the routes: it covers every route registered above it.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::audit::hooks::admin_changes,
        ))
        .fallback(fallback)
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(axum::middleware::from_fn(crate::limits::rate_limit_headers))
        .with_state(state)
}

/// Anything that is not an API route: the path proxy when the path is an absolute URL.
async fn fallback(
    state: axum::extract::State<AppState>,
    req: axum::extract::Request,
) -> Result<axum::response::Response, ApiError> {
    if !is_path_proxy(req.uri().path()) {
        return Err(ApiError::NotFound("no such route".into()));
    }
    surfaces::path(state, req).await
}

/// Whether a request path is a path-proxy target (`/{absolute-url}`).
pub fn is_path_proxy(path: &str) -> bool {
    path.starts_with("/http://") || path.starts_with("/https://") || path.contains(":/")
}
