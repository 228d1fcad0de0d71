//! The audit trail: appending batches to per-tenant keyed chains, listing with filters and a
//! cursor, and verification catching rows tampered with directly in the database — by someone
//! without the master key, even one who recomputes hashes, rewinds the head or renumbers.

use std::sync::Arc;

use keystile::audit::checkpoint::Loaded;
use keystile::audit::event::{CredentialName, Host, Method, TargetPath};
use keystile::audit::{
    self, Actor, AuditEvent, AuditFilter, AuditRecord, ChainHead, ChainKey, Chains, Checkpoints, GENESIS_HASH,
    LinkVersion, system_tenant,
};
use keystile::crypto::MasterKey;
use keystile::domain::{ApiKeyId, ProjectId, Surface, TenantId};
use keystile::store::{JournalMark, Store};

use crate::fixtures::*;
use crate::harness::Fixture;

/// The chain key of these tests.
pub fn chain_key() -> ChainKey {
    ChainKey::from_bytes([9; 32])
}

fn chains() -> Chains {
    Chains::new(chain_key())
}

/// A fixed API key id per number.
fn key(n: u128) -> ApiKeyId {
    ApiKeyId::parse(&uuid::Uuid::from_u128(n).to_string()).expect("uuid")
}

/// A proxied-call event with every field set.
fn proxied(tenant: &TenantId, actor: &ApiKeyId, credential: &str, mode: Surface) -> AuditEvent {
    let mut e = AuditEvent::new(tenant.clone(), Actor::Key(actor.clone()), "proxy.request");
    e.proxy_mode = Some(mode);
    e.credential = Some(CredentialName::from(credential));
    e.credential_version = Some(3);
    e.method = Some(Method::parse("GET"));
    e.target_host = Some(Host::from("api.example.com"));
    e.target_path = Some(TargetPath::from("/v1/items?page=_"));
    e.status = Some(200);
    e.latency_ms = Some(12);
    e.bytes = Some(345);
    e.client_ip = Some("127.0.0.1".parse().expect("ip"));
    e
}

fn all(limit: u32) -> AuditFilter {
    AuditFilter {
        limit,
        ..AuditFilter::default()
    }
}

async fn append(store: &dyn Store, events: &[AuditEvent]) -> Vec<AuditRecord> {
    store
        .append_audit(events.to_vec(), &chain_key(), None)
        .await
        .expect("append_audit")
}

async fn verify(fx: &Fixture, t: &TenantId) -> audit::Verification {
    chains().verify(fx.store(), t).await.expect("verify")
}

pub async fn appending_a_batch_chains_its_events_in_order_and_round_trips_every_field(fx: &Fixture) {
    let t = tenant(fx.store(), "acme").await;
    let events: Vec<_> = (0..3).map(|i| proxied(&t, &key(i), "github", Surface::Path)).collect();
    let records = append(fx.store(), &events).await;
    assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(records[0].prev_hash, GENESIS_HASH);
    assert_eq!(records[1].prev_hash, records[0].hash);
    assert_eq!(records[2].prev_hash, records[1].hash);
    assert!(records.iter().all(|r| r.link == LinkVersion::Keyed));
    assert_eq!(
        records[0].hash,
        chain_key().hash(LinkVersion::Keyed, 1, GENESIS_HASH, &events[0])
    );
    assert_eq!(
        fx.store().audit_head(&t).await.expect("head"),
        Some(ChainHead {
            seq: 3,
            hash: records[2].hash.clone()
        })
    );
    let listed = fx.store().list_audit(&t, &all(10)).await.expect("list");
    let newest_first: Vec<_> = records.iter().rev().cloned().collect();
    assert_eq!(listed, newest_first, "stored events round-trip field for field");
}

