//! The audit trail: appending batches to per-tenant hash chains, listing with filters and a
//! cursor, and verification catching rows tampered with directly in the database.

use std::sync::Arc;

use keystile::audit::{self, Actor, AuditEvent, AuditFilter, GENESIS_HASH, system_tenant};
use keystile::domain::TenantId;
use keystile::store::Store;

use crate::fixtures::*;
use crate::harness::Fixture;

/// A proxied-call event with every field set.
fn proxied(tenant: &TenantId, key: &str, credential: &str, mode: &str) -> AuditEvent {
    let mut e = AuditEvent::new(tenant.clone(), Actor::Key(key.to_owned()), "proxy.request");
    e.proxy_mode = Some(mode.to_owned());
    e.credential = Some(credential.to_owned());
    e.credential_version = Some(3);
    e.method = Some("GET".into());
    e.target_host = Some("api.example.com".into());
    e.target_path = Some("/v1/items?page=_".into());
    e.status = Some(200);
    e.latency_ms = Some(12);
    e.bytes = Some(345);
    e.client_ip = Some("127.0.0.1".into());
    e
}

fn all(limit: u32) -> AuditFilter {
    AuditFilter {
        limit,
        ..AuditFilter::default()
    }
}

async fn append(store: &dyn Store, events: &[AuditEvent]) -> Vec<keystile::audit::AuditRecord> {
    store.append_audit(events).await.expect("append_audit")
}

pub async fn appending_a_batch_chains_its_events_in_order_and_round_trips_every_field(fx: &Fixture) {
    let t = tenant(fx.store(), "acme").await;
    let events: Vec<_> = (0..3)
        .map(|i| proxied(&t, &format!("k{i}"), "github", "path"))
        .collect();
    let records = append(fx.store(), &events).await;
    assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(records[0].prev_hash, GENESIS_HASH);
    assert_eq!(records[1].prev_hash, records[0].hash);
    assert_eq!(records[2].prev_hash, records[1].hash);
    assert_eq!(records[0].hash, events[0].chain_hash(1, GENESIS_HASH));
    assert_eq!(
        fx.store().audit_head(&t).await.expect("head"),
        Some((3, records[2].hash.clone()))
    );
    let listed = fx.store().list_audit(&t, &all(10)).await.expect("list");
    let newest_first: Vec<_> = records.iter().rev().cloned().collect();
    assert_eq!(listed, newest_first, "stored events round-trip field for field");
}

pub async fn the_chain_continues_across_batches_and_each_tenant_has_its_own(fx: &Fixture) {
    let a = tenant(fx.store(), "acme").await;
    let b = tenant(fx.store(), "globex").await;
    let first = append(
        fx.store(),
        &[proxied(&a, "k", "gh", "path"), proxied(&b, "k", "gh", "route")],
    )
    .await;
    let second = append(
        fx.store(),
        &[proxied(&b, "k", "gh", "path"), proxied(&a, "k", "gh", "execute")],
    )
    .await;
    assert_eq!((first[0].seq, first[1].seq), (1, 1), "each tenant starts its own chain");
    assert_eq!((second[0].seq, second[1].seq), (2, 2));
    assert_eq!(
        second[1].prev_hash, first[0].hash,
        "acme's chain continues across batches"
    );
    assert_eq!(second[0].prev_hash, first[1].hash, "globex's too");
    let a_events = fx.store().list_audit(&a, &all(10)).await.expect("list");
    assert!(
        a_events.iter().all(|r| r.event.tenant_id == a),
        "no event crosses tenants"
    );
    assert_eq!(a_events.len(), 2);
    for t in [&a, &b] {
        let v = audit::verify(fx.store(), t).await.expect("verify");
        assert!(v.ok, "{v:?}");
        assert_eq!(v.events, 2);
    }
    let system = audit::verify(fx.store(), &system_tenant()).await.expect("verify");
    assert!(system.ok && system.events == 0, "an empty chain verifies");
}

