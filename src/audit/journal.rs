//! The audit journal: where an event becomes durable before its response is released, when
//! `audit.durability = "journal"` (SPEC S11).
//!
//! Callers hand a serialized event to one writer thread, which appends every event waiting
//! (up to [`MAX_BATCH`]) with one `write` and makes them durable with one `fdatasync`, then
//! acknowledges them all: a lone request pays one sync of a small append (about 0.1 ms on
//! this project's machines) instead of a database transaction, and concurrent requests share
//! it (group commit). A separate task, the indexer, follows the journal up to the synced
//! offset and, every [`INDEX_INTERVAL`] at most (at once when someone reads the trail),
//! appends the events to the database's per-tenant hash chains; each of its
//! transactions also records how far the journal is indexed, so a restart resumes exactly
//! where it stopped (no event lost, none indexed twice). Reading the trail through this
//! gateway first waits for its indexer to catch up ([`Journal::caught_up`]).
//!
//! Files, in the journal directory (`<data_dir>/audit`): `<instance>.lock`, held (flock) by
//! the running gateway, and its segments `<instance>-<n>.journal`. A segment starts with a
//! header line naming it, then holds one JSON event per line. The writer starts a new
//! segment once one exceeds the configured size; the indexer deletes a segment it has
//! indexed to the end. A gateway that starts adopts the segments of every instance whose
//! lock nobody holds (one that crashed, or a stopped replica on the same data directory),
//! indexes them before it serves, and deletes them.
//!
//! Written by hand because it is a few hundred lines that no crate provides in this shape:
//! a write-ahead log whose consumer is a SQL transaction with its own checkpoint.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

use super::{Actor, AuditError, AuditEvent, MAX_BATCH, QUEUE_CAPACITY};
use crate::domain::TenantId;
use crate::store::Store;

/// A new segment is started once the current one has this many bytes.
pub const SEGMENT_BYTES: u64 = 8 * 1024 * 1024;
/// Most bytes of a segment read (and indexed in one transaction) at a time.
const READ_CHUNK: usize = 256 * 1024;
/// How long synced events may wait to be indexed (unless someone reads the trail).
const INDEX_INTERVAL: Duration = Duration::from_millis(100);
/// Longest wait between two attempts to index after the database refused.
const MAX_RETRY: Duration = Duration::from_secs(2);
const HEADER_PREFIX: &str = "keystile-audit-journal 1 ";

/// A place in the journal: segment number, then byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

/// One event as a journal line. Field names are short: every byte is written and synced.
#[derive(Serialize, Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    t: i64,
    #[serde(borrow)]
    tenant: Cow<'a, str>,
    #[serde(borrow)]
    actor: Cow<'a, str>,
    #[serde(borrow)]
    actor_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    action: Cow<'a, str>,
    #[serde(borrow)]
    mode: Option<Cow<'a, str>>,
    #[serde(borrow)]
    cred: Option<Cow<'a, str>>,
    cred_v: Option<i64>,
    #[serde(borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow)]
    host: Option<Cow<'a, str>>,
    #[serde(borrow)]
    path: Option<Cow<'a, str>>,
    status: Option<i64>,
    ms: Option<i64>,
    bytes: Option<i64>,
    #[serde(borrow)]
    ip: Option<Cow<'a, str>>,
    #[serde(borrow)]
    outcome: Cow<'a, str>,
}

fn borrowed(s: &Option<String>) -> Option<Cow<'_, str>> {
    s.as_deref().map(Cow::Borrowed)
}

