//! The audit journal: where an event becomes durable before its response is released, when
//! `audit.durability = "journal"` (SPEC S11).
//!
//! Callers hand a serialized event to one writer thread ([`writer`]), which appends every
//! event waiting (up to [`MAX_BATCH`](crate::audit::MAX_BATCH)) with one `write` and makes them durable with one
//! `fdatasync`, then acknowledges them all: a lone request pays one sync of a small append
//! (about 0.1 ms on this project's machines) instead of a database transaction, and
//! concurrent requests share it (group commit). A separate task, the indexer, follows the
//! journal up to the synced offset and, every [`INDEX_INTERVAL`] at most (at once when
//! someone reads the trail), appends the events to the database's per-tenant hash chains;
//! each of its transactions also records how far the journal is indexed, so a restart resumes
//! exactly where it stopped (no event lost, none indexed twice). Reading the trail through
//! this gateway first waits for its indexer to catch up ([`Journal::caught_up`]).
//!
//! Files, in the journal directory (`<data_dir>/audit`): `<instance>.lock`, held (flock) by
//! the running gateway, and its segments `<instance>-<n>.journal`. A segment starts with a
//! header line naming it, then holds one event per line (the event's serde form, JSON). The
//! writer starts a new segment once one exceeds the configured size; the indexer deletes a
//! segment it has indexed to the end. A gateway that starts adopts the segments of every
//! instance whose lock nobody holds (one that crashed, or a stopped replica on the same data
//! directory), indexes them before it serves, and deletes them.
//!
//! Any line it wrote reads back, whatever its size (a line longer than a read grows the read).
//! Damage never stops the gateway ([`reader`]): a segment with a line that is not an event is
//! copied as it is into `quarantine/` before the indexer moves past that line, every readable
//! event is indexed, and the damage is reported (error log, the
//! `keystile_audit_journal_damaged_segments` counter, an `audit.journal_damaged` event on the
//! system chain).
//!
//! Written by hand because it is a few hundred lines that no crate provides in this shape:
//! a write-ahead log whose consumer is a SQL transaction with its own checkpoint.

mod reader;
#[cfg(test)]
mod tests;
mod writer;

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::{mpsc, oneshot, watch};

use super::{AuditError, AuditEvent, Chains, QUEUE_CAPACITY};
use crate::store::Store;
use reader::Reader;
use writer::{Segment, Writer};

/// A new segment is started once the current one has this many bytes.
pub const SEGMENT_BYTES: u64 = 8 * 1024 * 1024;
/// Bytes of a segment read (and indexed in one transaction) at a time; a line that does not
/// fit doubles the read until it does.
const READ_CHUNK: usize = 256 * 1024;
/// How long synced events may wait to be indexed (unless someone reads the trail).
const INDEX_INTERVAL: Duration = Duration::from_millis(100);
/// Longest wait between two attempts to index after the database refused.
const MAX_RETRY: Duration = Duration::from_secs(2);
const HEADER_PREFIX: &str = "keystile-audit-journal 1 ";
/// Where damaged segments are kept, under the journal directory.
pub const QUARANTINE: &str = "quarantine";

/// A place in the journal: segment number, then byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

/// No encoded event is longer (newline included): the sum of its fields' bounds, with every
/// byte of every bounded text escaped as JSON's six-byte `\u00XX`, and room for ids and numbers.
pub const MAX_LINE_BYTES: usize = 32 * 1024;