pub async fn listing_filters_by_every_field_and_pages_with_a_cursor(fx: &Fixture) {
    let t = tenant(fx.store(), "acme").await;
    let mut events = Vec::new();
    for i in 0..7 {
        let mut e = proxied(&t, if i % 2 == 0 { "key-even" } else { "key-odd" }, "github", "path");
        e.time = secs(e.time, i);
        events.push(e);
    }
    let mut exec = proxied(&t, "key-even", "openai", "execute");
    exec.time = secs(exec.time, 10);
    events.push(exec);
    let mut fetch = AuditEvent::new(t.clone(), Actor::Project("proj-1".into()), "secret.fetch");
    fetch.time = secs(fetch.time, 11);
    events.push(fetch);
    let records = append(fx.store(), &events).await;
    let tenant_id = &t;
    let count = |f: AuditFilter| async move { fx.store().list_audit(tenant_id, &f).await.expect("list").len() };
    assert_eq!(
        count(AuditFilter {
            credential: Some("openai".into()),
            ..all(100)
        })
        .await,
        1
    );
    assert_eq!(
        count(AuditFilter {
            key: Some("key-even".into()),
            ..all(100)
        })
        .await,
        5
    );
    assert_eq!(
        count(AuditFilter {
            project: Some("proj-1".into()),
            ..all(100)
        })
        .await,
        1
    );
    assert_eq!(
        count(AuditFilter {
            key: Some("proj-1".into()),
            ..all(100)
        })
        .await,
        0
    );
    assert_eq!(
        count(AuditFilter {
            action: Some("secret.fetch".into()),
            ..all(100)
        })
        .await,
        1
    );
    assert_eq!(
        count(AuditFilter {
            mode: Some("execute".into()),
            ..all(100)
        })
        .await,
        1
    );
    let base = events[0].time;
    let window = AuditFilter {
        since: Some(secs(base, 2)),
        until: Some(secs(base, 5)),
        ..all(100)
    };
    assert_eq!(count(window).await, 3, "since is inclusive, until exclusive");

    // Pages of 4, newest first, every event exactly once.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = fx
            .store()
            .list_audit(
                &t,
                &AuditFilter {
                    before_seq: cursor,
                    ..all(4)
                },
            )
            .await
            .expect("page");
        seen.extend(page.iter().map(|r| r.seq));
        if page.len() < 4 {
            break;
        }
        cursor = page.last().map(|r| r.seq);
    }
    let expected: Vec<i64> = records.iter().rev().map(|r| r.seq).collect();
    assert_eq!(seen, expected);
    let other = tenant(fx.store(), "globex").await;
    assert!(fx.store().list_audit(&other, &all(100)).await.expect("list").is_empty());
}

/// Five events in one tenant's chain, returned with the tenant.
async fn chain_of_five(fx: &Fixture) -> (TenantId, Vec<keystile::audit::AuditRecord>) {
    let t = tenant(fx.store(), "acme").await;
    let mut records = append(
        fx.store(),
        &[proxied(&t, "k", "gh", "path"), proxied(&t, "k", "gh", "path")],
    )
    .await;
    records.extend(
        append(
            fx.store(),
            &[
                proxied(&t, "k", "gh", "route"),
                proxied(&t, "k", "gh", "route"),
                proxied(&t, "k", "gh", "execute"),
            ],
        )
        .await,
    );
    let v = audit::verify(fx.store(), &t).await.expect("verify");
    assert!(v.ok && v.events == 5, "{v:?}");
    (t, records)
}

pub async fn verification_catches_an_edited_row(fx: &Fixture) {
    let (t, records) = chain_of_five(fx).await;
    fx.execute(
        "UPDATE audit_events SET status = 404 WHERE id = $1",
        &records[2].event.id,
    )
    .await;
    let v = audit::verify(fx.store(), &t).await.expect("verify");
    assert!(!v.ok);
    assert_eq!(v.first_bad_event.as_deref(), Some(records[2].event.id.as_str()));
    assert_eq!(v.events, 2, "the two events before it are intact");
}

pub async fn verification_catches_an_edit_that_also_recomputes_the_rows_hash(fx: &Fixture) {
    let (t, records) = chain_of_five(fx).await;
    // A forger who rewrites a row and its own hash still breaks the next link.
    let mut forged = records[1].event.clone();
    forged.credential = Some("other".into());
    let hash = forged.chain_hash(2, &records[0].hash);
    fx.execute(
        "UPDATE audit_events SET credential = 'other' WHERE id = $1",
        &records[1].event.id,
    )
    .await;
    fx.execute(
        "UPDATE audit_events SET hash = $1 WHERE seq = 2 AND credential = 'other'",
        &hash,
    )
    .await;
    let v = audit::verify(fx.store(), &t).await.expect("verify");
    assert!(!v.ok);
    assert_eq!(v.first_bad_event.as_deref(), Some(records[2].event.id.as_str()));
}

pub async fn verification_catches_a_deleted_row(fx: &Fixture) {
    let (t, records) = chain_of_five(fx).await;
    fx.execute("DELETE FROM audit_events WHERE id = $1", &records[1].event.id)
        .await;
    let v = audit::verify(fx.store(), &t).await.expect("verify");
    assert!(!v.ok);
    assert_eq!(v.first_bad_event.as_deref(), Some(records[2].event.id.as_str()));
    assert_eq!(v.events, 1);
}

pub async fn verification_catches_the_last_row_deleted(fx: &Fixture) {
    let (t, records) = chain_of_five(fx).await;
    fx.execute("DELETE FROM audit_events WHERE id = $1", &records[4].event.id)
        .await;
    let v = audit::verify(fx.store(), &t).await.expect("verify");
    assert!(!v.ok, "the chain no longer reaches its head");
    assert_eq!(v.first_bad_event.as_deref(), Some(records[3].event.id.as_str()));
}