/// An event as one journal line, newline included.
pub fn encode(e: &AuditEvent) -> Vec<u8> {
    let (actor, actor_id) = e.actor.parts();
    let line = Line {
        id: Cow::Borrowed(&e.id),
        t: e.time.timestamp_micros(),
        tenant: Cow::Borrowed(e.tenant_id.as_str()),
        actor: Cow::Borrowed(actor),
        actor_id: actor_id.map(Cow::Borrowed),
        action: Cow::Borrowed(&e.action),
        mode: borrowed(&e.proxy_mode),
        cred: borrowed(&e.credential),
        cred_v: e.credential_version,
        method: borrowed(&e.method),
        host: borrowed(&e.target_host),
        path: borrowed(&e.target_path),
        status: e.status,
        ms: e.latency_ms,
        bytes: e.bytes,
        ip: borrowed(&e.client_ip),
        outcome: Cow::Borrowed(&e.outcome),
    };
    // Serializing strings and numbers to a Vec cannot fail.
    let mut out = serde_json::to_vec(&line).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Parses one journal line (without its newline); `None` if it is not a whole event.
fn decode(bytes: &[u8]) -> Option<AuditEvent> {
    let l: Line<'_> = serde_json::from_slice(bytes).ok()?;
    let owned = |c: Option<Cow<'_, str>>| c.map(Cow::into_owned);
    Some(AuditEvent {
        id: l.id.into_owned(),
        time: chrono::DateTime::from_timestamp_micros(l.t)?,
        tenant_id: TenantId::parse(&l.tenant).ok()?,
        actor: Actor::from_parts(&l.actor, owned(l.actor_id))?,
        action: l.action.into_owned(),
        proxy_mode: owned(l.mode),
        credential: owned(l.cred),
        credential_version: l.cred_v,
        method: owned(l.method),
        target_host: owned(l.host),
        target_path: owned(l.path),
        status: l.status,
        latency_ms: l.ms,
        bytes: l.bytes,
        client_ip: owned(l.ip),
        outcome: l.outcome.into_owned(),
    })
}

struct Job {
    line: Vec<u8>,
    ack: oneshot::Sender<bool>,
}

/// The journal of one running gateway.
pub struct Journal {
    jobs: mpsc::Sender<Job>,
    durable: watch::Receiver<Position>,
    indexed: watch::Receiver<Position>,
    /// Wakes the indexer before its interval is over.
    hurry: Arc<tokio::sync::Notify>,
}

impl Journal {
    /// Opens a journal in `dir` (which must exist, mode 0700): first indexes and deletes what earlier,
    /// no longer running gateways left there, then starts this gateway's writer thread and
    /// indexer. Fails if the leftovers cannot be indexed (the database refuses, or a segment
    /// is damaged before its end).
    pub async fn open(dir: &Path, store: Arc<dyn Store>, segment_bytes: u64) -> anyhow::Result<Self> {
        adopt_orphans(dir, store.as_ref()).await?;
        let instance = uuid::Uuid::new_v4().simple().to_string();
        // Locked under a name adoption ignores, then renamed: another gateway starting at the
        // same moment never sees this lock file unlocked.
        let pending = dir.join(format!("{instance}.lock.new"));
        let lock = open_private(&pending, false)?;
        lock.try_lock()
            .with_context(|| format!("locking the new audit journal in {}", dir.display()))?;
        std::fs::rename(&pending, dir.join(format!("{instance}.lock")))
            .with_context(|| format!("creating the audit journal lock in {}", dir.display()))?;
        let first = Segment::create(dir, &instance, 1)?;
        let start = Position {
            segment: 1,
            offset: first.len,
        };
        let (durable_tx, durable) = watch::channel(start);
        let (indexed_tx, indexed) = watch::channel(start);
        let (jobs, rx) = mpsc::channel(QUEUE_CAPACITY);
        let writer = Writer {
            dir: dir.to_owned(),
            instance: instance.clone(),
            segment: first,
            segment_bytes: segment_bytes.max(1),
            broken: false,
            durable: durable_tx,
            _lock: lock,
        };
        std::thread::Builder::new()
            .name("audit-journal".into())
            .spawn(move || writer.run(rx))
            .context("starting the audit journal writer")?;
        let hurry = Arc::new(tokio::sync::Notify::new());
        tokio::spawn(follow(
            store,
            dir.to_owned(),
            instance,
            durable.clone(),
            indexed_tx,
            hurry.clone(),
        ));
        Ok(Self {
            jobs,
            durable,
            indexed,
            hurry,
        })
    }

    /// Appends an event and waits until it is synced to disk.
    pub async fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        let (ack, done) = oneshot::channel();
        self.jobs
            .send(Job {
                line: encode(event),
                ack,
            })
            .await
            .map_err(|_| AuditError)?;
        match done.await {
            Ok(true) => Ok(()),
            _ => Err(AuditError),
        }
    }

    /// Waits (at most `limit`) until every event synced before this call is in the database;
    /// false if the limit passed first.
    pub async fn caught_up(&self, limit: Duration) -> bool {
        let target = *self.durable.borrow();
        if *self.indexed.borrow() >= target {
            return true;
        }
        self.hurry.notify_one();
        let mut indexed = self.indexed.clone();
        matches!(
            tokio::time::timeout(limit, indexed.wait_for(|p| *p >= target)).await,
            Ok(Ok(_))
        )
    }

    /// Events queued and not yet taken by the writer.
    pub fn queue_depth(&self) -> usize {
        self.jobs.max_capacity() - self.jobs.capacity()
    }
}

