use std::fs::OpenOptions;
use std::path::Path;

use super::*;
use crate::audit::event::{Method, Outcome, TargetPath};
use crate::audit::{Actor, AuditFilter, ChainKey, system_tenant};
use crate::domain::{ApiKeyId, TenantId};
use crate::store::sqlite::SqliteStore;

async fn store(dir: &Path) -> Arc<dyn Store> {
    Arc::new(SqliteStore::open(&dir.join("keystile.db")).await.unwrap())
}

fn chains() -> Chains {
    Chains::new(ChainKey::from_bytes([3; 32]))
}

async fn open(dir: &Path, store: &Arc<dyn Store>, segment_bytes: u64) -> anyhow::Result<Journal> {
    Journal::open(dir, store.clone(), segment_bytes, chains(), Counter::default()).await
}

fn event(tenant: &TenantId, n: usize) -> AuditEvent {
    let mut e = AuditEvent::new(tenant.clone(), Actor::Key(ApiKeyId::generate()), "proxy.request");
    e.target_path = Some(TargetPath::from(format!("/n/{n}")));
    e.status = Some(200);
    e
}

async fn paths(store: &dyn Store, tenant: &TenantId) -> Vec<String> {
    let filter = AuditFilter {
        limit: 1000,
        ..Default::default()
    };
    let mut records = store.list_audit(tenant, &filter).await.unwrap();
    records.reverse();
    records
        .into_iter()
        .filter_map(|r| r.event.target_path.map(|p| p.as_str().to_owned()))
        .collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// A segment as a crashed gateway would have left it: header, then `lines`.
fn leftover(dir: &Path, instance: &str, number: u64, lines: &[Vec<u8>]) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let id = segment_id(instance, number);
    let mut bytes = format!("{HEADER_PREFIX}{id}\n").into_bytes();
    for l in lines {
        bytes.extend_from_slice(l);
    }
    std::fs::write(dir.join(format!("{id}.journal")), bytes).unwrap();
    std::fs::write(dir.join(format!("{instance}.lock")), b"").unwrap();
    id
}

#[test]
fn an_event_survives_its_journal_line_unchanged() {
    let mut e = event(&TenantId::generate(), 1);
    e.client_ip = Some("127.0.0.1".parse().unwrap());
    e.credential_version = Some(3);
    e.method = Some(Method::parse("PATCH"));
    e.outcome = Outcome::error("forbidden");
    e.target_path = Some(TargetPath::from("/p?q=_&\"quoted\"\n"));
    let line = encode(&e);
    assert_eq!(line.last(), Some(&b'\n'));
    assert_eq!(
        line.iter().filter(|b| **b == b'\n').count(),
        1,
        "one line, whatever the fields hold"
    );
    assert_eq!(decode(&line[..line.len() - 1]), Some(e));
    assert_eq!(decode(&line[..line.len() / 2]), None, "half a line is not an event");
}

#[test]
fn the_longest_event_line_is_bounded_and_carries_its_tenant() {
    // Control characters are what JSON escapes the longest.
    let worst = "\u{1}".repeat(1 << 16);
    let tenant = TenantId::generate();
    let mut e = AuditEvent::new(tenant.clone(), Actor::Key(ApiKeyId::generate()), worst.as_str());
    e.proxy_mode = Some(crate::domain::Surface::Ephemeral);
    e.credential = Some(worst.as_str().into());
    e.credential_version = Some(i64::MIN);
    e.method = Some(Method::parse(&worst));
    e.target_host = Some(worst.as_str().into());
    e.target_path = Some(TargetPath::from(worst.as_str()));
    e.status = Some(u16::MAX);
    e.latency_ms = Some(i64::MIN);
    e.bytes = Some(i64::MIN);
    e.client_ip = Some("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255".parse().unwrap());
    e.outcome = Outcome::error(&worst);
    let line = encode(&e);
    assert!(line.len() <= MAX_LINE_BYTES, "{} bytes", line.len());
    let text = String::from_utf8(line).unwrap();
    assert!(text.contains(&format!("\"tenant\":\"{tenant}\"")), "{text:.200}");
}

