//! Credentials: round-trips, pagination, uniqueness, tenant isolation, update, rotation, delete.

use std::collections::BTreeSet;

use keystile::crypto::{MasterKey, Sealed};
use keystile::domain::{Alias, CredentialKind, Injection, TenantId};
use keystile::store::{CredentialRecord, CredentialStatus, Store, now};
use serde_json::json;

use crate::fixtures::*;
use crate::harness::Fixture;

/// Reads a credential and checks that its sealed data still opens to `plaintext`.
async fn assert_opens_to(store: &dyn Store, master: &MasterKey, c: &CredentialRecord, plaintext: &[u8]) {
    let stored = store.credential(&c.tenant_id, &c.alias).await.expect("credential");
    let opened = stored
        .sealed
        .open(master, credential_aad(&c.tenant_id, &c.id, stored.version))
        .expect("the stored sealed data opens with the master key");
    assert_eq!(opened.as_slice(), plaintext);
}

/// Pages through a tenant's credentials `page` at a time, as the API does.
async fn all_aliases_by_pages(store: &dyn Store, tenant: &TenantId, page: u32) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut after: Option<Alias> = None;
    loop {
        let batch = store
            .list_credentials(tenant, after.as_ref(), page)
            .await
            .expect("list_credentials");
        assert!(batch.len() <= page as usize, "a page never exceeds the limit");
        let Some(last) = batch.last() else { break };
        after = Some(last.alias.clone());
        pages.push(batch.iter().map(|c| c.alias.to_string()).collect());
        assert!(pages.len() <= 100, "pagination does not terminate");
    }
    pages
}