/// An open segment being appended to.
struct Segment {
    number: u64,
    file: File,
    len: u64,
}

impl Segment {
    /// Creates segment `number` with its header, synced, and syncs the directory so the new
    /// file's name is durable too.
    fn create(dir: &Path, instance: &str, number: u64) -> anyhow::Result<Self> {
        let id = segment_id(instance, number);
        let path = dir.join(format!("{id}.journal"));
        let mut file = open_private(&path, true)?;
        let header = format!("{HEADER_PREFIX}{id}\n");
        let written = file
            .write_all(header.as_bytes())
            .and_then(|()| file.sync_all())
            .and_then(|()| File::open(dir)?.sync_all());
        if let Err(e) = written {
            // Leave nothing half made: the next attempt creates it again.
            let _ = std::fs::remove_file(&path);
            return Err(e).with_context(|| format!("creating the audit journal segment {}", path.display()));
        }
        Ok(Self {
            number,
            file,
            len: header.len() as u64,
        })
    }
}

/// The writer thread's state.
struct Writer {
    dir: PathBuf,
    instance: String,
    segment: Segment,
    segment_bytes: u64,
    /// The last append failed: its bytes may be partly on disk, so the next batch goes to a
    /// new segment.
    broken: bool,
    durable: watch::Sender<Position>,
    _lock: File,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut jobs = Vec::with_capacity(MAX_BATCH);
        let mut batch = Vec::new();
        while rx.blocking_recv_many(&mut jobs, MAX_BATCH) > 0 {
            batch.clear();
            for job in &jobs {
                batch.extend_from_slice(&job.line);
            }
            let ok = self.append(&batch);
            for job in jobs.drain(..) {
                // A caller that went away no longer needs its answer.
                let _ = job.ack.send(ok);
            }
        }
    }

    /// Appends and syncs one batch; true once it is durable.
    fn append(&mut self, batch: &[u8]) -> bool {
        if (self.broken || self.segment.len >= self.segment_bytes)
            && let Err(e) = self.next_segment()
        {
            tracing::error!(error = format!("{e:#}"), "audit journal: no new segment");
            if self.broken {
                return false;
            }
        }
        let written = self
            .segment
            .file
            .write_all(batch)
            .and_then(|()| self.segment.file.sync_data());
        if let Err(e) = written {
            tracing::error!(error = %e, bytes = batch.len(), "audit journal: batch not written");
            // Cut off whatever part of the batch reached the file; the next batch starts a
            // new segment either way.
            let _ = self.segment.file.set_len(self.segment.len);
            self.broken = true;
            return false;
        }
        self.segment.len += batch.len() as u64;
        self.durable.send_replace(Position {
            segment: self.segment.number,
            offset: self.segment.len,
        });
        true
    }

    fn next_segment(&mut self) -> anyhow::Result<()> {
        let next = Segment::create(&self.dir, &self.instance, self.segment.number + 1)?;
        self.segment = next;
        self.broken = false;
        self.durable.send_replace(Position {
            segment: self.segment.number,
            offset: self.segment.len,
        });
        Ok(())
    }
}

