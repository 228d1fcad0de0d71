//! API keys: creation rules, lookup by hash, listing, revocation, use and counting.

use keystile::domain::{ApiKeyId, RoleId};
use keystile::store::{ApiKeyRecord, KeyGrant, TenantStatus, now};

use crate::fixtures::*;
use crate::harness::Fixture;

pub async fn an_api_key_must_use_a_role_of_its_own_tenant(fx: &Fixture) {
    let store = fx.store();
    let acme = tenant(store, "acme").await;
    let globex = tenant(store, "globex").await;
    let acme_role = create_role(store, &acme, "admins").await;

    let stolen = api_key(&globex, &acme_role.id, "borrowed");
    assert_not_found(store.create_api_key(&stolen).await, "key with another tenant's role");
    let dangling = api_key(&acme, &RoleId::generate(), "dangling");
    assert_not_found(store.create_api_key(&dangling).await, "key with a missing role");

    assert_eq!(store.api_key_by_hash(&stolen.key_hash).await.expect("by hash"), None);
    assert_eq!(store.api_key_by_hash(&dangling.key_hash).await.expect("by hash"), None);
    assert_eq!(store.count_api_keys(&globex).await.expect("count"), 0);
    assert_eq!(store.count_api_keys(&acme).await.expect("count"), 0);
}

pub async fn a_created_api_key_is_found_by_hash_with_its_role_and_tenant_status(fx: &Fixture) {
    let store = fx.store();
    let acme = tenant(store, "acme").await;
    let role = create_role(store, &acme, "deployers").await;
    let key = create_api_key(store, &acme, &role.id, "release bot").await;

    let grant = store.api_key_by_hash(&key.key_hash).await.expect("api_key_by_hash");
    assert_eq!(
        grant,
        Some(KeyGrant {
            key: key.clone(),
            role: role.clone(),
            tenant_status: TenantStatus::Active,
            tenant_plan: keystile::domain::Plan::default(),
        })
    );
    assert_eq!(
        store.api_key_by_hash(&unknown_hash()).await.expect("unknown hash"),
        None
    );
}

pub async fn a_key_of_a_terminated_tenant_reports_the_tenant_status(fx: &Fixture) {
    let store = fx.store();
    let acme = tenant(store, "acme").await;
    let role = create_role(store, &acme, "deployers").await;
    let key = create_api_key(store, &acme, &role.id, "bot").await;
    fx.execute("UPDATE tenants SET status = 'terminated' WHERE id = $1", acme.as_str())
        .await;

    let grant = store
        .api_key_by_hash(&key.key_hash)
        .await
        .expect("api_key_by_hash")
        .expect("the key is still found");
    assert_eq!(grant.tenant_status, TenantStatus::Terminated);
    assert_eq!(grant.key, key);
}

pub async fn a_duplicate_key_hash_is_a_conflict(fx: &Fixture) {
    let store = fx.store();
    let acme = tenant(store, "acme").await;
    let role = create_role(store, &acme, "deployers").await;
    let original = create_api_key(store, &acme, &role.id, "original").await;
    let mut copy = api_key(&acme, &role.id, "copy");
    copy.key_hash = original.key_hash;
    assert_conflict(store.create_api_key(&copy).await, "a second key with the same hash");
    assert_eq!(store.list_api_keys(&acme).await.expect("list"), vec![original]);
}

pub async fn listing_api_keys_excludes_revoked_keys_and_puts_the_newest_first(fx: &Fixture) {
    let store = fx.store();
    let acme = tenant(store, "acme").await;
    let globex = tenant(store, "globex").await;
    let role = create_role(store, &acme, "deployers").await;
    let other_role = create_role(store, &globex, "deployers").await;
    let base = now();

    let mut keys = Vec::new();
    // Created out of order so that the listing order cannot come from insertion order.
    for (offset, key_name) in [(-2, "middle"), (0, "newest"), (-3, "oldest"), (-1, "newer")] {
        let mut k = api_key(&acme, &role.id, key_name);
        k.created_at = secs(base, offset);
        store.create_api_key(&k).await.expect("create_api_key");
        keys.push(k);
    }
    create_api_key(store, &globex, &other_role.id, "not acme's").await;
    let [middle, newest, oldest, newer] = <[_; 4]>::try_from(keys).expect("four keys");

    assert_eq!(
        store.list_api_keys(&acme).await.expect("list_api_keys"),
        vec![newest.clone(), newer.clone(), middle.clone(), oldest.clone()]
    );
    store.revoke_api_key(&acme, &newer.id, now()).await.expect("revoke");
    assert_eq!(
        store.list_api_keys(&acme).await.expect("list_api_keys"),
        vec![newest, middle, oldest],
        "revoked keys are not listed"
    );
}

