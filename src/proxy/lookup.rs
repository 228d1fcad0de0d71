//! Short-lived caches of what the pipeline looks up on every proxied request: credentials by
//! alias and routes by name (SPEC S14: no database round trip per request).
//!
//! An entry is trusted for at most [`FRESHNESS`] (like the key cache), so a change made through
//! another replica takes effect here within that time. A change made through this replica
//! forgets the entry at once: the API handlers call [`Lookups::forget_credential`] /
//! [`Lookups::forget_route`] right after the store write, so the very next request sees it.
//!
//! A cached credential also carries, once a request has needed it, its decrypted injection and
//! the redactor built from its secret values ([`Decrypted`]): building the redactor's automaton
//! was three quarters of the instructions of a proxied request. That material lives exactly as
//! long as the entry: it goes with it when the entry is forgotten or swept
//! ([`Lookups::sweep`], run every [`FRESHNESS`] by [`Lookups::spawn_sweeper`]), so a plaintext
//! secret stays in memory at most about two freshness periods after its last use, and never
//! after a change on this replica. A refresh that reads back a record identical to the stale
//! entry's (same version, sealed data, injection, everything) carries the material over to the
//! new entry instead of decrypting and compiling it again every [`FRESHNESS`]; any difference
//! derives it anew. It is never logged (no `Debug` in the clear).
//!
//! Must not cache a failed lookup (a credential created elsewhere must become usable at once),
//! and must not let a lookup that raced an invalidation put the old record back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock, Weak};
use std::time::{Duration, Instant};

use super::redact::Redactor;
use crate::domain::credential::Injected;
use crate::domain::{Alias, TenantId};
use crate::store::{CredentialRecord, RouteRecord, Store, StoreResult};

/// How long a looked-up record is trusted without asking the store again.
pub const FRESHNESS: Duration = Duration::from_millis(900);
/// Entries per tenant kept before stale ones are swept.
const SWEEP_AT: usize = 200_000;

/// What a request needs of a credential's secret: the injection and the redactor for echoes.
pub struct Decrypted {
    pub injected: Injected,
    pub redactor: Redactor,
}

impl std::fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Decrypted([REDACTED])")
    }
}

/// A credential as the pipeline uses it: the stored record and, once derived, its decrypted
/// material (tied to this exact record, so to its version, injection rule and status).
#[derive(Debug)]
pub struct CachedCredential {
    pub record: CredentialRecord,
    decrypted: OnceLock<Arc<Decrypted>>,
}

impl CachedCredential {
    /// The decrypted material, derived by `derive` on first use and kept with this record.
    pub fn decrypted<E>(
        &self,
        derive: impl FnOnce(&CredentialRecord) -> Result<Decrypted, E>,
    ) -> Result<Arc<Decrypted>, E> {
        if let Some(d) = self.decrypted.get() {
            return Ok(d.clone());
        }
        let d = Arc::new(derive(&self.record)?);
        // Two requests may race to derive; both results are equal, the first one is kept.
        Ok(self.decrypted.get_or_init(|| d).clone())
    }
}

struct Entry<T> {
    value: Arc<T>,
    fetched: Instant,
}

/// One cache: tenant → name → entry. Nested maps so that a hit borrows the caller's ids and
/// allocates nothing.
struct Table<T> {
    map: RwLock<HashMap<TenantId, HashMap<Alias, Entry<T>>>>,
    /// Bumped by every invalidation; a lookup that started before a bump does not insert.
    generation: AtomicU64,
}

impl<T> Table<T> {
    fn new() -> Self {
        Self {
            map: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }

    fn fresh(&self, tenant: &TenantId, name: &Alias, freshness: Duration) -> Option<Arc<T>> {
        // A poisoned lock only means another thread panicked mid-insert; the map is still valid.
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        map.get(tenant)?
            .get(name)
            .filter(|e| e.fetched.elapsed() < freshness)
            .map(|e| e.value.clone())
    }

    /// The entry for `name`, fresh or not (until it is swept).
    fn any(&self, tenant: &TenantId, name: &Alias) -> Option<Arc<T>> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        map.get(tenant)?.get(name).map(|e| e.value.clone())
    }

    fn insert(&self, tenant: &TenantId, name: &Alias, value: Arc<T>, started_at: u64, freshness: Duration) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        // Checked under the write lock, which every invalidation also takes: no bump can slip
        // between this check and the insert.
        if self.generation.load(Ordering::Acquire) != started_at {
            return;
        }
        let names = map.entry(tenant.clone()).or_default();
        if names.len() >= SWEEP_AT {
            names.retain(|_, e| e.fetched.elapsed() < freshness);
        }
        names.insert(
            name.clone(),
            Entry {
                value,
                fetched: Instant::now(),
            },
        );
    }

    fn sweep(&self, freshness: Duration) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, names| {
            names.retain(|_, e| e.fetched.elapsed() < freshness);
            !names.is_empty()
        });
    }

    fn forget(&self, tenant: &TenantId, name: &Alias) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(names) = map.get_mut(tenant) {
            names.remove(name);
        }
    }
}