/// The indexer of this gateway's own segments: follows the synced position, indexes, deletes
/// finished segments, and publishes how far it got.
async fn follow(
    store: Arc<dyn Store>,
    dir: PathBuf,
    instance: String,
    mut durable: watch::Receiver<Position>,
    indexed: watch::Sender<Position>,
    hurry: Arc<tokio::sync::Notify>,
) {
    let mut reader: Option<Reader> = None;
    let mut retry = Duration::from_millis(50);
    loop {
        let target = *durable.borrow_and_update();
        let at = *indexed.borrow();
        if at >= target {
            if durable.changed().await.is_err() {
                // The writer is gone (the gateway is shutting down) and everything is indexed.
                if at >= *durable.borrow() {
                    return;
                }
                continue;
            }
            // Let events gather, so the database sees one transaction (one sync) per interval
            // rather than one per event; a reader waiting for the trail cuts the wait short.
            tokio::select! {
                () = tokio::time::sleep(INDEX_INTERVAL) => {}
                () = hurry.notified() => {}
            }
            continue;
        }
        let step = async {
            let id = segment_id(&instance, at.segment);
            if target.segment > at.segment && !dir.join(format!("{id}.journal")).exists() {
                // Indexed and deleted, but its checkpoint could not be forgotten then.
                store.forget_audit_journal(&id).await?;
                return Ok(Position {
                    segment: at.segment + 1,
                    offset: 0,
                });
            }
            let r = match &mut reader {
                Some(r) if r.number == at.segment => r,
                _ => reader.insert(Reader::open(&dir, &instance, at.segment, store.as_ref()).await?),
            };
            if target.segment > r.number {
                // The writer moved on: this segment is complete; index it to its end.
                r.index(store.as_ref(), None).await?;
                finish(&dir, r, store.as_ref()).await?;
                Ok::<_, anyhow::Error>(Position {
                    segment: r.number + 1,
                    offset: 0,
                })
            } else {
                r.index(store.as_ref(), Some(target.offset)).await?;
                Ok(Position {
                    segment: r.number,
                    offset: r.offset,
                })
            }
        };
        match step.await {
            Ok(mut next) => {
                if next.offset == 0 {
                    // Positions in a fresh segment start after its header.
                    next.offset = header_len(&instance, next.segment);
                    reader = None;
                }
                indexed.send_replace(next);
                retry = Duration::from_millis(50);
            }
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    retry_ms = retry.as_millis() as u64,
                    "audit journal: indexing failed; the events are safe in the journal, retrying"
                );
                reader = None;
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(MAX_RETRY);
            }
        }
    }
}

/// Deletes an indexed segment, then its checkpoint (in that order: a checkpoint without its
/// file is harmless, a file without its checkpoint would be indexed twice).
async fn finish(dir: &Path, r: &Reader, store: &dyn Store) -> anyhow::Result<()> {
    let path = dir.join(format!("{}.journal", r.id));
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("deleting {}", path.display())),
    }
    store.forget_audit_journal(&r.id).await?;
    Ok(())
}

/// Reads one segment from its checkpoint on.
struct Reader {
    number: u64,
    id: String,
    file: File,
    offset: u64,
    /// Read buffer, kept between reads (one allocation, not one per chunk).
    buf: Vec<u8>,
}

impl Reader {
    async fn open(dir: &Path, instance: &str, number: u64, store: &dyn Store) -> anyhow::Result<Self> {
        let id = segment_id(instance, number);
        let path = dir.join(format!("{id}.journal"));
        let mut file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let header = format!("{HEADER_PREFIX}{id}\n");
        let mut found = vec![0; header.len()];
        // Reads from a local file: short, and the only I/O this task does besides the store.
        file.read_exact(&mut found)
            .with_context(|| format!("reading the header of {}", path.display()))?;
        if found != header.as_bytes() {
            bail!("{} is not the audit journal segment its name says", path.display());
        }
        let checkpoint = store.audit_journal_checkpoint(&id).await?;
        let offset = checkpoint
            .map_or(0, |c| u64::try_from(c).unwrap_or(0))
            .max(header.len() as u64);
        Ok(Self {
            number,
            id,
            file,
            offset,
            buf: Vec::new(),
        })
    }