pub async fn a_revoked_key_is_still_found_by_hash_with_revoked_at_set(fx: &Fixture) {
    let store = fx.store();
    let acme = tenant(store, "acme").await;
    let role = create_role(store, &acme, "deployers").await;
    let key = create_api_key(store, &acme, &role.id, "bot").await;
    let at = secs(now(), 1);
    store.revoke_api_key(&acme, &key.id, at).await.expect("revoke_api_key");

    let grant = store
        .api_key_by_hash(&key.key_hash)
        .await
        .expect("api_key_by_hash")
        .expect("revoked keys are still found");
    assert_eq!(grant.key.revoked_at, Some(at));
    assert_eq!(
        grant.key,
        ApiKeyRecord {
            revoked_at: Some(at),
            ..key
        },
        "nothing but revoked_at changed"
    );
    assert_eq!(grant.role, role);
    assert_eq!(grant.tenant_status, TenantStatus::Active);
}

pub async fn revoking_a_key_twice_is_not_found_the_second_time(fx: &Fixture) {
    let store = fx.store();
    let acme = tenant(store, "acme").await;
    let globex = tenant(store, "globex").await;
    let role = create_role(store, &acme, "deployers").await;
    let key = create_api_key(store, &acme, &role.id, "bot").await;

    assert_not_found(
        store.revoke_api_key(&globex, &key.id, now()).await,
        "revoke through another tenant",
    );
    assert_eq!(store.count_api_keys(&acme).await.expect("count"), 1, "still active");

    let first = secs(now(), 1);
    store.revoke_api_key(&acme, &key.id, first).await.expect("first revoke");
    assert_not_found(
        store.revoke_api_key(&acme, &key.id, secs(first, 60)).await,
        "second revoke",
    );
    let stored = store
        .api_key_by_hash(&key.key_hash)
        .await
        .expect("api_key_by_hash")
        .expect("found");
    assert_eq!(stored.key.revoked_at, Some(first), "the second revoke changed nothing");
    assert_not_found(
        store.revoke_api_key(&acme, &ApiKeyId::generate(), now()).await,
        "revoke of a key that never existed",
    );
}

pub async fn touching_a_key_records_when_it_was_last_used(fx: &Fixture) {
    let store = fx.store();
    let acme = tenant(store, "acme").await;
    let role = create_role(store, &acme, "deployers").await;
    let key = create_api_key(store, &acme, &role.id, "bot").await;
    assert_eq!(key.last_used_at, None);

    let first = secs(now(), 1);
    store.touch_api_key(&key.id, first).await.expect("touch");
    let grant = store
        .api_key_by_hash(&key.key_hash)
        .await
        .expect("by hash")
        .expect("found");
    assert_eq!(grant.key.last_used_at, Some(first));

    let later = secs(first, 30);
    store.touch_api_key(&key.id, later).await.expect("touch again");
    let listed = store.list_api_keys(&acme).await.expect("list_api_keys");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].last_used_at, Some(later));
    assert_eq!(
        listed[0],
        ApiKeyRecord {
            last_used_at: Some(later),
            ..key
        },
        "nothing but last_used_at changed"
    );
}

pub async fn counting_api_keys_counts_only_the_tenants_unrevoked_keys(fx: &Fixture) {
    let store = fx.store();
    let acme = tenant(store, "acme").await;
    let globex = tenant(store, "globex").await;
    let initech = tenant(store, "initech").await;
    let acme_role = create_role(store, &acme, "deployers").await;
    let globex_role = create_role(store, &globex, "deployers").await;

    let mut acme_keys = Vec::new();
    for i in 0..3 {
        acme_keys.push(create_api_key(store, &acme, &acme_role.id, &format!("key {i}")).await);
    }
    create_api_key(store, &globex, &globex_role.id, "only").await;
    assert_eq!(store.count_api_keys(&acme).await.expect("count"), 3);

    store
        .revoke_api_key(&acme, &acme_keys[1].id, now())
        .await
        .expect("revoke");
    assert_eq!(store.count_api_keys(&acme).await.expect("count"), 2);
    assert_eq!(store.count_api_keys(&globex).await.expect("count"), 1);
    assert_eq!(store.count_api_keys(&initech).await.expect("count"), 0);
}