/// An event as one journal line, newline included: its serde form, which never contains a
/// raw newline (JSON escapes control characters), and is at most [`MAX_LINE_BYTES`] long.
pub fn encode(e: &AuditEvent) -> Vec<u8> {
    // Serializing our own plain data into a Vec cannot fail.
    let mut out = serde_json::to_vec(e).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Parses one journal line (without its newline); `None` if it is not a whole event.
pub fn decode(line: &[u8]) -> Option<AuditEvent> {
    serde_json::from_slice(line).ok()
}

struct Job {
    line: Vec<u8>,
    ack: oneshot::Sender<bool>,
}

/// What the indexer and the start-up share: the store, the chains, the directory and the
/// damage counter.
#[derive(Clone)]
struct Context {
    store: Arc<dyn Store>,
    chains: Chains,
    dir: PathBuf,
    damaged: Counter,
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
    /// Opens a journal in `dir` (which must exist, mode 0700): first indexes and deletes what
    /// earlier, no longer running gateways left there (setting damaged segments aside), then
    /// starts this gateway's writer thread and indexer. Fails only if the leftovers cannot be
    /// indexed because the database refuses, or the journal cannot be created.
    pub async fn open(
        dir: &Path,
        store: Arc<dyn Store>,
        segment_bytes: u64,
        chains: Chains,
        damaged: Counter,
    ) -> anyhow::Result<Self> {
        let cx = Context {
            store,
            chains,
            dir: dir.to_owned(),
            damaged,
        };
        let reports = reader::adopt_orphans(&cx).await?;
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
        let journal = Self {
            jobs: jobs.clone(),
            durable: durable.clone(),
            indexed,
            hurry: hurry.clone(),
        };
        // What adoption found damaged goes on the system chain through the journal itself.
        for event in reports {
            if journal.record(&event).await.is_err() {
                tracing::error!("audit journal: the report of a damaged segment could not be journaled");
            }
        }
        tokio::spawn(follow(cx, instance, jobs, durable, indexed_tx, hurry));
        Ok(journal)
    }

    /// Appends an event and waits until it is synced to disk.
    pub async fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        record_line(&self.jobs, encode(event)).await
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

async fn record_line(jobs: &mpsc::Sender<Job>, line: Vec<u8>) -> Result<(), AuditError> {
    let (ack, done) = oneshot::channel();
    jobs.send(Job { line, ack }).await.map_err(|_| AuditError)?;
    match done.await {
        Ok(true) => Ok(()),
        _ => Err(AuditError),
    }
}

/// The indexer of this gateway's own segments: follows the synced position, indexes, deletes
/// finished segments, and publishes how far it got.
async fn follow(
    cx: Context,
    instance: String,
    jobs: mpsc::Sender<Job>,
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
        let step = step(&cx, &instance, &mut reader, at, target).await;
        if let Some(r) = &mut reader {
            for event in r.take_reports() {
                // Journaled like any event (the writer is its own thread): indexed next round.
                if record_line(&jobs, encode(&event)).await.is_err() {
                    tracing::error!("audit journal: the report of a damaged segment could not be journaled");
                }
            }
        }
        match step {
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

/// Indexes from `at` towards `target`; returns where indexing got to (offset 0: the start of
/// the next segment).
async fn step(
    cx: &Context,
    instance: &str,
    reader: &mut Option<Reader>,
    at: Position,
    target: Position,
) -> anyhow::Result<Position> {
    let id = segment_id(instance, at.segment);
    if target.segment > at.segment && !cx.dir.join(format!("{id}.journal")).exists() {
        // Indexed and deleted, but its checkpoint could not be forgotten then.
        cx.store.forget_audit_journal(&id).await?;
        return Ok(Position {
            segment: at.segment + 1,
            offset: 0,
        });
    }
    let r = match reader {
        Some(r) if r.number == at.segment => r,
        _ => reader.insert(Reader::open(cx, instance, at.segment).await?),
    };
    if target.segment > r.number {
        // The writer moved on: this segment is complete; index it to its end.
        r.index(cx, None).await?;
        reader::finish(cx, r).await?;
        Ok(Position {
            segment: r.number + 1,
            offset: 0,
        })
    } else {
        r.index(cx, Some(target.offset)).await?;
        Ok(Position {
            segment: r.number,
            offset: r.offset,
        })
    }
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