#[test]
fn a_line_written_by_the_previous_version_still_decodes() {
    // The journal line format of the last landing (explicit nulls, the actor in two fields).
    let tenant = TenantId::generate();
    let key = ApiKeyId::generate();
    let old = format!(
        r#"{{"id":"5b0e3f9e-8f53-4b8e-9d7a-0c0a4f1e2d3c","t":1767225600123456,"tenant":"{tenant}","actor":"key","actor_id":"{key}","action":"proxy.request","mode":"path","cred":"github","cred_v":2,"method":"GET","host":"api.example.com","path":"/v1/x?page=_","status":200,"ms":12,"bytes":null,"ip":"127.0.0.1","outcome":"ok"}}"#
    );
    let e = decode(old.as_bytes()).expect("decodes");
    assert_eq!(e.actor, Actor::Key(key));
    assert_eq!(e.tenant_id, tenant);
    assert_eq!(e.proxy_mode, Some(crate::domain::Surface::Path));
    assert_eq!(e.bytes, None);
    assert_eq!(e.time.timestamp_micros(), 1_767_225_600_123_456);
    let system = format!(
        r#"{{"id":"5b0e3f9e-8f53-4b8e-9d7a-0c0a4f1e2d3d","t":1,"tenant":"{}","actor":"none","actor_id":null,"action":"auth.failure","mode":null,"cred":null,"cred_v":null,"method":"GET","host":null,"path":"/x","status":401,"ms":null,"bytes":null,"ip":null,"outcome":"unauthorized"}}"#,
        crate::audit::SYSTEM_TENANT
    );
    assert_eq!(decode(system.as_bytes()).expect("decodes").actor, Actor::None);
}

#[test]
fn hostile_lines_never_decode_into_unbounded_events() {
    let tenant = TenantId::generate();
    let huge = "x".repeat(1 << 20);
    let line = format!(
        r#"{{"id":"5b0e3f9e-8f53-4b8e-9d7a-0c0a4f1e2d3c","t":1,"tenant":"{tenant}","actor":"none","action":"{huge}","path":"{huge}","outcome":"{huge}"}}"#
    );
    let e = decode(line.as_bytes()).expect("decodes");
    assert!(encode(&e).len() < 8192, "cut on the way in");
    let bad_tenant = line.replace(tenant.as_str(), &huge);
    assert_eq!(decode(bad_tenant.as_bytes()), None);
    let bad_actor = line.replace(r#""actor":"none""#, &format!(r#""actor":"key","actor_id":"{huge}""#));
    assert_eq!(decode(bad_actor.as_bytes()), None);
}

#[tokio::test]
async fn events_are_indexed_in_order_and_finished_segments_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(tmp.path()).await;
    let dir = tmp.path().join("audit");
    std::fs::create_dir_all(&dir).unwrap();
    // One byte per segment: every batch starts a new one.
    let journal = open(&dir, &store, 1).await.unwrap();
    let tenant = TenantId::generate();
    for n in 0..30 {
        journal.record(&event(&tenant, n)).await.unwrap();
    }
    assert!(journal.caught_up(Duration::from_secs(10)).await);
    let expected: Vec<String> = (0..30).map(|n| format!("/n/{n}")).collect();
    assert_eq!(paths(store.as_ref(), &tenant).await, expected);
    assert_eq!(chains().verify(store.as_ref(), &tenant).await.unwrap().events, 30);
    let left = files(&dir);
    assert_eq!(left.len(), 2, "the lock and the current segment only: {left:?}");
    assert!(left.iter().any(|f| f.ends_with("-0000000031.journal")), "{left:?}");
}