pub async fn verification_catches_two_swapped_rows(fx: &Fixture) {
    let (t, records) = chain_of_five(fx).await;
    fx.execute(
        "UPDATE audit_events SET seq = -2 WHERE tenant_id = $1 AND seq = 2",
        t.as_str(),
    )
    .await;
    fx.execute(
        "UPDATE audit_events SET seq = 2 WHERE tenant_id = $1 AND seq = 3",
        t.as_str(),
    )
    .await;
    fx.execute(
        "UPDATE audit_events SET seq = 3 WHERE tenant_id = $1 AND seq = -2",
        t.as_str(),
    )
    .await;
    let v = audit::verify(fx.store(), &t).await.expect("verify");
    assert!(!v.ok);
    assert_eq!(v.first_bad_event.as_deref(), Some(records[2].event.id.as_str()));
    assert_eq!(v.events, 1);
}

pub async fn two_stores_on_one_database_appending_at_once_never_fork_a_chain(fx: &Fixture) {
    let t = tenant(fx.store(), "acme").await;
    let other: Arc<dyn Store> = Arc::from(fx.reopen().await.expect("second store"));
    let mut tasks = Vec::new();
    for writer in 0..2 {
        let store = other.clone();
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                let batch: Vec<_> = (0..3)
                    .map(|_| proxied(&t, &format!("w{writer}"), "gh", "path"))
                    .collect();
                store.append_audit(&batch).await.expect("append from the second store");
            }
        }));
    }
    for _ in 0..10 {
        append(
            fx.store(),
            &[proxied(&t, "w-main", "gh", "path"), proxied(&t, "w-main", "gh", "path")],
        )
        .await;
    }
    for task in tasks {
        task.await.expect("writer");
    }
    let v = audit::verify(fx.store(), &t).await.expect("verify");
    assert!(v.ok, "{v:?}");
    assert_eq!(v.events, 2 * 10 * 3 + 10 * 2);
}

pub async fn indexing_a_journal_records_its_checkpoint_in_the_same_transaction(fx: &Fixture) {
    let t = tenant(fx.store(), "acme").await;
    let journal = format!("{}-0000000001", uuid::Uuid::new_v4().simple());
    let store = fx.store();
    assert_eq!(
        store.audit_journal_checkpoint(&journal).await.expect("checkpoint"),
        None
    );
    let first: Vec<_> = (0..2).map(|_| proxied(&t, "k1", "github", "path")).collect();
    store.index_audit_journal(&first, &journal, 100).await.expect("index");
    assert_eq!(
        store.audit_journal_checkpoint(&journal).await.expect("checkpoint"),
        Some(100)
    );
    let second = vec![proxied(&t, "k2", "github", "route")];
    store.index_audit_journal(&second, &journal, 250).await.expect("index");
    assert_eq!(
        store.audit_journal_checkpoint(&journal).await.expect("checkpoint"),
        Some(250)
    );
    assert_eq!(store.list_audit(&t, &all(10)).await.expect("list").len(), 3);
    assert!(audit::verify(store, &t).await.expect("verify").ok);
    // A failed batch moves neither the chain nor the checkpoint.
    let mut bad = proxied(&t, "k3", "github", "path");
    bad.id = first[0].id.clone(); // ids are unique
    assert!(store.index_audit_journal(&[bad], &journal, 400).await.is_err());
    assert_eq!(
        store.audit_journal_checkpoint(&journal).await.expect("checkpoint"),
        Some(250)
    );
    assert_eq!(store.audit_head(&t).await.expect("head").map(|h| h.0), Some(3));
    store.forget_audit_journal(&journal).await.expect("forget");
    assert_eq!(
        store.audit_journal_checkpoint(&journal).await.expect("checkpoint"),
        None
    );
}

pub async fn a_batch_larger_than_one_insert_is_chained_whole(fx: &Fixture) {
    let t = tenant(fx.store(), "acme").await;
    let other = tenant(fx.store(), "globex").await;
    // 250 events over two tenants: inserts of 64, 64, 64, 32, 16, 8 and 2 rows; interleaved chains.
    let events: Vec<_> = (0..250)
        .map(|i| proxied(if i % 3 == 0 { &other } else { &t }, &format!("k{i}"), "github", "path"))
        .collect();
    let records = append(fx.store(), &events).await;
    assert_eq!(records.len(), 250);
    assert_eq!(records.last().map(|r| r.event.id.clone()), Some(events[249].id.clone()));
    let ours = audit::verify(fx.store(), &t).await.expect("verify");
    let theirs = audit::verify(fx.store(), &other).await.expect("verify");
    assert!(ours.ok && theirs.ok, "{ours:?} {theirs:?}");
    assert_eq!(ours.events + theirs.events, 250);
    assert_eq!(theirs.events, 84);
}