pub async fn the_chain_continues_across_batches_and_each_tenant_has_its_own(fx: &Fixture) {
    let a = tenant(fx.store(), "acme").await;
    let b = tenant(fx.store(), "globex").await;
    let k = key(1);
    let first = append(
        fx.store(),
        &[
            proxied(&a, &k, "gh", Surface::Path),
            proxied(&b, &k, "gh", Surface::Route),
        ],
    )
    .await;
    let second = append(
        fx.store(),
        &[
            proxied(&b, &k, "gh", Surface::Path),
            proxied(&a, &k, "gh", Surface::Execute),
        ],
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
        let v = verify(fx, t).await;
        assert!(v.ok, "{v:?}");
        assert_eq!(v.events, 2);
    }
    let system = verify(fx, &system_tenant()).await;
    assert!(system.ok && system.events == 0, "an empty chain verifies");
}

pub async fn listing_filters_by_every_field_and_pages_with_a_cursor(fx: &Fixture) {
    let t = tenant(fx.store(), "acme").await;
    let (even, odd) = (key(2), key(3));
    let mut events = Vec::new();
    for i in 0..7 {
        let mut e = proxied(&t, if i % 2 == 0 { &even } else { &odd }, "github", Surface::Path);
        e.time = secs(e.time, i);
        events.push(e);
    }
    let mut exec = proxied(&t, &even, "openai", Surface::Execute);
    exec.time = secs(exec.time, 10);
    events.push(exec);
    let project = ProjectId::generate();
    let mut fetch = AuditEvent::new(t.clone(), Actor::Project(project.clone()), "secret.fetch");
    fetch.time = secs(fetch.time, 11);
    events.push(fetch);
    let records = append(fx.store(), &events).await;
    let tenant_id = &t;
    let count = |f: AuditFilter| async move { fx.store().list_audit(tenant_id, &f).await.expect("list").len() };
    let by = |f: fn(&mut AuditFilter)| {
        let mut filter = all(100);
        f(&mut filter);
        filter
    };
    assert_eq!(count(by(|f| f.credential = Some("openai".into()))).await, 1);
    let even_text = even.to_string();
    assert_eq!(
        count(AuditFilter {
            key: Some(even_text),
            ..all(100)
        })
        .await,
        5
    );
    assert_eq!(
        count(AuditFilter {
            project: Some(project.to_string()),
            ..all(100)
        })
        .await,
        1
    );
    assert_eq!(
        count(AuditFilter {
            key: Some(project.to_string()),
            ..all(100)
        })
        .await,
        0,
        "a project id is not a key"
    );
    assert_eq!(count(by(|f| f.action = Some("secret.fetch".into()))).await, 1);
    assert_eq!(count(by(|f| f.mode = Some(Surface::Execute))).await, 1);
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
async fn chain_of_five(fx: &Fixture) -> (TenantId, Vec<AuditRecord>) {
    let t = tenant(fx.store(), "acme").await;
    let k = key(7);
    let mut records = append(
        fx.store(),
        &[
            proxied(&t, &k, "gh", Surface::Path),
            proxied(&t, &k, "gh", Surface::Path),
        ],
    )
    .await;
    records.extend(
        append(
            fx.store(),
            &[
                proxied(&t, &k, "gh", Surface::Route),
                proxied(&t, &k, "gh", Surface::Route),
                proxied(&t, &k, "gh", Surface::Execute),
            ],
        )
        .await,
    );
    let v = verify(fx, &t).await;
    assert!(v.ok && v.events == 5, "{v:?}");
    (t, records)
}

fn id(r: &AuditRecord) -> String {
    r.event.id.to_string()
}

/// Rewrites a row's hash columns, link version and sequence number directly.
async fn rewrite(fx: &Fixture, t: &TenantId, old_seq: i64, r: &AuditRecord) {
    sqlx::query(
        "UPDATE audit_events SET seq = $3, prev_hash = $4, hash = $5, link = $6, credential = $7 \
         WHERE tenant_id = $1 AND seq = $2",
    )
    .bind(t.as_str())
    .bind(old_seq)
    .bind(r.seq)
    .bind(r.prev_hash.as_str())
    .bind(r.hash.as_str())
    .bind(r.link.as_i64())
    .bind(r.event.credential.as_ref().map(|c| c.as_str().to_owned()))
    .execute(fx.pool())
    .await
    .expect("rewrite row");
}

async fn set_head(fx: &Fixture, t: &TenantId, seq: i64, hash: &str) {
    sqlx::query("UPDATE audit_heads SET seq = $2, hash = $3 WHERE tenant_id = $1")
        .bind(t.as_str())
        .bind(seq)
        .bind(hash)
        .execute(fx.pool())
        .await
        .expect("rewind head");
}

/// Relinks `records` (renumbered from 1) the way a forger would, with `link` and `key`,
/// writes them over the rows they came from, and moves the head to the last one.
async fn forge(fx: &Fixture, t: &TenantId, records: &[(i64, AuditRecord)], link: LinkVersion, key: &ChainKey) {
    let mut prev = GENESIS_HASH.to_owned();
    let mut last = None;
    for (n, (old_seq, r)) in records.iter().enumerate() {
        let seq = n as i64 + 1;
        let hash = key.hash(link, seq, &prev, &r.event);
        let forged = AuditRecord {
            seq,
            event: r.event.clone(),
            link,
            prev_hash: std::mem::replace(&mut prev, hash.clone()),
            hash,
        };
        rewrite(fx, t, *old_seq, &forged).await;
        last = Some(forged);
    }
    let last = last.expect("something to forge");
    set_head(fx, t, last.seq, &last.hash).await;
}

pub async fn verification_catches_an_edited_row(fx: &Fixture) {
    let (t, records) = chain_of_five(fx).await;
    fx.execute("UPDATE audit_events SET status = 404 WHERE id = $1", &id(&records[2]))
        .await;
    let v = verify(fx, &t).await;
    assert!(!v.ok);
    assert_eq!(v.first_bad_event, Some(id(&records[2])));
    assert_eq!(v.events, 2, "the two events before it are intact");
}

pub async fn verification_catches_an_edit_that_also_recomputes_the_rows_hash(fx: &Fixture) {
    let (t, records) = chain_of_five(fx).await;
    // Even with the chain key, rewriting one row and its own hash breaks the next link.
    let mut forged = records[1].clone();
    forged.event.credential = Some(CredentialName::from("other"));
    forged.hash = chain_key().hash(LinkVersion::Keyed, 2, &records[0].hash, &forged.event);
    rewrite(fx, &t, 2, &forged).await;
    let v = verify(fx, &t).await;
    assert!(!v.ok);
    assert_eq!(v.first_bad_event, Some(id(&records[2])));
}

pub async fn editing_a_row_and_recomputing_every_later_hash_and_the_head_without_the_key_fails(fx: &Fixture) {
    let (t, records) = chain_of_five(fx).await;
    let mut edited: Vec<(i64, AuditRecord)> = records.iter().map(|r| (r.seq, r.clone())).collect();
    edited[2].1.event.credential = Some(CredentialName::from("innocent"));
    // A forger with database access but not the master key: unkeyed hashes, then a guess.
    forge(fx, &t, &edited, LinkVersion::Sha256, &chain_key()).await;
    let v = verify(fx, &t).await;
    assert!(!v.ok, "an unkeyed rewrite does not verify: {v:?}");
    forge(fx, &t, &edited, LinkVersion::Keyed, &ChainKey::from_bytes([1; 32])).await;
    let v = verify(fx, &t).await;
    assert!(!v.ok, "a rewrite with another key does not verify: {v:?}");
    assert_eq!(v.first_bad_event, Some(id(&records[0])), "no link verifies");
    assert_eq!(v.reason, Some("this event was altered"));
}

pub async fn rewriting_a_whole_chain_unkeyed_fails_verification(fx: &Fixture) {
    let (t, records) = chain_of_five(fx).await;
    let all: Vec<(i64, AuditRecord)> = records.iter().map(|r| (r.seq, r.clone())).collect();
    forge(fx, &t, &all, LinkVersion::Sha256, &chain_key()).await;
    let v = verify(fx, &t).await;
    assert!(!v.ok, "{v:?}");
    assert_eq!(v.reason, Some("the chain's newest event is not keyed"));
    assert_eq!(
        fx.store().unkeyed_audit_chains().await.expect("unkeyed"),
        vec![t],
        "and it is listed as unkeyed"
    );
}

pub async fn deleting_one_event_in_the_middle_and_renumbering_fails_verification(fx: &Fixture) {
    let (t, records) = chain_of_five(fx).await;
    fx.execute("DELETE FROM audit_events WHERE id = $1", &id(&records[2]))
        .await;
    // Renumber alone: the link from the event before the gap no longer matches.
    for old in 4..=5 {
        let mut moved = records[old - 1].clone();
        moved.seq = old as i64 - 1;
        rewrite(fx, &t, old as i64, &moved).await;
    }
    set_head(fx, &t, 4, &records[4].hash).await;
    let v = verify(fx, &t).await;
    assert!(!v.ok, "{v:?}");
    assert_eq!(v.first_bad_event, Some(id(&records[3])));
    // Renumber and relink without the key: every keyed hash after the gap fails.
    let rest: Vec<(i64, AuditRecord)> = [0, 1, 3, 4]
        .iter()
        .enumerate()
        .map(|(n, i)| (n as i64 + 1, records[*i].clone()))
        .collect();
    forge(fx, &t, &rest, LinkVersion::Keyed, &ChainKey::from_bytes([2; 32])).await;
    assert!(!verify(fx, &t).await.ok);
}

pub async fn verification_catches_a_deleted_row(fx: &Fixture) {
    let (t, records) = chain_of_five(fx).await;
    fx.execute("DELETE FROM audit_events WHERE id = $1", &id(&records[1]))
        .await;
    let v = verify(fx, &t).await;
    assert!(!v.ok);
    assert_eq!(v.first_bad_event, Some(id(&records[2])));
    assert_eq!(v.events, 1);
}

pub async fn verification_catches_the_last_row_deleted(fx: &Fixture) {
    let (t, records) = chain_of_five(fx).await;
    fx.execute("DELETE FROM audit_events WHERE id = $1", &id(&records[4]))
        .await;
    let v = verify(fx, &t).await;
    assert!(!v.ok, "the chain no longer reaches its head");
    assert_eq!(v.first_bad_event, Some(id(&records[3])));
}

/// Chains with checkpoints in a temporary directory, and the directory.
fn checkpointed() -> (Chains, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let checkpoints = Checkpoints::open(dir.path(), &MasterKey::generate()).expect("checkpoints");
    (
        Chains {
            key: chain_key(),
            checkpoints: Some(checkpoints),
        },
        dir,
    )
}

pub async fn deleting_the_newest_events_and_rewinding_the_head_fails_against_the_checkpoint(fx: &Fixture) {
    let (chains, _dir) = checkpointed();
    let t = tenant(fx.store(), "acme").await;
    let events: Vec<_> = (0..5).map(|i| proxied(&t, &key(i), "gh", Surface::Path)).collect();
    let records = chains.append(fx.store(), events, None).await.expect("append");
    let checkpoints = chains.checkpoints.as_ref().expect("kept");
    assert!(checkpoints.flushed(std::time::Duration::from_secs(10)).await);
    let v = chains.verify(fx.store(), &t).await.expect("verify");
    assert!(v.ok && v.checkpoint == Some(5), "{v:?}");
    // The newest two go, and the head is rewound to the third: the database agrees with itself.
    for r in &records[3..] {
        fx.execute("DELETE FROM audit_events WHERE id = $1", &id(r)).await;
    }
    set_head(fx, &t, 3, &records[2].hash).await;
    assert!(verify(fx, &t).await.ok, "without a checkpoint the cut is invisible");
    let v = chains.verify(fx.store(), &t).await.expect("verify");
    assert!(!v.ok, "{v:?}");
    assert_eq!(
        v.reason,
        Some("the chain ends before its checkpoint: its newest events were removed")
    );
    assert_eq!(v.first_bad_event, Some(id(&records[2])), "the last event still there");
    assert_eq!(v.events, 3);
}

pub async fn a_checkpoint_that_does_not_match_its_event_or_is_forged_fails_verification(fx: &Fixture) {
    let (chains, dir) = checkpointed();
    let t = tenant(fx.store(), "acme").await;
    let records = chains
        .append(fx.store(), vec![proxied(&t, &key(1), "gh", Surface::Path)], None)
        .await
        .expect("append");
    let checkpoints = chains.checkpoints.as_ref().expect("kept");
    assert!(checkpoints.flushed(std::time::Duration::from_secs(10)).await);
    assert!(matches!(checkpoints.load(&t), Loaded::Valid(_)));
    // The only event replaced by one linked with the key (an insider), head updated: the
    // checkpoint still remembers the original.
    let mut other = records[0].clone();
    other.event.credential = Some(CredentialName::from("swapped"));
    other.hash = chain_key().hash(LinkVersion::Keyed, 1, GENESIS_HASH, &other.event);
    rewrite(fx, &t, 1, &other).await;
    set_head(fx, &t, 1, &other.hash).await;
    let v = chains.verify(fx.store(), &t).await.expect("verify");
    assert_eq!(
        v.reason,
        Some("this event is not the one the checkpoint recorded"),
        "{v:?}"
    );
    std::fs::write(dir.path().join(format!("{t}.head")), b"{}").expect("overwrite");
    let v = chains.verify(fx.store(), &t).await.expect("verify");
    assert_eq!(
        v.reason,
        Some("the chain's checkpoint outside the database is damaged or forged")
    );
}

pub async fn verification_catches_two_swapped_rows(fx: &Fixture) {
    let (t, records) = chain_of_five(fx).await;
    for (from, to) in [(2, -2), (3, 2), (-2, 3)] {
        sqlx::query("UPDATE audit_events SET seq = $3 WHERE tenant_id = $1 AND seq = $2")
            .bind(t.as_str())
            .bind(from)
            .bind(to)
            .execute(fx.pool())
            .await
            .expect("swap");
    }
    let v = verify(fx, &t).await;
    assert!(!v.ok);
    assert_eq!(v.first_bad_event, Some(id(&records[2])));
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
                let batch: Vec<_> = (0..3).map(|_| proxied(&t, &key(writer), "gh", Surface::Path)).collect();
                store
                    .append_audit(batch, &chain_key(), None)
                    .await
                    .expect("append from the second store");
            }
        }));
    }
    for _ in 0..10 {
        append(
            fx.store(),
            &[
                proxied(&t, &key(9), "gh", Surface::Path),
                proxied(&t, &key(9), "gh", Surface::Path),
            ],
        )
        .await;
    }
    for task in tasks {
        task.await.expect("writer");
    }
    let v = verify(fx, &t).await;
    assert!(v.ok, "{v:?}");
    assert_eq!(v.events, 2 * 10 * 3 + 10 * 2);
}

