//! Who is calling: API-key authentication, project request signatures ([`signature`]), the verification cache and the [`Caller`]
//! extractor. A handler that takes a `Caller` cannot run unauthenticated.
//!
//! Must not decide what a caller may do with a resource beyond permissions and scopes; that
//! belongs to the handlers and the proxy pipeline.

mod cache;
pub mod signature;

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use secrecy::{ExposeSecret as _, SecretString};

pub use cache::KeyCache;

use crate::api::AppState;
use crate::domain::{ApiKeyId, Permission, TenantId};
use crate::error::ApiError;
use crate::store::KeyGrant;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: ApiKeyId,
    pub tenant_id: TenantId,
    /// The key's grant (role, tenant status) as verified.
    pub grant: Arc<KeyGrant>,
    /// The token as presented, kept to recognise (and strip) it in forwarded headers.
    pub token: Arc<SecretString>,
}

impl Caller {
    /// Requires a permission (403 `Missing required permission: <p>` otherwise).
    pub fn require(&self, p: Permission) -> Result<(), ApiError> {
        if self.grant.role.permissions.grants(p) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "Missing required permission: {}",
                p.as_str()
            )))
        }
    }

    /// Requires a credential alias to be within the caller's `credential_scopes`.
    pub fn require_scope(&self, alias: &str) -> Result<(), ApiError> {
        if self.grant.role.credential_scopes.allows(alias) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "credential is outside this API key's credential_scopes".into(),
            ))
        }
    }

    /// Whether the caller may see a credential at all (for filtering lists).
    pub fn sees(&self, alias: &str) -> bool {
        self.grant.role.credential_scopes.allows(alias)
    }
}

/// Extracts the presented token: `Authorization: Bearer …` or `X-Keystile-Token: …`.
pub fn presented_token(headers: &HeaderMap) -> Option<SecretString> {
    if let Some(v) = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        if let Some((scheme, rest)) = v.split_once(' ')
            && scheme.eq_ignore_ascii_case("bearer")
            && !rest.trim().is_empty()
        {
            return Some(SecretString::from(rest.trim().to_owned()));
        }
    }
    headers
        .get("x-keystile-token")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
        .map(|v| SecretString::from(v.trim().to_owned()))
}

/// A Keystile key sent as `x-api-key` (accepted on routes only).
fn route_api_key(headers: &HeaderMap) -> Option<SecretString> {
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| v.starts_with(crate::crypto::token::KEY_PREFIX))
        .map(|v| SecretString::from(v.to_owned()))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        // On routes an unmodified SDK may send its API key as `x-api-key` (Anthropic's do).
        let on_route = parts.uri.path().starts_with("/r/");
        let token = presented_token(&parts.headers)
            .or_else(|| on_route.then(|| route_api_key(&parts.headers)).flatten())
            .ok_or_else(|| ApiError::Unauthorized("missing API key: send Authorization: Bearer kst_…".into()))?;
        let grant = state.keys().verify(token.expose_secret()).await?;
        Ok(Caller {
            key_id: grant.key.id.clone(),
            tenant_id: grant.key.tenant_id.clone(),
            grant,
            token: Arc::new(token),
        })
    }
}
