//! Projects, their keys (rotation overlap with injected time), secrets and signature nonces.

use chrono::{DateTime, Utc};
use keystile::crypto::{Aad, MasterKey, Sealed};
use keystile::domain::{EnvName, ProjectId, ProjectKeyId, ProjectName, SecretId, SecretName, TenantId};
use keystile::store::{ProjectKeyRecord, ProjectRecord, SecretRecord, Store, now};

use crate::fixtures::*;
use crate::harness::Fixture;

fn project(tenant: &TenantId, name: &str) -> (ProjectRecord, ProjectKeyRecord) {
    let at = now();
    let p = ProjectRecord {
        id: ProjectId::generate(),
        tenant_id: tenant.clone(),
        name: ProjectName::parse(name).expect("project name"),
        created_at: at,
    };
    let k = key_for(&p, 1, at);
    (p, k)
}

fn key_for(p: &ProjectRecord, byte: u8, at: DateTime<Utc>) -> ProjectKeyRecord {
    ProjectKeyRecord {
        id: ProjectKeyId::generate(),
        project_id: p.id.clone(),
        tenant_id: p.tenant_id.clone(),
        public_key: [byte; 32],
        created_at: at,
        valid_until: None,
    }
}

async fn create_project(store: &dyn Store, tenant: &TenantId, name: &str) -> (ProjectRecord, ProjectKeyRecord) {
    let (p, k) = project(tenant, name);
    store.create_project(&p, &k).await.expect("create_project");
    (p, k)
}

fn secret(master: &MasterKey, p: &ProjectRecord, env: &str, name: &str, value: &str) -> SecretRecord {
    let id = SecretId::generate();
    let aad = Aad {
        kind: "project_secret",
        tenant: p.tenant_id.as_str(),
        object_id: id.as_str(),
        version: 1,
    };
    let at = now();
    SecretRecord {
        sealed: Sealed::seal(master, aad, value.as_bytes()),
        id,
        tenant_id: p.tenant_id.clone(),
        project_id: p.id.clone(),
        env: EnvName::parse(env).expect("env"),
        name: SecretName::parse(name).expect("secret name"),
        version: 1,
        created_at: at,
        updated_at: at,
    }
}

pub async fn a_created_project_round_trips_and_names_are_unique_across_tenants(fx: &Fixture) {
    let store = fx.store();
    let acme = tenant(store, "acme").await;
    let globex = tenant(store, "globex").await;
    let (web, web_key) = create_project(store, &acme, "web").await;
    let (api, _) = create_project(store, &acme, "api").await;
    assert_eq!(store.project(&acme, &web.id).await.expect("project"), web);
    assert_eq!(store.list_projects(&acme).await.expect("list"), vec![api, web.clone()]);
    assert_eq!(store.project_keys(&acme, &web.id).await.expect("keys"), vec![web_key]);
    let (dup, dup_key) = project(&acme, "web");
    assert_conflict(store.create_project(&dup, &dup_key).await, "second project named web");
    assert_not_found(store.project(&acme, &dup.id).await, "the refused project");
    // A signature's keyid names a project but no tenant: a name belongs to one tenant only.
    let (taken, taken_key) = project(&globex, "web");
    assert_conflict(
        store.create_project(&taken, &taken_key).await,
        "project named web in another tenant",
    );
    create_project(store, &globex, "web-2").await;
    assert_not_found(store.project(&globex, &web.id).await, "project through another tenant");
    assert_not_found(
        store.delete_project(&globex, &web.id).await,
        "delete through another tenant",
    );
    assert!(store.project_keys(&globex, &web.id).await.expect("keys").is_empty());
}

/// The public keys of tenant's project `web` that verify at `at`, sorted.
async fn keys_at(store: &dyn Store, tenant: &TenantId, at: DateTime<Utc>) -> Vec<[u8; 32]> {
    let mut keys: Vec<[u8; 32]> = store
        .project_keys_by_name(&ProjectName::parse("web").expect("name"), at)
        .await
        .expect("by name")
        .into_iter()
        .filter(|(p, _)| &p.tenant_id == tenant)
        .map(|(_, k)| k.public_key)
        .collect();
    keys.sort();
    keys
}

