//! The in-memory key verification cache.
//!
//! A presented token is hashed (SHA-256) and looked up here first; an entry is trusted for at
//! most [`FRESHNESS`], after which the store is asked again, so a revoke, expiry or tenant
//! termination made by another replica takes effect within that time. A revoke on this replica
//! invalidates the entry at once. `last_used_at` is written off the request path, at most once
//! per refresh.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::crypto::token::TokenHash;
use crate::domain::ApiKeyId;
use crate::error::ApiError;
use crate::store::{KeyGrant, Store, TenantStatus, now};

/// How long a verified key is trusted without asking the store again.
pub const FRESHNESS: Duration = Duration::from_millis(900);
/// Entries kept before stale ones are swept.
const SWEEP_AT: usize = 200_000;

struct Entry {
    grant: Arc<KeyGrant>,
    fetched: Instant,
}

/// Verifies tokens against the store through a short-lived cache.
pub struct KeyCache {
    store: Arc<dyn Store>,
    entries: RwLock<HashMap<TokenHash, Entry>>,
}

impl KeyCache {
    /// A cache in front of `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// Verifies a presented token and returns what it grants.
    pub async fn verify(&self, token: &str) -> Result<Arc<KeyGrant>, ApiError> {
        self.verify_detailed(token).await.map_err(|(e, _)| e)
    }

    /// [`verify`](Self::verify), also returning on failure the grant of a key that exists but
    /// may not be used (revoked, expired, terminated tenant), so the failure can be audited
    /// in the key's tenant.
    pub async fn verify_detailed(&self, token: &str) -> Result<Arc<KeyGrant>, (ApiError, Option<Arc<KeyGrant>>)> {
        let hash = TokenHash::of(token);
        let cached = self.cached(&hash);
        let grant = match cached {
            Some(g) => g,
            None => self.refresh(hash).await.map_err(|e| (e, None))?,
        };
        if let Err(e) = check_grant(&grant, &hash) {
            // A hash mismatch means the key is not this one: attribute nothing to it.
            let known = grant.key.key_hash.ct_eq(&hash);
            return Err((e, known.then_some(grant)));
        }
        Ok(grant)
    }

    fn cached(&self, hash: &TokenHash) -> Option<Arc<KeyGrant>> {
        // A poisoned lock only means another thread panicked mid-insert; the map is still valid.
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(hash)
            .filter(|e| e.fetched.elapsed() < FRESHNESS)
            .map(|e| e.grant.clone())
    }

    async fn refresh(&self, hash: TokenHash) -> Result<Arc<KeyGrant>, ApiError> {
        let grant = self
            .store
            .api_key_by_hash(&hash)
            .await?
            .ok_or_else(|| ApiError::Unauthorized("invalid API key".into()))?;
        let grant = Arc::new(grant);
        if grant.key.revoked_at.is_none() {
            let store = self.store.clone();
            let id = grant.key.id.clone();
            tokio::spawn(async move {
                if let Err(e) = store.touch_api_key(&id, now()).await {
                    tracing::warn!(error = %e, "could not record last_used_at");
                }
            });
        }
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= SWEEP_AT {
            entries.retain(|_, e| e.fetched.elapsed() < FRESHNESS);
        }
        entries.insert(
            hash,
            Entry {
                grant: grant.clone(),
                fetched: Instant::now(),
            },
        );
        Ok(grant)
    }

    /// Forgets every key of a tenant at once (after its plan or status changed on this replica).
    pub fn invalidate_tenant(&self, tenant: &crate::domain::TenantId) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, e| &e.grant.key.tenant_id != tenant);
    }

    /// Forgets a key at once (after a revoke on this replica).
    pub fn invalidate(&self, id: &ApiKeyId) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, e| &e.grant.key.id != id);
    }
}

fn check_grant(grant: &KeyGrant, presented: &TokenHash) -> Result<(), ApiError> {
    // The lookup was by hash; compare again in constant time so no code path ever relies on
    // a variable-time comparison of key material.
    if !grant.key.key_hash.ct_eq(presented) {
        return Err(ApiError::Unauthorized("invalid API key".into()));
    }
    if grant.key.revoked_at.is_some() {
        return Err(ApiError::Unauthorized("API key has been revoked".into()));
    }
    if grant.key.expires_at.is_some_and(|t| t <= chrono::Utc::now()) {
        return Err(ApiError::Unauthorized("API key has expired".into()));
    }
    if grant.tenant_status == TenantStatus::Terminated {
        return Err(ApiError::AccountTerminated);
    }
    Ok(())
}
