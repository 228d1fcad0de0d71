//! The HTTP API: shared state, the router and one module per resource.
//!
//! Handlers parse input into domain types, check permissions through the `Caller` extractor
//! and call the store; they must not format error bodies themselves (see `error.rs`).

mod credentials;
mod health;
mod json;
mod keys;
pub mod openapi;
mod roles;
mod routes;
mod surfaces;

use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get, post};

pub use json::ApiJson;

use crate::auth::KeyCache;
use crate::config::ProxyConfig;
use crate::crypto::MasterKey;
use crate::error::ApiError;
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
}

impl AppState {
    /// Assembles the state.
    pub fn new(store: Arc<dyn Store>, master_key: MasterKey, outbound: Outbound, limits: ProxyConfig) -> Self {
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
            }),
        }
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

    /// Proxy limits and timeouts.
    pub fn limits(&self) -> &ProxyConfig {
        &self.inner.limits
    }
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
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
        .route("/v1/execute", post(surfaces::execute))
        .route("/v1/proxy", any(surfaces::ephemeral))
        .route("/v1/routes", post(routes::create).get(routes::list))
        .route(
            "/v1/routes/{name}",
            get(routes::show).patch(routes::update).delete(routes::remove),
        )
        .route("/r/{route}", any(surfaces::route))
        .route("/r/{route}/{*rest}", any(surfaces::route))
        .fallback(fallback)
        .with_state(state)
}

/// Anything that is not an API route: the path proxy when the path is an absolute URL.
async fn fallback(
    state: axum::extract::State<AppState>,
    req: axum::extract::Request,
) -> Result<axum::response::Response, ApiError> {
    let path = req.uri().path();
    if !(path.starts_with("/http://") || path.starts_with("/https://") || path.contains(":/")) {
        return Err(ApiError::NotFound("no such route".into()));
    }
    surfaces::path(state, req).await
}