#[tokio::test]
async fn a_start_indexes_what_a_crashed_run_left_once_and_drops_a_torn_last_line() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(tmp.path()).await;
    let dir = tmp.path().join("audit");
    std::fs::create_dir_all(&dir).unwrap();
    let tenant = TenantId::generate();
    let lines: Vec<Vec<u8>> = (0..5).map(|n| encode(&event(&tenant, n))).collect();
    let mut torn = encode(&event(&tenant, 5));
    torn.truncate(torn.len() / 2);
    let mut all = lines.clone();
    all.push(torn);
    let instance = "0123456789abcdef0123456789abcdef";
    let id = leftover(&dir, instance, 1, &all);
    // The crashed run had indexed the first two events.
    let first_two: Vec<AuditEvent> = (0..2)
        .map(|n| decode(&lines[n][..lines[n].len() - 1]).unwrap())
        .collect();
    let checkpoint = header_len(instance, 1) + (lines[0].len() + lines[1].len()) as u64;
    let mark = crate::store::JournalMark {
        journal: &id,
        indexed_to: checkpoint as i64,
    };
    chains().append(store.as_ref(), first_two, Some(mark)).await.unwrap();

    let journal = open(&dir, &store, SEGMENT_BYTES).await.unwrap();
    let expected: Vec<String> = (0..5).map(|n| format!("/n/{n}")).collect();
    assert_eq!(
        paths(store.as_ref(), &tenant).await,
        expected,
        "each event once, torn line dropped"
    );
    assert_eq!(
        store.audit_journal_checkpoint(&id).await.unwrap(),
        None,
        "checkpoint forgotten"
    );
    assert!(
        files(&dir).iter().all(|f| !f.starts_with(instance)),
        "the adopted files are deleted: {:?}",
        files(&dir)
    );
    assert!(!dir.join(QUARANTINE).exists(), "a torn last line is not damage");
    // The new run appends after them.
    journal.record(&event(&tenant, 99)).await.unwrap();
    assert!(journal.caught_up(Duration::from_secs(10)).await);
    assert_eq!(paths(store.as_ref(), &tenant).await.last().unwrap(), "/n/99");
    assert!(chains().verify(store.as_ref(), &tenant).await.unwrap().ok);
}

#[tokio::test]
async fn a_damaged_segment_is_kept_in_the_quarantine_its_readable_events_indexed_and_the_start_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(tmp.path()).await;
    let dir = tmp.path().join("audit");
    std::fs::create_dir_all(&dir).unwrap();
    let tenant = TenantId::generate();
    let lines = vec![
        encode(&event(&tenant, 0)),
        b"{\"id\":\"garbage\n".to_vec(),
        encode(&event(&tenant, 2)),
        b"\x00\x01\x02 not json either\n".to_vec(),
        encode(&event(&tenant, 4)),
    ];
    let instance = "fedcba9876543210fedcba9876543210";
    let id = leftover(&dir, instance, 1, &lines);
    let original = std::fs::read(dir.join(format!("{id}.journal"))).unwrap();
    let damaged = Counter::default();
    let journal = Journal::open(&dir, store.clone(), SEGMENT_BYTES, chains(), damaged.clone())
        .await
        .expect("the start goes on");
    assert_eq!(
        paths(store.as_ref(), &tenant).await,
        vec!["/n/0", "/n/2", "/n/4"],
        "every readable event is indexed"
    );
    let kept = files(&dir.join(QUARANTINE));
    assert_eq!(kept.len(), 1, "one copy of the segment: {kept:?}");
    assert_eq!(
        std::fs::read(dir.join(QUARANTINE).join(&kept[0])).unwrap(),
        original,
        "kept byte for byte"
    );
    assert!(
        !dir.join(format!("{id}.journal")).exists(),
        "the segment itself is done"
    );
    assert_eq!(damaged.get(), 1, "counted once");
    // The report is journaled, then indexed into the system chain.
    assert!(journal.caught_up(Duration::from_secs(10)).await);
    let system = store
        .list_audit(
            &system_tenant(),
            &AuditFilter {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(system.len(), 1, "{system:?}");
    let report = &system[0].event;
    assert_eq!(report.action.as_str(), "audit.journal_damaged");
    assert_eq!(report.outcome.as_str(), "journal_damaged");
    assert_eq!(
        report.target_path.as_ref().map(|p| p.as_str().to_owned()),
        Some(format!("{QUARANTINE}/{}", kept[0]))
    );
    // And the gateway keeps journaling.
    journal.record(&event(&tenant, 5)).await.unwrap();
    assert!(journal.caught_up(Duration::from_secs(10)).await);
    assert_eq!(paths(store.as_ref(), &tenant).await.last().unwrap(), "/n/5");
}

#[tokio::test]
async fn a_segment_whose_header_is_wrong_is_kept_and_its_events_indexed() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(tmp.path()).await;
    let dir = tmp.path().join("audit");
    let tenant = TenantId::generate();
    let instance = "00112233445566778899aabbccddeeff";
    let id = leftover(&dir, instance, 1, &[encode(&event(&tenant, 7))]);
    let path = dir.join(format!("{id}.journal"));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[3] = b'X';
    std::fs::write(&path, bytes).unwrap();
    let _journal = open(&dir, &store, SEGMENT_BYTES).await.unwrap();
    assert_eq!(paths(store.as_ref(), &tenant).await, vec!["/n/7"]);
    assert_eq!(files(&dir.join(QUARANTINE)).len(), 1);
}