pub async fn indexing_a_journal_records_its_checkpoint_in_the_same_transaction(fx: &Fixture) {
    let t = tenant(fx.store(), "acme").await;
    let journal = format!("{}-0000000001", uuid::Uuid::new_v4().simple());
    let store = fx.store();
    let mark = |indexed_to| {
        Some(JournalMark {
            journal: &journal,
            indexed_to,
        })
    };
    assert_eq!(
        store.audit_journal_checkpoint(&journal).await.expect("checkpoint"),
        None
    );
    let first: Vec<_> = (0..2).map(|_| proxied(&t, &key(1), "github", Surface::Path)).collect();
    store
        .append_audit(first.clone(), &chain_key(), mark(100))
        .await
        .expect("index");
    assert_eq!(
        store.audit_journal_checkpoint(&journal).await.expect("checkpoint"),
        Some(100)
    );
    let second = vec![proxied(&t, &key(2), "github", Surface::Route)];
    store
        .append_audit(second, &chain_key(), mark(250))
        .await
        .expect("index");
    assert_eq!(
        store.audit_journal_checkpoint(&journal).await.expect("checkpoint"),
        Some(250)
    );
    // Moving the mark past damage appends nothing.
    store
        .append_audit(Vec::new(), &chain_key(), mark(300))
        .await
        .expect("skip");
    assert_eq!(
        store.audit_journal_checkpoint(&journal).await.expect("checkpoint"),
        Some(300)
    );
    assert_eq!(store.list_audit(&t, &all(10)).await.expect("list").len(), 3);
    assert!(verify(fx, &t).await.ok);
    // A failed batch moves neither the chain nor the checkpoint.
    let mut bad = proxied(&t, &key(3), "github", Surface::Path);
    bad.id = first[0].id; // ids are unique
    assert!(store.append_audit(vec![bad], &chain_key(), mark(400)).await.is_err());
    assert_eq!(
        store.audit_journal_checkpoint(&journal).await.expect("checkpoint"),
        Some(300)
    );
    assert_eq!(store.audit_head(&t).await.expect("head").map(|h| h.seq), Some(3));
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
        .map(|i| proxied(if i % 3 == 0 { &other } else { &t }, &key(i), "github", Surface::Path))
        .collect();
    let records = append(fx.store(), &events).await;
    assert_eq!(records.len(), 250);
    assert_eq!(records.last().map(|r| r.event.id), Some(events[249].id));
    let ours = verify(fx, &t).await;
    let theirs = verify(fx, &other).await;
    assert!(ours.ok && theirs.ok, "{ours:?} {theirs:?}");
    assert_eq!(ours.events + theirs.events, 250);
    assert_eq!(theirs.events, 84);
}

