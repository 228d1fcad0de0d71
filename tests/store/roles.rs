//! Roles: create, list, show, delete; uniqueness and tenant scoping.

use keystile::domain::{Permissions, RoleId, Scopes};
use keystile::store::now;

use crate::fixtures::*;
use crate::harness::Fixture;

pub async fn a_created_role_can_be_shown_and_listed_by_name(fx: &Fixture) {
    let store = fx.store();
    let acme = tenant(store, "acme").await;
    let writers = create_role(store, &acme, "writers").await;
    let admins = create_role(store, &acme, "admins").await;
    let mut bare = role(&acme, "readers");
    bare.description = None;
    bare.permissions = Permissions::default();
    bare.credential_scopes = Scopes::default();
    store.create_role(&bare).await.expect("create_role");

    assert_eq!(
        store.list_roles(&acme).await.expect("list_roles"),
        vec![admins.clone(), bare.clone(), writers.clone()],
        "roles are listed by name"
    );
    for r in [&writers, &admins, &bare] {
        assert_eq!(&store.role(&acme, &r.id).await.expect("role"), r);
    }
}

pub async fn a_duplicate_role_name_in_the_same_tenant_is_a_conflict(fx: &Fixture) {
    let store = fx.store();
    let acme = tenant(store, "acme").await;
    let original = create_role(store, &acme, "deployers").await;
    let duplicate = role(&acme, "deployers");
    assert_conflict(store.create_role(&duplicate).await, "second role named deployers");
    assert_eq!(store.list_roles(&acme).await.expect("list_roles"), vec![original]);
    assert_not_found(store.role(&acme, &duplicate.id).await, "the refused role");
}

pub async fn the_same_role_name_in_another_tenant_is_fine(fx: &Fixture) {
    let store = fx.store();
    let acme = tenant(store, "acme").await;
    let globex = tenant(store, "globex").await;
    let a = create_role(store, &acme, "deployers").await;
    let b = create_role(store, &globex, "deployers").await;
    assert_eq!(store.list_roles(&acme).await.expect("list_roles"), vec![a]);
    assert_eq!(store.list_roles(&globex).await.expect("list_roles"), vec![b]);
}

pub async fn a_role_of_another_tenant_is_not_found(fx: &Fixture) {
    let store = fx.store();
    let acme = tenant(store, "acme").await;
    let globex = tenant(store, "globex").await;
    let role = create_role(store, &acme, "admins").await;

    assert_not_found(store.role(&globex, &role.id).await, "role through another tenant");
    assert_not_found(
        store.delete_role(&globex, &role.id).await,
        "delete_role through another tenant",
    );
    assert!(store.list_roles(&globex).await.expect("list_roles").is_empty());
    assert_not_found(
        store.role(&acme, &RoleId::generate()).await,
        "a role that never existed",
    );
    assert_eq!(store.role(&acme, &role.id).await.expect("role"), role, "untouched");
}

pub async fn deleting_a_role_removes_it_and_a_second_delete_is_not_found(fx: &Fixture) {
    let store = fx.store();
    let acme = tenant(store, "acme").await;
    let doomed = create_role(store, &acme, "doomed").await;
    let kept = create_role(store, &acme, "kept").await;

    store.delete_role(&acme, &doomed.id).await.expect("delete_role");
    assert_not_found(store.role(&acme, &doomed.id).await, "deleted role");
    assert_eq!(store.list_roles(&acme).await.expect("list_roles"), vec![kept]);
    assert_not_found(store.delete_role(&acme, &doomed.id).await, "second delete");
    assert_not_found(
        store.delete_role(&acme, &RoleId::generate()).await,
        "delete of a role that never existed",
    );
}

pub async fn a_role_used_by_an_unrevoked_key_cannot_be_deleted_until_the_key_is_revoked(fx: &Fixture) {
    let store = fx.store();
    let acme = tenant(store, "acme").await;
    let role = create_role(store, &acme, "ci").await;
    let first = create_api_key(store, &acme, &role.id, "first").await;
    let second = create_api_key(store, &acme, &role.id, "second").await;

    assert_conflict(store.delete_role(&acme, &role.id).await, "role with two active keys");
    store
        .revoke_api_key(&acme, &first.id, now())
        .await
        .expect("revoke first");
    assert_conflict(store.delete_role(&acme, &role.id).await, "role with one active key");
    assert_eq!(
        store.role(&acme, &role.id).await.expect("role"),
        role,
        "a refused delete leaves the role"
    );

    store
        .revoke_api_key(&acme, &second.id, now())
        .await
        .expect("revoke second");
    store
        .delete_role(&acme, &role.id)
        .await
        .expect("delete_role once every key is revoked");
    assert_not_found(store.role(&acme, &role.id).await, "deleted role");
    assert_not_found(
        store.create_api_key(&api_key(&acme, &role.id, "late")).await,
        "a key for the deleted role",
    );
    assert_eq!(store.count_api_keys(&acme).await.expect("count_api_keys"), 0);
}