pub async fn keys_by_name_find_the_tenant_and_respect_the_rotation_overlap(fx: &Fixture) {
    let store = fx.store();
    let acme = tenant(store, "acme").await;
    let globex = tenant(store, "globex").await;
    let (web, first) = create_project(store, &acme, "web").await;
    create_project(store, &globex, "api").await;
    let t0 = now();
    let name = ProjectName::parse("web").expect("name");
    let found = store.project_keys_by_name(&name, t0).await.expect("by name");
    assert_eq!(
        found,
        vec![(web.clone(), first.clone())],
        "the one project named web, in its tenant"
    );

    // Rotate with a 10-minute overlap, then look at injected times.
    let second = key_for(&web, 2, t0);
    store.rotate_project_key(&second, secs(t0, 600)).await.expect("rotate");
    assert_eq!(
        keys_at(store, &acme, secs(t0, 1)).await,
        vec![[1; 32], [2; 32]],
        "both during the overlap"
    );
    assert_eq!(
        keys_at(store, &acme, secs(t0, 599)).await,
        vec![[1; 32], [2; 32]],
        "both just before its end"
    );
    assert_eq!(
        keys_at(store, &acme, secs(t0, 600)).await,
        vec![[2; 32]],
        "only the new key afterwards"
    );

    // A second rotation does not extend the first key's end.
    let third = key_for(&web, 3, secs(t0, 60));
    store
        .rotate_project_key(&third, secs(t0, 660))
        .await
        .expect("rotate again");
    assert_eq!(keys_at(store, &acme, secs(t0, 630)).await, vec![[2; 32], [3; 32]]);
    let all = store.project_keys(&acme, &web.id).await.expect("keys");
    assert_eq!(all.len(), 3);
    assert_eq!(
        all.iter().filter(|k| k.valid_until.is_none()).count(),
        1,
        "one current key"
    );

    // Rotating a key into another tenant's project is refused.
    let mut foreign = key_for(&web, 4, t0);
    foreign.tenant_id = globex.clone();
    assert_not_found(
        store.rotate_project_key(&foreign, secs(t0, 600)).await,
        "foreign rotation",
    );
}

pub async fn secrets_are_created_updated_listed_and_deleted_within_their_tenant(fx: &Fixture) {
    let store = fx.store();
    let master = MasterKey::generate();
    let acme = tenant(store, "acme").await;
    let globex = tenant(store, "globex").await;
    let (web, _) = create_project(store, &acme, "web").await;
    let db = secret(&master, &web, "production", "DATABASE_URL", "postgres://p");
    let stg = secret(&master, &web, "prod/eu west", "DATABASE_URL", "postgres://s");
    store.create_secret(&db).await.expect("create");
    store.create_secret(&stg).await.expect("create");
    let dup = secret(&master, &web, "production", "DATABASE_URL", "other");
    assert_conflict(store.create_secret(&dup).await, "same env and name");
    let mut foreign = secret(&master, &web, "production", "X", "v");
    foreign.tenant_id = globex.clone();
    assert_not_found(
        store.create_secret(&foreign).await,
        "secret into another tenant's project",
    );

    let found = store
        .secret(&acme, &web.id, &db.env, &db.name)
        .await
        .expect("secret")
        .expect("present");
    assert_eq!(found, db);
    assert_eq!(store.list_secrets(&acme, &web.id, None).await.expect("list").len(), 2);
    assert_eq!(
        store.list_secrets(&acme, &web.id, Some(&stg.env)).await.expect("list"),
        vec![stg.clone()]
    );
    assert!(
        store
            .list_secrets(&globex, &web.id, None)
            .await
            .expect("list")
            .is_empty()
    );

    let resealed = Sealed::seal(
        &master,
        Aad {
            kind: "project_secret",
            tenant: acme.as_str(),
            object_id: db.id.as_str(),
            version: 2,
        },
        b"postgres://new",
    );
    let later = secs(now(), 5);
    store
        .update_secret(&acme, &db.id, 1, &resealed, later)
        .await
        .expect("update");
    assert_conflict(
        store.update_secret(&acme, &db.id, 1, &resealed, later).await,
        "stale version",
    );
    assert_not_found(
        store.update_secret(&globex, &db.id, 2, &resealed, later).await,
        "other tenant",
    );
    let updated = store
        .secret(&acme, &web.id, &db.env, &db.name)
        .await
        .expect("secret")
        .expect("present");
    assert_eq!(
        (updated.version, updated.updated_at, &updated.sealed),
        (2, later, &resealed)
    );

    assert_not_found(
        store.delete_secret(&globex, &db.id).await,
        "delete through another tenant",
    );
    store.delete_secret(&acme, &db.id).await.expect("delete");
    assert_not_found(store.delete_secret(&acme, &db.id).await, "second delete");
}