/// The pipeline's lookups, served from memory while fresh.
pub struct Lookups {
    store: Arc<dyn Store>,
    freshness: Duration,
    credentials: Table<CachedCredential>,
    routes: Table<RouteRecord>,
}

impl Lookups {
    /// Caches in front of `store`, trusting entries for [`FRESHNESS`].
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self::with_freshness(store, FRESHNESS)
    }

    /// Caches trusting entries for `freshness` (tests use long and zero bounds).
    pub fn with_freshness(store: Arc<dyn Store>, freshness: Duration) -> Self {
        Self {
            store,
            freshness,
            credentials: Table::new(),
            routes: Table::new(),
        }
    }

    /// A credential by alias (frozen ones too: the caller decides what that means).
    pub async fn credential(&self, tenant: &TenantId, alias: &Alias) -> StoreResult<Arc<CachedCredential>> {
        if let Some(c) = self.credentials.fresh(tenant, alias, self.freshness) {
            return Ok(c);
        }
        let started_at = self.credentials.generation.load(Ordering::Acquire);
        let record = self.store.credential(tenant, alias).await?;
        // Unchanged since the entry this one replaces: its decrypted material is still exact.
        let decrypted = OnceLock::new();
        if let Some(stale) = self.credentials.any(tenant, alias)
            && stale.record == record
            && let Some(d) = stale.decrypted.get()
        {
            let _ = decrypted.set(d.clone());
        }
        let c = Arc::new(CachedCredential { record, decrypted });
        self.credentials
            .insert(tenant, alias, c.clone(), started_at, self.freshness);
        Ok(c)
    }

    /// A route by name.
    pub async fn route(&self, tenant: &TenantId, name: &Alias) -> StoreResult<Arc<RouteRecord>> {
        if let Some(r) = self.routes.fresh(tenant, name, self.freshness) {
            return Ok(r);
        }
        let started_at = self.routes.generation.load(Ordering::Acquire);
        let r = Arc::new(self.store.route(tenant, name).await?);
        self.routes.insert(tenant, name, r.clone(), started_at, self.freshness);
        Ok(r)
    }

    /// Forgets a credential at once (after an update, rotate, freeze, unfreeze or delete on
    /// this replica).
    pub fn forget_credential(&self, tenant: &TenantId, alias: &Alias) {
        self.credentials.forget(tenant, alias);
    }

    /// Forgets a route at once (after an update or delete on this replica).
    pub fn forget_route(&self, tenant: &TenantId, name: &Alias) {
        self.routes.forget(tenant, name);
    }

    /// Drops every entry past the freshness bound, with any decrypted material it carries.
    pub fn sweep(&self) {
        self.credentials.sweep(self.freshness);
        self.routes.sweep(self.freshness);
    }

    /// Sweeps every [`FRESHNESS`] (at least) on the current Tokio runtime until the lookups are
    /// dropped; does nothing outside a runtime.
    pub fn spawn_sweeper(lookups: &Arc<Lookups>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak: Weak<Lookups> = Arc::downgrade(lookups);
        let period = lookups.freshness.max(FRESHNESS);
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match weak.upgrade() {
                    Some(l) => l.sweep(),
                    None => break,
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Sealed;
    use crate::domain::{CredentialId, CredentialKind, RouteId};
    use crate::store::sqlite::SqliteStore;
    use crate::store::{CredentialStatus, StoreError, now};

    async fn store() -> (Arc<dyn Store>, TenantId, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("k.db")).await.unwrap();
        let tenant = store.ensure_tenant("t").await.unwrap().id;
        (Arc::new(store), tenant, dir)
    }

    fn alias(s: &str) -> Alias {
        Alias::parse(s).unwrap()
    }

    async fn create_credential(store: &dyn Store, tenant: &TenantId, name: &str) -> CredentialRecord {
        let c = CredentialRecord {
            id: CredentialId::generate(),
            tenant_id: tenant.clone(),
            alias: alias(name),
            kind: CredentialKind::ApiKey,
            status: CredentialStatus::Active,
            version: 1,
            inject: None,
            policy: serde_json::from_value(serde_json::json!({"allowed_hosts": ["api.example.com"]})).unwrap(),
            description: None,
            metadata: serde_json::Map::new(),
            sealed: Sealed {
                wrapped_key: vec![1; 40],
                ciphertext: vec![2; 40],
            },
            created_at: now(),
            updated_at: now(),
        };
        store.create_credential(&c).await.unwrap();
        c
    }

    async fn create_route(store: &dyn Store, tenant: &TenantId, name: &str, credential: &str) -> RouteRecord {
        let r = RouteRecord {
            id: RouteId::generate(),
            tenant_id: tenant.clone(),
            name: alias(name),
            spec: serde_json::from_value(
                serde_json::json!({"base_url": "https://api.example.com/v1", "credential": credential}),
            )
            .unwrap(),
            created_at: now(),
            updated_at: now(),
        };
        store.create_route(&r).await.unwrap();
        r
    }

    #[tokio::test]
    async fn a_fresh_credential_is_served_from_memory_until_it_is_forgotten() {
        let (store, tenant, _dir) = store().await;
        let lookups = Lookups::with_freshness(store.clone(), Duration::from_secs(3600));
        let created = create_credential(store.as_ref(), &tenant, "github").await;
        let first = lookups.credential(&tenant, &alias("github")).await.unwrap();
        assert_eq!(first.record.id, created.id);
        // Deleted behind the cache's back: a fresh entry does not ask the store.
        store.delete_credential(&tenant, &alias("github")).await.unwrap();
        let cached = lookups.credential(&tenant, &alias("github")).await.unwrap();
        assert!(Arc::ptr_eq(&first, &cached));
        lookups.forget_credential(&tenant, &alias("github"));
        let gone = lookups.credential(&tenant, &alias("github")).await;
        assert!(matches!(gone, Err(StoreError::NotFound(_))), "{gone:?}");
    }

    #[tokio::test]
    async fn a_stale_credential_is_fetched_again() {
        let (store, tenant, _dir) = store().await;
        let lookups = Lookups::with_freshness(store.clone(), Duration::ZERO);
        let created = create_credential(store.as_ref(), &tenant, "github").await;
        lookups.credential(&tenant, &alias("github")).await.unwrap();
        store
            .set_credential_status(&tenant, &created.id, CredentialStatus::Frozen, now())
            .await
            .unwrap();
        let again = lookups.credential(&tenant, &alias("github")).await.unwrap();
        assert_eq!(again.record.status, CredentialStatus::Frozen);
    }

    #[tokio::test]
    async fn a_missing_credential_is_not_remembered_as_missing() {
        let (store, tenant, _dir) = store().await;
        let lookups = Lookups::with_freshness(store.clone(), Duration::from_secs(3600));
        let missing = lookups.credential(&tenant, &alias("later")).await;
        assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");
        create_credential(store.as_ref(), &tenant, "later").await;
        assert!(lookups.credential(&tenant, &alias("later")).await.is_ok());
    }

    #[tokio::test]
    async fn entries_are_kept_per_tenant() {
        let (store, tenant, _dir) = store().await;
        let other = store.ensure_tenant("other").await.unwrap().id;
        let lookups = Lookups::with_freshness(store.clone(), Duration::from_secs(3600));
        create_credential(store.as_ref(), &tenant, "github").await;
        lookups.credential(&tenant, &alias("github")).await.unwrap();
        let elsewhere = lookups.credential(&other, &alias("github")).await;
        assert!(matches!(elsewhere, Err(StoreError::NotFound(_))), "{elsewhere:?}");
    }

    #[tokio::test]
    async fn a_fresh_route_is_served_from_memory_until_it_is_forgotten() {
        let (store, tenant, _dir) = store().await;
        let lookups = Lookups::with_freshness(store.clone(), Duration::from_secs(3600));
        create_credential(store.as_ref(), &tenant, "openai").await;
        let created = create_route(store.as_ref(), &tenant, "openai", "openai").await;
        let first = lookups.route(&tenant, &alias("openai")).await.unwrap();
        assert_eq!(first.id, created.id);
        store.delete_route(&tenant, &alias("openai")).await.unwrap();
        assert!(Arc::ptr_eq(
            &first,
            &lookups.route(&tenant, &alias("openai")).await.unwrap()
        ));
        lookups.forget_route(&tenant, &alias("openai"));
        let gone = lookups.route(&tenant, &alias("openai")).await;
        assert!(matches!(gone, Err(StoreError::NotFound(_))), "{gone:?}");
    }

    fn decrypted(secret: &str) -> Decrypted {
        let name = http::HeaderName::from_static("authorization");
        let value = http::HeaderValue::from_str(&format!("Bearer {secret}")).unwrap();
        Decrypted {
            injected: Injected {
                headers: vec![(name, value)],
                query: None,
            },
            redactor: Redactor::new(&super::super::redact::encoded_forms(secret)),
        }
    }

    #[tokio::test]
    async fn decrypted_material_is_derived_once_per_record_and_dropped_with_it() {
        let (store, tenant, _dir) = store().await;
        let lookups = Lookups::with_freshness(store.clone(), Duration::from_secs(3600));
        create_credential(store.as_ref(), &tenant, "github").await;
        let c = lookups.credential(&tenant, &alias("github")).await.unwrap();
        let mut derived = 0;
        let first = c
            .decrypted(|_| {
                derived += 1;
                Ok::<_, ()>(decrypted("sk-first-secret"))
            })
            .unwrap();
        let again = lookups.credential(&tenant, &alias("github")).await.unwrap();
        let second = again
            .decrypted(|_| {
                derived += 1;
                Ok::<_, ()>(decrypted("sk-other-secret"))
            })
            .unwrap();
        assert_eq!(derived, 1);
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(format!("{first:?}"), "Decrypted([REDACTED])");
        // Forgotten: the next request gets a new record and derives again.
        let weak = Arc::downgrade(&first);
        drop((c, again, first, second));
        lookups.forget_credential(&tenant, &alias("github"));
        assert!(weak.upgrade().is_none(), "decrypted material outlived its entry");
        let fresh = lookups.credential(&tenant, &alias("github")).await.unwrap();
        fresh.decrypted(|_| Ok::<_, ()>(decrypted("sk-first-secret"))).unwrap();
    }

    #[tokio::test]
    async fn a_refresh_keeps_decrypted_material_only_while_the_record_is_unchanged() {
        let (store, tenant, _dir) = store().await;
        let lookups = Lookups::with_freshness(store.clone(), Duration::ZERO);
        let created = create_credential(store.as_ref(), &tenant, "github").await;
        let derive = |n: &mut u32| {
            *n += 1;
            Ok::<_, ()>(decrypted("sk-first-secret"))
        };
        let mut derived = 0;
        let c = lookups.credential(&tenant, &alias("github")).await.unwrap();
        let first = c.decrypted(|_| derive(&mut derived)).unwrap();
        // Stale at once (zero freshness): fetched again, identical, so nothing is derived.
        let again = lookups.credential(&tenant, &alias("github")).await.unwrap();
        assert!(!Arc::ptr_eq(&c, &again));
        let second = again.decrypted(|_| derive(&mut derived)).unwrap();
        assert_eq!(derived, 1);
        assert!(Arc::ptr_eq(&first, &second));
        // Changed behind the cache's back (another replica): derived anew.
        store
            .set_credential_status(&tenant, &created.id, CredentialStatus::Frozen, now())
            .await
            .unwrap();
        let changed = lookups.credential(&tenant, &alias("github")).await.unwrap();
        let third = changed.decrypted(|_| derive(&mut derived)).unwrap();
        assert_eq!(derived, 2);
        assert!(!Arc::ptr_eq(&first, &third));
        // Forgotten on this replica: nothing is carried over.
        lookups.forget_credential(&tenant, &alias("github"));
        let fresh = lookups.credential(&tenant, &alias("github")).await.unwrap();
        fresh.decrypted(|_| derive(&mut derived)).unwrap();
        assert_eq!(derived, 3);
    }

    #[tokio::test]
    async fn a_sweep_drops_stale_entries_and_their_decrypted_material() {
        let (store, tenant, _dir) = store().await;
        let lookups = Lookups::with_freshness(store.clone(), Duration::ZERO);
        create_credential(store.as_ref(), &tenant, "github").await;
        let c = lookups.credential(&tenant, &alias("github")).await.unwrap();
        let d = c.decrypted(|_| Ok::<_, ()>(decrypted("sk-first-secret"))).unwrap();
        let weak = Arc::downgrade(&d);
        drop((c, d));
        assert!(weak.upgrade().is_some(), "kept by the cache entry until swept");
        lookups.sweep();
        assert!(weak.upgrade().is_none(), "a stale entry's secret survived the sweep");
    }

    #[test]
    fn a_lookup_that_raced_an_invalidation_does_not_put_the_old_record_back() {
        let table: Table<u32> = Table::new();
        let tenant = TenantId::generate();
        let started_at = table.generation.load(Ordering::Acquire);
        // The record is read, then an update on this replica forgets it, then the slow
        // lookup tries to insert what it read before the update.
        table.forget(&tenant, &alias("github"));
        table.insert(&tenant, &alias("github"), Arc::new(1), started_at, FRESHNESS);
        assert!(table.fresh(&tenant, &alias("github"), FRESHNESS).is_none());
        let now_at = table.generation.load(Ordering::Acquire);
        table.insert(&tenant, &alias("github"), Arc::new(2), now_at, FRESHNESS);
        assert_eq!(table.fresh(&tenant, &alias("github"), FRESHNESS).as_deref(), Some(&2));
    }
}