pub async fn a_created_credential_round_trips_field_for_field(fx: &Fixture) {
    let store = fx.store();
    let master = MasterKey::generate();
    let acme = tenant(store, "acme").await;

    let header = credential(&master, &acme, "github-ci", br#"{"key":"ghp_header"}"#);

    let mut query = credential(&master, &acme, "maps.v2", br#"{"key":"AIza-query"}"#);
    query.status = CredentialStatus::Frozen;
    query.inject = Some(Injection::Query { query: "key".into() });

    let mut basic = credential(
        &master,
        &acme,
        "jira_basic",
        br#"{"username":"u","password":"p\u00e9"}"#,
    );
    basic.kind = CredentialKind::BasicAuth;
    basic.inject = None;
    basic.description = None;
    basic.metadata = serde_json::Map::new();
    basic.policy = policy(json!({
        "allowed_hosts": ["jira.example.com", "10.0.0.7", "[::1]"],
        "allowed_methods": ["GET", "post"],
        "allowed_paths": ["/rest/*", "/login"],
        "allowed_ports": [443, 8443],
        "allow_http": true,
        "allow_private_network": ["10.0.0.0/8", "fd00::/8"]
    }));

    let mut headers = credential(
        &master,
        &acme,
        "Vendor-Headers",
        br#"{"headers":{"X-A":"1","X-B":"2"}}"#,
    );
    headers.kind = CredentialKind::Headers;
    headers.inject = None;
    headers.policy = policy(json!({"allowed_hosts": ["*.vendor.io"], "allow_private_network": true}));
    headers.metadata = metadata(json!({"unicode": "\u{1F511} clé", "empty": {}, "list": [1, null, "x"]}));

    for c in [&header, &query, &basic, &headers] {
        store.create_credential(c).await.expect("create_credential");
    }
    for (c, plaintext) in [
        (&header, br#"{"key":"ghp_header"}"#.as_slice()),
        (&query, br#"{"key":"AIza-query"}"#.as_slice()),
        (&basic, br#"{"username":"u","password":"p\u00e9"}"#.as_slice()),
        (&headers, br#"{"headers":{"X-A":"1","X-B":"2"}}"#.as_slice()),
    ] {
        let stored = store.credential(&acme, &c.alias).await.expect("credential");
        assert_eq!(
            stored.sealed.wrapped_key, c.sealed.wrapped_key,
            "{}: wrapped key bytes",
            c.alias
        );
        assert_eq!(
            stored.sealed.ciphertext, c.sealed.ciphertext,
            "{}: ciphertext bytes",
            c.alias
        );
        assert_eq!(&stored, c, "{}: every field round-trips", c.alias);
        assert_opens_to(store, &master, c, plaintext).await;
    }
}

pub async fn listing_credentials_pages_through_aliases_in_order_without_duplicates(fx: &Fixture) {
    let store = fx.store();
    let master = MasterKey::generate();
    let acme = tenant(store, "acme").await;
    let globex = tenant(store, "globex").await;
    let mut created = Vec::new();
    for a in ["delta", "alpha", "echo", "charlie", "bravo"] {
        created.push(create_credential(store, &master, &acme, a).await);
    }
    create_credential(store, &master, &globex, "alpha0").await;

    assert_eq!(
        all_aliases_by_pages(store, &acme, 2).await,
        vec![vec!["alpha", "bravo"], vec!["charlie", "delta"], vec!["echo"]]
    );

    let everything = store
        .list_credentials(&acme, None, 100)
        .await
        .expect("list_credentials");
    created.sort_by(|a, b| a.alias.cmp(&b.alias));
    assert_eq!(everything, created, "listed records are complete");

    let after_last = store
        .list_credentials(&acme, Some(&alias("echo")), 2)
        .await
        .expect("list_credentials");
    assert!(after_last.is_empty(), "nothing after the last alias");
    let after_gap = store
        .list_credentials(&acme, Some(&alias("bz")), 2)
        .await
        .expect("list_credentials");
    assert_eq!(
        after_gap.iter().map(|c| c.alias.as_str()).collect::<Vec<_>>(),
        ["charlie", "delta"],
        "a cursor need not be an existing alias"
    );
}

pub async fn paging_visits_every_alias_exactly_once_whatever_its_characters(fx: &Fixture) {
    let store = fx.store();
    let master = MasterKey::generate();
    let acme = tenant(store, "acme").await;
    let aliases = [
        "Zeta", "alpha", "a-b", "a.b", "a_b", "ab", "A1", "0x", "9-z", "a", "a0", "B.", "b-",
    ];
    for a in aliases {
        create_credential(store, &master, &acme, a).await;
    }
    let one_shot: Vec<String> = store
        .list_credentials(&acme, None, 1000)
        .await
        .expect("list_credentials")
        .into_iter()
        .map(|c| c.alias.to_string())
        .collect();
    for page in [1, 2, 3, 5] {
        let paged: Vec<String> = all_aliases_by_pages(store, &acme, page).await.concat();
        assert_eq!(paged, one_shot, "paging by {page} matches the one-shot listing");
    }
    let distinct: BTreeSet<&str> = one_shot.iter().map(String::as_str).collect();
    assert_eq!(distinct.len(), aliases.len(), "no duplicates");
    assert_eq!(distinct, aliases.into_iter().collect(), "every alias is listed");
}

pub async fn a_duplicate_alias_in_the_same_tenant_is_a_conflict(fx: &Fixture) {
    let store = fx.store();
    let master = MasterKey::generate();
    let acme = tenant(store, "acme").await;
    let original = create_credential(store, &master, &acme, "openai").await;
    let duplicate = credential(&master, &acme, "openai", br#"{"key":"other"}"#);
    assert_conflict(
        store.create_credential(&duplicate).await,
        "second credential named openai",
    );
    assert_eq!(
        store.credential(&acme, &original.alias).await.expect("credential"),
        original
    );
    assert_eq!(store.list_credentials(&acme, None, 10).await.expect("list").len(), 1);
}

pub async fn the_same_alias_in_another_tenant_is_fine(fx: &Fixture) {
    let store = fx.store();
    let master = MasterKey::generate();
    let acme = tenant(store, "acme").await;
    let globex = tenant(store, "globex").await;
    let a = create_credential(store, &master, &acme, "openai").await;
    let b = create_credential(store, &master, &globex, "openai").await;
    assert_ne!(a.id, b.id);
    assert_eq!(store.credential(&acme, &a.alias).await.expect("acme's"), a);
    assert_eq!(store.credential(&globex, &b.alias).await.expect("globex's"), b);
}

pub async fn another_tenant_cannot_read_update_rotate_or_delete_a_credential(fx: &Fixture) {
    let store = fx.store();
    let master = MasterKey::generate();
    let acme = tenant(store, "acme").await;
    let globex = tenant(store, "globex").await;
    let secret = create_credential(store, &master, &acme, "payroll").await;

    assert_not_found(
        store.credential(&globex, &secret.alias).await,
        "read through another tenant",
    );
    assert!(
        store
            .list_credentials(&globex, None, 100)
            .await
            .expect("list")
            .is_empty(),
        "another tenant lists nothing"
    );

    let hijacked = CredentialRecord {
        tenant_id: globex.clone(),
        status: CredentialStatus::Frozen,
        description: Some("hijacked".into()),
        updated_at: secs(now(), 10),
        ..secret.clone()
    };
    assert_not_found(
        store.update_credential(&hijacked).await,
        "update through another tenant",
    );

    let foreign = Sealed::seal(&master, credential_aad(&globex, &secret.id, 2), b"{\"key\":\"evil\"}");
    assert_not_found(
        store
            .rotate_credential(&globex, &secret.id, secret.version, &foreign, now())
            .await,
        "rotate through another tenant",
    );
    assert_not_found(
        store.delete_credential(&globex, &secret.alias).await,
        "delete through another tenant",
    );

    assert_eq!(
        store.credential(&acme, &secret.alias).await.expect("credential"),
        secret,
        "the owner's credential is untouched"
    );
}

pub async fn operations_on_a_missing_credential_are_not_found(fx: &Fixture) {
    let store = fx.store();
    let master = MasterKey::generate();
    let acme = tenant(store, "acme").await;
    let ghost = credential(&master, &acme, "ghost", br#"{"key":"boo"}"#);

    assert_not_found(store.credential(&acme, &ghost.alias).await, "read");
    assert_not_found(store.update_credential(&ghost).await, "update");
    assert_not_found(
        store.rotate_credential(&acme, &ghost.id, 1, &ghost.sealed, now()).await,
        "rotate",
    );
    assert_not_found(store.delete_credential(&acme, &ghost.alias).await, "delete");
}

pub async fn updating_a_credential_persists_policy_inject_description_and_metadata_but_not_status(fx: &Fixture) {
    let store = fx.store();
    let master = MasterKey::generate();
    let acme = tenant(store, "acme").await;
    let original = create_credential(store, &master, &acme, "stripe").await;

    let changed = CredentialRecord {
        inject: Some(Injection::Query {
            query: "api_key".into(),
        }),
        policy: policy(json!({
            "allowed_hosts": ["api.stripe.com"],
            "allowed_methods": ["POST"],
            "allowed_ports": [443]
        })),
        description: None,
        metadata: metadata(json!({"owner": "billing", "rotated": false})),
        updated_at: secs(original.updated_at, 5),
        ..original.clone()
    };
    // Fields update_credential does not own: they must not be written.
    let with_noise = CredentialRecord {
        status: CredentialStatus::Frozen,
        version: 99,
        sealed: Sealed::seal(&master, credential_aad(&acme, &original.id, 99), b"{\"key\":\"noise\"}"),
        created_at: secs(original.created_at, -3600),
        ..changed.clone()
    };
    store.update_credential(&with_noise).await.expect("update_credential");
    assert_eq!(
        store.credential(&acme, &original.alias).await.expect("credential"),
        changed,
        "inject, policy, description, metadata and updated_at are saved; nothing else"
    );
    store
        .set_credential_status(
            &acme,
            &original.id,
            CredentialStatus::Frozen,
            secs(changed.updated_at, 1),
        )
        .await
        .expect("set_credential_status");
    let frozen = store.credential(&acme, &original.alias).await.expect("credential");
    assert_eq!(
        frozen,
        CredentialRecord {
            status: CredentialStatus::Frozen,
            updated_at: secs(changed.updated_at, 1),
            ..changed.clone()
        },
        "only status and updated_at change"
    );
    let other = tenant(store, "other").await;
    assert_not_found(
        store
            .set_credential_status(
                &other,
                &original.id,
                CredentialStatus::Active,
                secs(changed.updated_at, 2),
            )
            .await,
        "set_credential_status from another tenant",
    );
    assert_opens_to(store, &master, &original, br#"{"key":"sk-stripe"}"#).await;

    let back = CredentialRecord {
        inject: None,
        description: Some("restored".into()),
        metadata: serde_json::Map::new(),
        updated_at: secs(changed.updated_at, 5),
        ..frozen
    };
    store.update_credential(&back).await.expect("second update_credential");
    assert_eq!(
        store.credential(&acme, &original.alias).await.expect("credential"),
        back
    );
}

pub async fn rotating_a_credential_bumps_the_version_and_replaces_the_sealed_bytes(fx: &Fixture) {
    let store = fx.store();
    let master = MasterKey::generate();
    let acme = tenant(store, "acme").await;
    let original = create_credential(store, &master, &acme, "aws").await;

    let v2 = Sealed::seal(&master, credential_aad(&acme, &original.id, 2), br#"{"key":"second"}"#);
    let at = secs(original.updated_at, 7);
    store
        .rotate_credential(&acme, &original.id, 1, &v2, at)
        .await
        .expect("rotate_credential");
    let stored = store.credential(&acme, &original.alias).await.expect("credential");
    assert_eq!(
        stored,
        CredentialRecord {
            version: 2,
            sealed: v2.clone(),
            updated_at: at,
            ..original.clone()
        }
    );
    assert_ne!(stored.sealed.ciphertext, original.sealed.ciphertext);
    assert_ne!(stored.sealed.wrapped_key, original.sealed.wrapped_key);
    assert_opens_to(store, &master, &original, br#"{"key":"second"}"#).await;

    let v3 = Sealed::seal(&master, credential_aad(&acme, &original.id, 3), br#"{"key":"third"}"#);
    store
        .rotate_credential(&acme, &original.id, 2, &v3, secs(at, 1))
        .await
        .expect("second rotation");
    let stored = store.credential(&acme, &original.alias).await.expect("credential");
    assert_eq!((stored.version, &stored.sealed), (3, &v3));
    assert_opens_to(store, &master, &original, br#"{"key":"third"}"#).await;
}

pub async fn rotating_from_a_stale_version_is_a_conflict(fx: &Fixture) {
    let store = fx.store();
    let master = MasterKey::generate();
    let acme = tenant(store, "acme").await;
    let original = create_credential(store, &master, &acme, "aws").await;
    let v2 = Sealed::seal(&master, credential_aad(&acme, &original.id, 2), br#"{"key":"second"}"#);
    store
        .rotate_credential(&acme, &original.id, 1, &v2, now())
        .await
        .expect("rotate_credential");
    let before = store.credential(&acme, &original.alias).await.expect("credential");

    let stale = Sealed::seal(&master, credential_aad(&acme, &original.id, 2), br#"{"key":"stale"}"#);
    assert_conflict(
        store.rotate_credential(&acme, &original.id, 1, &stale, now()).await,
        "rotation from version 1 after version 2",
    );
    assert_conflict(
        store.rotate_credential(&acme, &original.id, 5, &stale, now()).await,
        "rotation from a future version",
    );
    assert_eq!(
        store.credential(&acme, &original.alias).await.expect("credential"),
        before,
        "a refused rotation changes nothing"
    );
}

pub async fn concurrent_rotations_from_the_same_version_let_exactly_one_win(fx: &Fixture) {
    let store = fx.store();
    let master = MasterKey::generate();
    let acme = tenant(store, "acme").await;
    let original = create_credential(store, &master, &acme, "racy").await;
    let candidates: Vec<Sealed> = (0..4)
        .map(|i| {
            Sealed::seal(
                &master,
                credential_aad(&acme, &original.id, 2),
                format!(r#"{{"key":"candidate-{i}"}}"#).as_bytes(),
            )
        })
        .collect();

    let results = futures_util::future::join_all(
        candidates
            .iter()
            .map(|s| store.rotate_credential(&acme, &original.id, 1, s, now())),
    )
    .await;
    let winners: Vec<usize> = results
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.is_ok().then_some(i))
        .collect();
    assert_eq!(winners.len(), 1, "exactly one rotation wins: {results:?}");
    for (i, r) in results.into_iter().enumerate() {
        if i != winners[0] {
            assert_conflict(r, "a losing concurrent rotation");
        }
    }
    let stored = store.credential(&acme, &original.alias).await.expect("credential");
    assert_eq!(stored.version, 2);
    assert_eq!(
        stored.sealed, candidates[winners[0]],
        "the winner's sealed data is stored"
    );
}

pub async fn a_deleted_credential_is_not_found_afterwards(fx: &Fixture) {
    let store = fx.store();
    let master = MasterKey::generate();
    let acme = tenant(store, "acme").await;
    let doomed = create_credential(store, &master, &acme, "doomed").await;
    let kept = create_credential(store, &master, &acme, "kept").await;

    store
        .delete_credential(&acme, &doomed.alias)
        .await
        .expect("delete_credential");
    assert_not_found(store.credential(&acme, &doomed.alias).await, "deleted credential");
    assert_not_found(store.delete_credential(&acme, &doomed.alias).await, "second delete");
    assert_not_found(
        store
            .rotate_credential(&acme, &doomed.id, 1, &doomed.sealed, now())
            .await,
        "rotating a deleted credential",
    );
    assert_eq!(
        store.list_credentials(&acme, None, 10).await.expect("list"),
        vec![kept],
        "only the other credential remains"
    );

    let reborn = create_credential(store, &master, &acme, "doomed").await;
    assert_ne!(reborn.id, doomed.id);
    assert_eq!(
        store.credential(&acme, &doomed.alias).await.expect("credential"),
        reborn,
        "the alias can be used again"
    );
}
