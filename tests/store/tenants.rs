//! Tenants (operator-level) and their monthly usage counters.

use std::sync::Arc;

use keystile::domain::{Plan, Surface, TenantId};
use keystile::store::{KeyGrant, StoreError, TenantRecord, TenantStatus, now};

use crate::fixtures::*;
use crate::harness::Fixture;

fn new_tenant(name: &str, plan: Plan) -> TenantRecord {
    TenantRecord {
        id: TenantId::generate(),
        name: name.to_owned(),
        status: TenantStatus::Active,
        plan,
        created_at: now(),
    }
}

fn metered() -> Plan {
    Plan {
        disabled_surfaces: [Surface::Ephemeral].into(),
        operations_per_month: Some(1000),
        requests_per_second: Some(5),
        template_expressions_per_request: Some(7),
    }
}

/// Creates a tenant with its admin role and key; returns (tenant, key).
async fn create(
    store: &dyn keystile::store::Store,
    name: &str,
    plan: Plan,
) -> (TenantRecord, keystile::store::ApiKeyRecord) {
    let t = new_tenant(name, plan);
    let r = role(&t.id, "admin");
    let k = api_key(&t.id, &r.id, "first admin");
    store.create_tenant(&t, &r, &k).await.expect("create_tenant");
    (t, k)
}

pub async fn a_created_tenant_round_trips_with_its_plan_admin_role_and_key(fx: &Fixture) {
    let store = fx.store();
    let (t, k) = create(store, "acme", metered()).await;
    assert_eq!(store.tenant(&t.id).await.expect("tenant"), t);
    let grant: KeyGrant = store
        .api_key_by_hash(&k.key_hash)
        .await
        .expect("by hash")
        .expect("key exists");
    assert_eq!(grant.key, k);
    assert_eq!(grant.tenant_plan, metered());
    assert_eq!(grant.tenant_status, TenantStatus::Active);
    assert_eq!(store.list_roles(&t.id).await.expect("roles").len(), 1);
    assert_eq!(store.count_api_keys(&t.id).await.expect("count"), 1);
}

pub async fn creating_a_tenant_with_a_taken_name_is_a_conflict_and_leaves_nothing_behind(fx: &Fixture) {
    let store = fx.store();
    create(store, "acme", Plan::default()).await;
    let t = new_tenant("acme", Plan::default());
    let r = role(&t.id, "admin");
    let k = api_key(&t.id, &r.id, "first admin");
    match store.create_tenant(&t, &r, &k).await {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(matches!(store.tenant(&t.id).await, Err(StoreError::NotFound(_))));
    assert_eq!(store.api_key_by_hash(&k.key_hash).await.expect("by hash"), None);
    assert!(store.list_roles(&t.id).await.expect("roles").is_empty());
}

pub async fn listing_tenants_pages_by_name(fx: &Fixture) {
    let store = fx.store();
    tenant(store, "default").await;
    for name in ["delta", "alpha", "charlie", "bravo"] {
        create(store, name, Plan::default()).await;
    }
    let first = store.list_tenants(None, 2).await.expect("page 1");
    let names: Vec<_> = first.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["alpha", "bravo"]);
    let second = store.list_tenants(Some("bravo"), 10).await.expect("page 2");
    let names: Vec<_> = second.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["charlie", "default", "delta"]);
}

pub async fn a_tenants_plan_and_status_can_be_changed_and_keys_see_it(fx: &Fixture) {
    let store = fx.store();
    let (t, k) = create(store, "acme", Plan::default()).await;
    store.set_tenant_plan(&t.id, &metered()).await.expect("set plan");
    store
        .set_tenant_status(&t.id, TenantStatus::Terminated)
        .await
        .expect("set status");
    let shown = store.tenant(&t.id).await.expect("tenant");
    assert_eq!(
        (shown.plan.clone(), shown.status),
        (metered(), TenantStatus::Terminated)
    );
    let grant = store
        .api_key_by_hash(&k.key_hash)
        .await
        .expect("by hash")
        .expect("key kept");
    assert_eq!(grant.tenant_status, TenantStatus::Terminated);
    assert_eq!(grant.tenant_plan, metered());

    let missing = TenantId::generate();
    assert!(matches!(
        store.set_tenant_plan(&missing, &Plan::default()).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.set_tenant_status(&missing, TenantStatus::Active).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(store.tenant(&missing).await, Err(StoreError::NotFound(_))));
}

pub async fn usage_adds_up_per_tenant_and_period(fx: &Fixture) {
    let store = fx.store();
    let acme = tenant(store, "acme").await;
    let globex = tenant(store, "globex").await;
    assert_eq!(store.usage(&acme, "2026-11").await.expect("usage"), 0);
    assert_eq!(store.add_usage(&acme, "2026-11", 3).await.expect("add"), 3);
    assert_eq!(store.add_usage(&acme, "2026-11", 4).await.expect("add"), 7);
    assert_eq!(store.add_usage(&acme, "2026-12", 1).await.expect("add"), 1);
    assert_eq!(store.add_usage(&globex, "2026-11", 2).await.expect("add"), 2);
    assert_eq!(store.usage(&acme, "2026-11").await.expect("usage"), 7);
    assert_eq!(store.usage(&acme, "2026-12").await.expect("usage"), 1);
    assert_eq!(store.usage(&globex, "2026-11").await.expect("usage"), 2);
    assert_eq!(store.usage(&globex, "2026-12").await.expect("usage"), 0);
    // Usage is durable: another store on the same database sees it.
    let again = fx.reopen().await.expect("reopen");
    assert_eq!(again.usage(&acme, "2026-11").await.expect("usage"), 7);
}

pub async fn concurrent_usage_additions_are_never_lost(fx: &Fixture) {
    let fx = Arc::new(fx.reopen().await.expect("reopen"));
    let acme = tenant(fx.as_ref().as_ref(), "acme").await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = fx.clone();
        let acme = acme.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..5 {
                store.add_usage(&acme, "2026-11", 2).await.expect("add");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    assert_eq!(fx.usage(&acme, "2026-11").await.expect("usage"), 80);
}

pub async fn usage_of_a_missing_tenant_cannot_be_added(fx: &Fixture) {
    let store = fx.store();
    assert!(store.add_usage(&TenantId::generate(), "2026-11", 1).await.is_err());
}