pub async fn deleting_a_project_takes_its_keys_secrets_and_nonces(fx: &Fixture) {
    let store = fx.store();
    let master = MasterKey::generate();
    let acme = tenant(store, "acme").await;
    let (web, _) = create_project(store, &acme, "web").await;
    let (keep, _) = create_project(store, &acme, "keep").await;
    store
        .create_secret(&secret(&master, &web, "production", "A", "1"))
        .await
        .expect("create");
    store
        .create_secret(&secret(&master, &keep, "production", "A", "1"))
        .await
        .expect("create");
    let t0 = now();
    assert!(
        store
            .consume_nonce(&web.id, "n1", secs(t0, 600), t0)
            .await
            .expect("nonce")
    );
    store.delete_project(&acme, &web.id).await.expect("delete");
    assert_not_found(store.project(&acme, &web.id).await, "deleted project");
    assert!(store.project_keys(&acme, &web.id).await.expect("keys").is_empty());
    assert!(store.list_secrets(&acme, &web.id, None).await.expect("list").is_empty());
    let name = ProjectName::parse("web").expect("name");
    assert!(store.project_keys_by_name(&name, t0).await.expect("by name").is_empty());
    assert_eq!(store.list_secrets(&acme, &keep.id, None).await.expect("list").len(), 1);
    assert_not_found(store.delete_project(&acme, &web.id).await, "second delete");
}

pub async fn a_nonce_is_accepted_once_until_its_retention_ends(fx: &Fixture) {
    let store = fx.store();
    let acme = tenant(store, "acme").await;
    let (web, _) = create_project(store, &acme, "web").await;
    let (api, _) = create_project(store, &acme, "api").await;
    let t0 = now();
    assert!(
        store
            .consume_nonce(&web.id, "abc", secs(t0, 600), t0)
            .await
            .expect("first")
    );
    assert!(
        !store
            .consume_nonce(&web.id, "abc", secs(t0, 600), secs(t0, 1))
            .await
            .expect("replay")
    );
    assert!(
        !store
            .consume_nonce(&web.id, "abc", secs(t0, 1200), secs(t0, 599))
            .await
            .expect("replay near the end"),
        "still remembered until its retention ends"
    );
    assert!(
        store
            .consume_nonce(&api.id, "abc", secs(t0, 600), t0)
            .await
            .expect("other project")
    );
    // A second store on the same database (another replica) sees the same nonces.
    let replica = fx.reopen().await.expect("reopen");
    assert!(
        !replica
            .consume_nonce(&api.id, "abc", secs(t0, 600), secs(t0, 2))
            .await
            .expect("replica")
    );

    // After the retention, the row is purged (its signature can no longer be valid anyway).
    assert!(
        store
            .consume_nonce(&web.id, "abc", secs(t0, 1300), secs(t0, 700))
            .await
            .expect("after")
    );
}

pub async fn concurrent_uses_of_one_nonce_let_exactly_one_through(fx: &Fixture) {
    let store = fx.store();
    let acme = tenant(store, "acme").await;
    let (web, _) = create_project(store, &acme, "web").await;
    let replica = fx.reopen().await.expect("reopen");
    let t0 = now();
    let attempts = (0..8).map(|i| {
        let s: &dyn Store = if i % 2 == 0 { store } else { replica.as_ref() };
        let id = web.id.clone();
        async move { s.consume_nonce(&id, "race", secs(t0, 600), t0).await.expect("consume") }
    });
    let results = futures_util::future::join_all(attempts).await;
    assert_eq!(results.iter().filter(|ok| **ok).count(), 1, "{results:?}");
}