pub async fn fields_cut_to_their_bounds_are_stored_and_verify(fx: &Fixture) {
    let t = tenant(fx.store(), "acme").await;
    let huge = "é".repeat(150_000);
    let mut e = proxied(&t, &key(1), &huge, Surface::Path);
    e.target_host = Some(Host::from(huge.as_str()));
    e.target_path = Some(TargetPath::from(huge.as_str()));
    e.method = Some(Method::parse(&huge));
    let records = append(fx.store(), &[e]).await;
    let stored = fx.store().list_audit(&t, &all(1)).await.expect("list");
    assert_eq!(stored, records);
    let path = stored[0].event.target_path.as_ref().expect("path");
    assert!(path.was_cut() && path.as_str().len() <= 2048);
    assert!(verify(fx, &t).await.ok);
}

pub async fn only_chains_whose_newest_link_is_unkeyed_are_listed_as_unkeyed(fx: &Fixture) {
    let (t, records) = chain_of_five(fx).await;
    let other = tenant(fx.store(), "globex").await;
    append(fx.store(), &[proxied(&other, &key(1), "gh", Surface::Path)]).await;
    assert!(fx.store().unkeyed_audit_chains().await.expect("unkeyed").is_empty());
    // The last event of acme made unkeyed (as chains written before keyed links end).
    let mut last = records[4].clone();
    last.link = LinkVersion::Sha256;
    last.hash = chain_key().hash(LinkVersion::Sha256, 5, &records[3].hash, &last.event);
    rewrite(fx, &t, 5, &last).await;
    set_head(fx, &t, 5, &last.hash).await;
    assert_eq!(
        fx.store().unkeyed_audit_chains().await.expect("unkeyed"),
        vec![t.clone()]
    );
    let v = verify(fx, &t).await;
    assert!(!v.ok, "a keyed event followed by an unkeyed one: {v:?}");
    assert_eq!(v.reason, Some("an unkeyed event follows a keyed one"));
}