#[tokio::test]
async fn a_line_far_longer_than_one_read_is_read_back() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(tmp.path()).await;
    let dir = tmp.path().join("audit");
    let tenant = TenantId::generate();
    // An event line padded with an unknown field to four reads' worth: still one event.
    let mut line = encode(&event(&tenant, 1));
    line.truncate(line.len() - 2);
    line.extend_from_slice(format!(",\"pad\":\"{}\"}}\n", "p".repeat(4 * READ_CHUNK)).as_bytes());
    leftover(
        &dir,
        "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f",
        1,
        &[encode(&event(&tenant, 0)), line, encode(&event(&tenant, 2))],
    );
    let _journal = open(&dir, &store, SEGMENT_BYTES).await.unwrap();
    assert_eq!(paths(store.as_ref(), &tenant).await, vec!["/n/0", "/n/1", "/n/2"]);
    assert!(!dir.join(QUARANTINE).exists());
}

#[tokio::test]
async fn damage_in_the_running_gateways_own_segment_is_kept_and_indexing_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(tmp.path()).await;
    let dir = tmp.path().join("audit");
    std::fs::create_dir_all(&dir).unwrap();
    let damaged = Counter::default();
    let journal = Journal::open(&dir, store.clone(), SEGMENT_BYTES, chains(), damaged.clone())
        .await
        .unwrap();
    let tenant = TenantId::generate();
    journal.record(&event(&tenant, 0)).await.unwrap();
    // Bytes that are not an event, synced into the running gateway's own segment between two
    // events (as damage on disk would be found): appended through the writer itself, so the
    // indexer certainly has not read past them yet.
    record_line(&journal.jobs, b"{\"id\": damaged on disk\n".to_vec())
        .await
        .unwrap();
    journal.record(&event(&tenant, 1)).await.unwrap();
    assert!(
        journal.caught_up(Duration::from_secs(10)).await,
        "the indexer is not stalled"
    );
    assert_eq!(paths(store.as_ref(), &tenant).await, vec!["/n/0", "/n/1"]);
    assert_eq!(damaged.get(), 1);
    let kept = files(&dir.join(QUARANTINE));
    assert_eq!(kept.len(), 1);
    let copy = std::fs::read(dir.join(QUARANTINE).join(&kept[0])).unwrap();
    assert!(contains(&copy, b"damaged on disk"), "the damaged bytes are kept");
    journal.record(&event(&tenant, 2)).await.unwrap();
    assert!(journal.caught_up(Duration::from_secs(10)).await);
    assert_eq!(paths(store.as_ref(), &tenant).await, vec!["/n/0", "/n/1", "/n/2"]);
}

