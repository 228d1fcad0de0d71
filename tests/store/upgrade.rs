//! Upgrading in place: a database written by the last landing's store (its migrations 1–7,
//! its bookkeeping table, timestamps as text or `TIMESTAMPTZ`, unkeyed audit chains) is
//! opened by today's store, migrated, and reads back exactly what was written.

use keystile::audit::{self, Actor, AuditFilter, Chains, LinkVersion, Outcome, system_tenant};
use keystile::domain::{ApiKeyId, ProjectId, Surface};
use keystile::store::{SqlStore, Store};

use crate::audit::chain_key;
use crate::harness::Fixture;
use crate::legacy_data::*;

/// How many migrations this build has (the seven the last landing had, plus the new ones).
const MIGRATIONS: i64 = 8;

async fn applied(store: &SqlStore) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(store.pool())
        .await
        .expect("migrations recorded")
}

pub async fn a_database_of_the_last_landing_upgrades_in_place_and_reads_back_exactly(fx: &Fixture) {
    let store = fx.upgraded_legacy_database().await.expect("the old database opens");
    assert_eq!(
        applied(&store).await,
        MIGRATIONS,
        "the old bookkeeping adopted, the rest applied"
    );
    let old_table: i64 = sqlx::query_scalar(match store.dialect() {
        keystile::store::Dialect::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE name = 'keystile_migrations'",
        keystile::store::Dialect::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = 'keystile_migrations'"
        }
    })
    .fetch_one(store.pool())
    .await
    .expect("count");
    assert_eq!(old_table, 0, "the old bookkeeping table is gone");
    let m = master();
    let (a, g) = (acme(), globex());

    assert_eq!(
        store.tenant(&a.id).await.expect("acme"),
        a,
        "plan, status and time exact"
    );
    assert_eq!(store.tenant(&g.id).await.expect("globex"), g);

    let mut roles = vec![role(&a, 1, 0)];
    roles.extend((3..=8).map(|n| role(&a, n, n as usize % 6)));
    roles.sort_by(|x, y| x.name.as_str().cmp(y.name.as_str()));
    assert_eq!(store.list_roles(&a.id).await.expect("roles"), roles);
    for r in &roles {
        let n: u32 = r.name.as_str().trim_start_matches("role ").parse().expect("number");
        let i = if n == 1 { 0 } else { n as usize % 6 };
        let expected = key(&a, r, n, i);
        let grant = store
            .api_key_by_hash(&expected.key_hash)
            .await
            .expect("by hash")
            .expect("the key is there");
        assert_eq!(grant.key, expected, "key {n}: every timestamp to the microsecond");
        assert_eq!(grant.role, *r);
        assert_eq!(grant.tenant_plan, a.plan);
    }

    for n in 1..=3u32 {
        let mut expected = credential(&a, n, n as usize);
        let stored = store.credential(&a.id, &expected.alias).await.expect("credential");
        let version = if n == 2 { 2 } else { 1 };
        let plain = stored
            .sealed
            .open(&m, credential_aad(&a.id, &stored.id, version))
            .expect("the sealed bytes are unchanged");
        assert_eq!(plain.as_slice(), credential_plaintext(n, version).as_slice());
        expected.sealed = stored.sealed.clone();
        expected.version = version;
        assert_eq!(stored, expected, "credential {n}");
    }

    assert_eq!(store.list_routes(&a.id).await.expect("routes"), vec![route(&a)]);

    let p = project(&a);
    assert_eq!(store.project(&a.id, &p.id).await.expect("project"), p);
    assert_eq!(
        store.project_keys(&a.id, &p.id).await.expect("keys"),
        store_keys_sorted(&p),
        "the rotated key keeps its end of validity"
    );
    let secrets = store.list_secrets(&a.id, &p.id, None).await.expect("secrets");
    assert_eq!(secrets.len(), 2);
    for s in &secrets {
        let n: u32 = s.name.as_str().trim_start_matches("SECRET_").parse().expect("number");
        let version = if n == 2 { 2 } else { 1 };
        assert_eq!(s.version, version);
        let plain = s.sealed.open(&m, secret_aad(&a.id, &s.id, version)).expect("opens");
        assert_eq!(plain.as_slice(), secret_plaintext(n, version).as_slice());
        let mut expected = secret(&p, n, n as usize);
        expected.sealed = s.sealed.clone();
        expected.version = version;
        if n == 2 {
            expected.updated_at = t(3);
        }
        assert_eq!(*s, expected);
    }
    assert!(
        !store.consume_nonce(&p.id, "nonce-1", t(5), t(2)).await.expect("nonce"),
        "a nonce recorded before the upgrade is still a replay"
    );
    assert_eq!(store.usage(&a.id, "2026-05").await.expect("usage"), 42);
    assert_eq!(
        store
            .audit_journal_checkpoint("0123456789abcdef0123456789abcdef-0000000001")
            .await
            .expect("journal checkpoint"),
        Some(123)
    );

    upgraded_audit_chains_verify_once_sealed(&store).await;

    // Opening it again applies nothing twice and changes nothing.
    drop(store);
    let again = fx.upgraded_legacy_database().await.expect("a second copy opens");
    assert_eq!(applied(&again).await, MIGRATIONS);
}