pub async fn an_event_added_past_the_head_fails_verification(fx: &Fixture) {
    let (t, records) = chain_of_five(fx).await;
    // A row written straight into the table, even linked correctly after the head (by a key
    // holder), with the head left alone: listed, but not accepted.
    let planted = AuditEvent::new(t.clone(), Actor::None, "planted");
    let hash = chain_key().hash(LinkVersion::Keyed, 6, &records[4].hash, &planted);
    sqlx::query(
        "INSERT INTO audit_events (tenant_id, seq, id, time_us, actor_kind, action, outcome, prev_hash, hash, link) \
         VALUES ($1, 6, $2, $3, 'none', 'planted', 'ok', $4, $5, 2)",
    )
    .bind(t.as_str())
    .bind(planted.id.to_string())
    .bind(planted.time.timestamp_micros())
    .bind(records[4].hash.as_str())
    .bind(hash.as_str())
    .execute(fx.pool())
    .await
    .expect("plant a row");
    assert_eq!(fx.store().list_audit(&t, &all(10)).await.expect("list").len(), 6);
    let v = verify(fx, &t).await;
    assert!(!v.ok, "{v:?}");
    assert_eq!(v.reason, Some("this event is past the chain's recorded head"));
    assert_eq!(v.first_bad_event, Some(planted.id.to_string()));
}