#[tokio::test]
async fn a_running_gateways_journal_is_left_to_it() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(tmp.path()).await;
    let dir = tmp.path().join("audit");
    std::fs::create_dir_all(&dir).unwrap();
    let tenant = TenantId::generate();
    let first = open(&dir, &store, SEGMENT_BYTES).await.unwrap();
    first.record(&event(&tenant, 1)).await.unwrap();
    let before = files(&dir);
    let second = open(&dir, &store, SEGMENT_BYTES).await.unwrap();
    assert!(
        before.iter().all(|f| files(&dir).contains(f)),
        "nothing of the first taken"
    );
    second.record(&event(&tenant, 2)).await.unwrap();
    first.record(&event(&tenant, 3)).await.unwrap();
    assert!(first.caught_up(Duration::from_secs(10)).await);
    assert!(second.caught_up(Duration::from_secs(10)).await);
    let mut got = paths(store.as_ref(), &tenant).await;
    got.sort();
    assert_eq!(got, vec!["/n/1", "/n/2", "/n/3"]);
    assert!(chains().verify(store.as_ref(), &tenant).await.unwrap().ok);
}

#[tokio::test]
async fn a_failed_append_is_refused_and_the_next_batch_starts_a_new_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    // Every write to /dev/full fails with ENOSPC, like a full disk.
    let full = OpenOptions::new().write(true).open("/dev/full").unwrap();
    let (durable, watched) = watch::channel(Position { segment: 1, offset: 0 });
    let mut writer = Writer {
        dir: dir.clone(),
        instance: "aa".repeat(16),
        segment: Segment {
            number: 1,
            file: full,
            len: 0,
        },
        segment_bytes: SEGMENT_BYTES,
        broken: false,
        durable,
        _lock: tempfile::tempfile().unwrap(),
    };
    let tenant = TenantId::generate();
    assert!(!writer.append(&encode(&event(&tenant, 1))), "not durable: refused");
    assert_eq!(watched.borrow().offset, 0, "nothing published");
    let line = encode(&event(&tenant, 2));
    assert!(writer.append(&line));
    let id = segment_id(&"aa".repeat(16), 2);
    let written = std::fs::read(dir.join(format!("{id}.journal"))).unwrap();
    assert!(written.ends_with(&line));
    assert_eq!(
        *watched.borrow(),
        Position {
            segment: 2,
            offset: written.len() as u64
        }
    );
}

#[tokio::test]
async fn when_no_copy_can_be_made_a_damaged_segment_left_by_a_crash_is_moved_into_the_quarantine_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(tmp.path()).await;
    let dir = tmp.path().join("audit");
    let tenant = TenantId::generate();
    let instance = "abababababababababababababababab";
    let first = encode(&event(&tenant, 0));
    let id = leftover(
        &dir,
        instance,
        1,
        &[first.clone(), b"not an event\n".to_vec(), encode(&event(&tenant, 2))],
    );
    let original = std::fs::read(dir.join(format!("{id}.journal"))).unwrap();
    // The copy's temporary name is taken by a directory: the copy fails, as on a full disk.
    let at = header_len(instance, 1) + first.len() as u64;
    std::fs::create_dir_all(dir.join(QUARANTINE).join(format!("{id}-at-{at}.partial"))).unwrap();
    let _journal = open(&dir, &store, SEGMENT_BYTES).await.expect("the start goes on");
    assert_eq!(paths(store.as_ref(), &tenant).await, vec!["/n/0", "/n/2"]);
    let moved = dir.join(QUARANTINE).join(format!("{id}-at-{at}.journal"));
    assert_eq!(std::fs::read(moved).unwrap(), original, "the whole segment, moved");
}