    /// Indexes the events from the current offset up to `end` (a synced offset, so only whole
    /// lines), or with `None` up to the end of the file, dropping a torn last line (an append
    /// a crash interrupted: never acknowledged, so nobody was answered on its strength).
    async fn index(&mut self, store: &dyn Store, end: Option<u64>) -> anyhow::Result<()> {
        loop {
            let want = match end {
                Some(end) if self.offset >= end => return Ok(()),
                Some(end) => usize::try_from(end - self.offset).unwrap_or(READ_CHUNK).min(READ_CHUNK),
                None => READ_CHUNK,
            };
            let mut buf = std::mem::take(&mut self.buf);
            buf.clear();
            // Reads of a local file: short, and the only I/O this task does besides the store.
            self.file.seek(SeekFrom::Start(self.offset))?;
            (&self.file).take(want as u64).read_to_end(&mut buf)?;
            let got = buf.len();
            let at_eof = got < want;
            if got == 0 {
                return Ok(());
            }
            let Some(last_newline) = buf.iter().rposition(|b| *b == b'\n') else {
                if end.is_none() && at_eof {
                    self.torn_tail(got);
                    return Ok(());
                }
                bail!(
                    "audit journal {}: no whole event in {got} bytes at byte {}",
                    self.id,
                    self.offset
                );
            };
            let mut events = Vec::new();
            let mut line_start = 0;
            for line in buf[..=last_newline].split_inclusive(|b| *b == b'\n') {
                let Some(event) = decode(&line[..line.len() - 1]) else {
                    let last_in_file = end.is_none() && at_eof && line_start + line.len() == got;
                    self.commit(store, &events, self.offset + line_start as u64).await?;
                    if !last_in_file {
                        bail!(
                            "audit journal {}: damaged event at byte {}; what follows cannot be trusted. \
                             Move the file out of the journal directory to start (its events after that byte are not in the trail)",
                            self.id,
                            self.offset
                        );
                    }
                    self.torn_tail(line.len());
                    return Ok(());
                };
                events.push(event);
                line_start += line.len();
            }
            self.commit(store, &events, self.offset + line_start as u64).await?;
            if end.is_none() && at_eof {
                if line_start < got {
                    self.torn_tail(got - line_start);
                }
                return Ok(());
            }
            self.buf = buf;
        }
    }

    async fn commit(&mut self, store: &dyn Store, events: &[AuditEvent], upto: u64) -> anyhow::Result<()> {
        if upto > self.offset {
            let to = i64::try_from(upto).context("journal offset")?;
            store.index_audit_journal(events, &self.id, to).await?;
            self.offset = upto;
        }
        Ok(())
    }

    fn torn_tail(&self, bytes: usize) {
        tracing::warn!(
            journal = %self.id,
            bytes,
            "audit journal: dropped an incomplete last event (its append was interrupted and never acknowledged)"
        );
    }
}

/// Indexes and deletes the segments of every instance whose lock nobody holds.
async fn adopt_orphans(dir: &Path, store: &dyn Store) -> anyhow::Result<()> {
    let mut instances: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".lock.new") {
            // A start that crashed before its lock got its name; nothing was journaled under it.
            // Only an old one: a gateway starting now holds its own for a few microseconds
            // between creating and locking it.
            let path = dir.join(name);
            let old = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > Duration::from_secs(60)));
            if old && open_private(&path, false)?.try_lock().is_ok() {
                let _ = std::fs::remove_file(&path);
            }
        } else if let Some(instance) = name.strip_suffix(".lock") {
            instances.entry(instance.to_owned()).or_default();
        } else if let Some((instance, number)) = name.strip_suffix(".journal").and_then(|s| s.rsplit_once('-'))
            && let Ok(number) = number.parse::<u64>()
        {
            instances.entry(instance.to_owned()).or_default().push(number);
        }
    }
    for (instance, mut segments) in instances {
        let lock_path = dir.join(format!("{instance}.lock"));
        let lock = open_private(&lock_path, false)?;
        if lock.try_lock().is_err() {
            continue; // a running gateway's own journal
        }
        segments.sort_unstable();
        for number in segments {
            let mut reader = Reader::open(dir, &instance, number, store).await?;
            reader.index(store, None).await?;
            finish(dir, &reader, store).await?;
            tracing::info!(journal = %reader.id, "audit journal: indexed a segment left by an earlier run");
        }
        std::fs::remove_file(&lock_path).with_context(|| format!("deleting {}", lock_path.display()))?;
    }
    Ok(())
}

fn segment_id(instance: &str, number: u64) -> String {
    format!("{instance}-{number:010}")
}

fn header_len(instance: &str, number: u64) -> u64 {
    (HEADER_PREFIX.len() + segment_id(instance, number).len() + 1) as u64
}

