//! Connection, migrations, tenants and timestamp fidelity.

use chrono::{DateTime, TimeZone as _, Utc};
use keystile::crypto::{MasterKey, Sealed};
use keystile::store::{CredentialStatus, TenantStatus, now};

use crate::fixtures::*;
use crate::harness::Fixture;

pub async fn ping_answers_on_a_fresh_database(fx: &Fixture) {
    fx.store().ping().await.expect("ping");
}

pub async fn opening_the_same_database_again_applies_no_migration_twice(fx: &Fixture) {
    let applied = fx.applied_migrations().await;
    assert!(
        applied >= 1,
        "a fresh database has its migrations recorded, got {applied}"
    );
    let acme = fx.store().ensure_tenant("acme").await.expect("ensure_tenant");
    let role = create_role(fx.store(), &acme.id, "readers").await;

    for attempt in 1..=2 {
        let again = fx
            .reopen()
            .await
            .unwrap_or_else(|e| panic!("reopening (attempt {attempt}): {e:#}"));
        again.ping().await.expect("ping on the reopened store");
        assert_eq!(
            fx.applied_migrations().await,
            applied,
            "reopening must not re-apply migrations"
        );
        assert_eq!(again.ensure_tenant("acme").await.expect("ensure_tenant"), acme);
        assert_eq!(
            again.list_roles(&acme.id).await.expect("list_roles"),
            vec![role.clone()]
        );
    }
    // The first store keeps working alongside the others.
    fx.store().ping().await.expect("ping on the first store");
}

pub async fn ensure_tenant_is_idempotent_and_returns_the_same_tenant(fx: &Fixture) {
    let store = fx.store();
    let first = store.ensure_tenant("acme").await.expect("ensure_tenant");
    assert_eq!(first.name, "acme");
    assert_eq!(first.status, TenantStatus::Active);
    let second = store.ensure_tenant("acme").await.expect("ensure_tenant again");
    assert_eq!(second, first, "same id, name, status and created_at");

    let other = store.ensure_tenant("globex").await.expect("ensure_tenant globex");
    assert_ne!(other.id, first.id);
    assert_eq!(other.name, "globex");
    assert_eq!(store.ensure_tenant("acme").await.expect("ensure_tenant").id, first.id);
}

pub async fn concurrent_ensure_tenant_calls_agree_on_one_tenant(fx: &Fixture) {
    let store = fx.store();
    let results = futures_util::future::join_all((0..8).map(|_| store.ensure_tenant("racy"))).await;
    let tenants: Vec<_> = results
        .into_iter()
        .map(|r| r.expect("concurrent ensure_tenant"))
        .collect();
    assert!(
        tenants.iter().all(|t| t == &tenants[0]),
        "all callers get the same tenant: {tenants:?}"
    );
}

pub async fn an_ensured_tenant_that_was_terminated_stays_terminated(fx: &Fixture) {
    let acme = fx.store().ensure_tenant("acme").await.expect("ensure_tenant");
    fx.execute(
        "UPDATE tenants SET status = 'terminated' WHERE id = $1",
        acme.id.as_str(),
    )
    .await;
    let again = fx.store().ensure_tenant("acme").await.expect("ensure_tenant");
    assert_eq!(again.id, acme.id);
    assert_eq!(again.status, TenantStatus::Terminated);
}

/// Instants that stress the encodings: now, whole seconds, single microseconds, before the
/// epoch and far in the future.
fn interesting_instants() -> Vec<DateTime<Utc>> {
    vec![
        now(),
        Utc.with_ymd_and_hms(2024, 2, 29, 12, 0, 0)
            .single()
            .expect("valid date"),
        DateTime::from_timestamp_micros(1_700_000_000_000_001).expect("in range"),
        DateTime::from_timestamp_micros(1_700_000_000_123_000).expect("in range"),
        DateTime::from_timestamp_micros(-1).expect("in range"),
        DateTime::from_timestamp_micros(32_503_679_999_999_999).expect("in range"),
    ]
}

pub async fn timestamps_round_trip_exactly(fx: &Fixture) {
    let store = fx.store();
    let master = MasterKey::generate();
    let acme = tenant(store, "acme").await;
    let tenant_record = store.ensure_tenant("acme").await.expect("ensure_tenant");
    assert_eq!(
        tenant_record.created_at.timestamp_subsec_nanos() % 1_000,
        0,
        "tenant created_at is whole microseconds"
    );

    for (i, t) in interesting_instants().into_iter().enumerate() {
        let mut role = role(&acme, &format!("role {i}"));
        role.created_at = t;
        store.create_role(&role).await.expect("create_role");
        assert_eq!(
            store.role(&acme, &role.id).await.expect("role").created_at,
            t,
            "role created_at {t}"
        );

        let mut key = api_key(&acme, &role.id, &format!("key {i}"));
        key.created_at = t;
        key.expires_at = Some(t);
        store.create_api_key(&key).await.expect("create_api_key");
        store.touch_api_key(&key.id, t).await.expect("touch_api_key");
        store.revoke_api_key(&acme, &key.id, t).await.expect("revoke_api_key");
        let stored = store
            .api_key_by_hash(&key.key_hash)
            .await
            .expect("api_key_by_hash")
            .expect("key exists")
            .key;
        assert_eq!(stored.created_at, t, "key created_at {t}");
        assert_eq!(stored.expires_at, Some(t), "key expires_at {t}");
        assert_eq!(stored.last_used_at, Some(t), "key last_used_at {t}");
        assert_eq!(stored.revoked_at, Some(t), "key revoked_at {t}");

        let mut cred = credential(&master, &acme, &format!("cred-{i}"), b"{\"key\":\"sk\"}");
        cred.created_at = t;
        cred.updated_at = t;
        cred.status = CredentialStatus::Frozen;
        store.create_credential(&cred).await.expect("create_credential");
        let stored = store.credential(&acme, &cred.alias).await.expect("credential");
        assert_eq!(
            (stored.created_at, stored.updated_at),
            (t, t),
            "credential timestamps {t}"
        );

        let sealed = Sealed::seal(&master, credential_aad(&acme, &cred.id, 2), b"{\"key\":\"sk2\"}");
        store
            .rotate_credential(&acme, &cred.id, 1, &sealed, t)
            .await
            .expect("rotate_credential");
        let stored = store.credential(&acme, &cred.alias).await.expect("credential");
        assert_eq!(stored.updated_at, t, "rotated updated_at {t}");
    }
}

pub async fn a_database_whose_applied_migration_differs_from_its_file_is_refused(fx: &Fixture) {
    // As if a released migration file had been edited after it was applied.
    sqlx::query("UPDATE _sqlx_migrations SET checksum = $1 WHERE version = 1")
        .bind(vec![0u8; 48])
        .execute(fx.pool())
        .await
        .expect("tamper with the recorded checksum");
    let refused = fx.reopen().await.err().expect("the store refuses to start");
    let text = format!("{refused:#}");
    assert!(
        text.contains("migration 1 was previously applied but has been modified"),
        "{text}"
    );
}