/// The two keys the fixture's project has, oldest first.
fn store_keys_sorted(p: &keystile::store::ProjectRecord) -> Vec<keystile::store::ProjectKeyRecord> {
    let mut first = project_key(p, 1, 1);
    first.valid_until = Some(t(5));
    let mut keys = vec![first, project_key(p, 2, 2)];
    keys.sort_by_key(|k| (k.created_at, k.id.as_str().to_owned()));
    keys
}

/// The old chains are unkeyed: they verify as a prefix once sealed with a keyed event.
async fn upgraded_audit_chains_verify_once_sealed(store: &SqlStore) {
    let (a, g) = (acme(), globex());
    let events = store
        .list_audit(
            &a.id,
            &AuditFilter {
                limit: 10,
                ..AuditFilter::default()
            },
        )
        .await
        .expect("events");
    assert_eq!(events.len(), 3);
    let oldest = &events[2];
    assert_eq!(oldest.link, LinkVersion::Sha256);
    assert_eq!(oldest.event.time, t(0));
    assert_eq!(
        oldest.event.actor,
        Actor::Key(ApiKeyId::parse("00000000-0000-4000-8000-000000000201").expect("id"))
    );
    assert_eq!(oldest.event.proxy_mode, Some(Surface::Path));
    assert_eq!(oldest.event.client_ip, Some("2001:db8::1".parse().expect("ip")));
    assert_eq!(oldest.event.status, Some(200));
    let chains = Chains::new(chain_key());
    let mut unkeyed = vec![system_tenant(), a.id.clone(), g.id.clone()];
    unkeyed.sort();
    assert_eq!(store.unkeyed_audit_chains().await.expect("unkeyed"), unkeyed);
    for t in &unkeyed {
        let v = chains.verify(store, t).await.expect("verify");
        assert_eq!(v.reason, Some("the chain's newest event is not keyed"), "{v:?}");
    }
    assert_eq!(audit::seal_legacy_chains(store, &chains).await.expect("seal"), 3);
    assert!(store.unkeyed_audit_chains().await.expect("unkeyed").is_empty());
    assert_eq!(
        audit::seal_legacy_chains(store, &chains).await.expect("seal"),
        0,
        "once"
    );
    for (t, events) in [(&a.id, 4), (&g.id, 3), (&system_tenant(), 2)] {
        let v = chains.verify(store, t).await.expect("verify");
        assert!(v.ok && v.events == events, "{t}: {v:?}");
    }
    let g_events = store
        .list_audit(
            &g.id,
            &AuditFilter {
                limit: 10,
                ..AuditFilter::default()
            },
        )
        .await
        .expect("events");
    assert_eq!(g_events[0].event.action.as_str(), "audit.chain_keyed");
    assert_eq!(g_events[0].link, LinkVersion::Keyed);
    let fetch = &g_events[2].event;
    assert_eq!(
        fetch.actor,
        Actor::Project(ProjectId::parse("00000000-0000-4000-8000-000000000500").expect("id"))
    );
    assert_eq!(fetch.outcome, Outcome::error("forbidden"));
    // The old prefix is now covered by a keyed hash: editing it breaks the chain.
    sqlx::query("UPDATE audit_events SET latency_ms = 99 WHERE tenant_id = $1 AND seq = 1")
        .bind(a.id.as_str())
        .execute(store.pool())
        .await
        .expect("edit");
    assert!(!chains.verify(store, &a.id).await.expect("verify").ok);
}