fn open_private(path: &Path, create_new: bool) -> anyhow::Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(true);
    if create_new {
        o.create_new(true).append(true);
    } else {
        o.create(true).truncate(false);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.mode(0o600);
    }
    o.open(path).with_context(|| format!("opening {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditFilter;
    use crate::store::sqlite::SqliteStore;

    async fn store(dir: &Path) -> Arc<dyn Store> {
        Arc::new(SqliteStore::open(&dir.join("keystile.db")).await.unwrap())
    }

    fn event(tenant: &TenantId, n: usize) -> AuditEvent {
        let mut e = AuditEvent::new(tenant.clone(), Actor::Key("k1".into()), "proxy.request");
        e.target_path = Some(format!("/n/{n}"));
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
        records.into_iter().filter_map(|r| r.event.target_path).collect()
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
        e.client_ip = Some("127.0.0.1".into());
        e.credential_version = Some(3);
        e.target_path = Some("/p?q=_&\"quoted\"\n".into());
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

    #[tokio::test]
    async fn events_are_indexed_in_order_and_finished_segments_deleted() {
        let tmp = tempfile::tempdir().unwrap();
        let store = store(tmp.path()).await;
        let dir = tmp.path().join("audit");
        std::fs::create_dir_all(&dir).unwrap();
        // One byte per segment: every batch starts a new one.
        let journal = Journal::open(&dir, store.clone(), 1).await.unwrap();
        let tenant = TenantId::generate();
        for n in 0..30 {
            journal.record(&event(&tenant, n)).await.unwrap();
        }
        assert!(journal.caught_up(Duration::from_secs(10)).await);
        let expected: Vec<String> = (0..30).map(|n| format!("/n/{n}")).collect();
        assert_eq!(paths(store.as_ref(), &tenant).await, expected);
        assert_eq!(crate::audit::verify(store.as_ref(), &tenant).await.unwrap().events, 30);
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
        let id = leftover(&dir, "0123456789abcdef0123456789abcdef", 1, &all);
        // The crashed run had indexed the first two events.
        let first_two: Vec<AuditEvent> = (0..2)
            .map(|n| decode(&lines[n][..lines[n].len() - 1]).unwrap())
            .collect();
        let checkpoint = header_len("0123456789abcdef0123456789abcdef", 1) + (lines[0].len() + lines[1].len()) as u64;
        store
            .index_audit_journal(&first_two, &id, checkpoint as i64)
            .await
            .unwrap();

        let journal = Journal::open(&dir, store.clone(), SEGMENT_BYTES).await.unwrap();
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
            files(&dir).iter().all(|f| !f.starts_with("0123456789abcdef")),
            "the adopted files are deleted: {:?}",
            files(&dir)
        );
        // The new run appends after them.
        journal.record(&event(&tenant, 99)).await.unwrap();
        assert!(journal.caught_up(Duration::from_secs(10)).await);
        assert_eq!(paths(store.as_ref(), &tenant).await.last().unwrap(), "/n/99");
        assert!(crate::audit::verify(store.as_ref(), &tenant).await.unwrap().ok);
    }

    #[tokio::test]
    async fn a_damaged_event_before_the_end_stops_the_start_with_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let store = store(tmp.path()).await;
        let dir = tmp.path().join("audit");
        std::fs::create_dir_all(&dir).unwrap();
        let tenant = TenantId::generate();
        let lines = vec![
            encode(&event(&tenant, 0)),
            b"{\"id\":\"garbage\n".to_vec(),
            encode(&event(&tenant, 2)),
        ];
        leftover(&dir, "fedcba9876543210fedcba9876543210", 1, &lines);
        let e = Journal::open(&dir, store.clone(), SEGMENT_BYTES)
            .await
            .err()
            .expect("refused");
        let text = format!("{e:#}");
        assert!(text.contains("damaged event at byte"), "{text}");
        assert_eq!(
            paths(store.as_ref(), &tenant).await,
            vec!["/n/0"],
            "what came before is indexed"
        );
    }

    #[tokio::test]
    async fn a_running_gateways_journal_is_left_to_it() {
        let tmp = tempfile::tempdir().unwrap();
        let store = store(tmp.path()).await;
        let dir = tmp.path().join("audit");
        std::fs::create_dir_all(&dir).unwrap();
        let tenant = TenantId::generate();
        let first = Journal::open(&dir, store.clone(), SEGMENT_BYTES).await.unwrap();
        first.record(&event(&tenant, 1)).await.unwrap();
        let before = files(&dir);
        let second = Journal::open(&dir, store.clone(), SEGMENT_BYTES).await.unwrap();
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
        assert!(crate::audit::verify(store.as_ref(), &tenant).await.unwrap().ok);
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
}
