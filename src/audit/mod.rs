//! The tamper-evident audit trail (SPEC S11): the event type and hash chain ([`event`]), the
//! group-commit writer ([`AuditLog`]), chain verification ([`verify`]) and the hooks that put
//! events into the request pipeline ([`hooks`]).
//!
//! A caller's response is released only once its event is durable: [`AuditLog::record`]
//! resolves when the batch holding the event has been synced to the gateway's audit journal
//! ([`journal`], indexed into the database in the background), or, with
//! `audit.durability = "database"`, committed in one transaction. Events never contain a
//! secret value, a body or a query value. Must not decide who may read the trail (that is
//! `api::audit`).

pub mod event;
pub mod hooks;
pub mod journal;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};

pub use event::{Actor, AuditEvent, AuditRecord, AuditView, GENESIS_HASH, SYSTEM_TENANT, redact_query, system_tenant};

use crate::domain::TenantId;
use crate::store::{Store, StoreResult};

/// Events waiting for the writer before new ones make their callers wait (back-pressure).
pub const QUEUE_CAPACITY: usize = 16_384;
/// Most events written in one transaction.
pub const MAX_BATCH: usize = 512;
/// Events read per query while verifying a chain.
const VERIFY_PAGE: u32 = 1_000;

/// The audit trail could not be written; the request that needed it must fail closed.
#[derive(Debug, thiserror::Error)]
#[error("the audit trail could not be written")]
pub struct AuditError;

impl From<AuditError> for crate::error::ApiError {
    fn from(e: AuditError) -> Self {
        Self::internal(e)
    }
}

/// Filters for listing events (all optional; `before_seq` is the page cursor).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    pub credential: Option<String>,
    /// API key id.
    pub key: Option<String>,
    /// Project id.
    pub project: Option<String>,
    pub action: Option<String>,
    /// Proxy surface.
    pub mode: Option<String>,
    /// Inclusive.
    pub since: Option<DateTime<Utc>>,
    /// Exclusive.
    pub until: Option<DateTime<Utc>>,
    /// Only events with a smaller sequence number (the cursor of the previous page).
    pub before_seq: Option<i64>,
    pub limit: u32,
}

struct Job {
    event: AuditEvent,
    ack: oneshot::Sender<bool>,
}

/// The group-commit writer. Callers hand over an event and wait; a single writer takes every
/// event waiting (up to [`MAX_BATCH`]), makes them durable together and acknowledges them all,
/// so under load many callers share one sync instead of paying one each.
#[derive(Clone)]
pub struct AuditLog {
    sink: Sink,
}

#[derive(Clone)]
enum Sink {
    /// Durable once committed to the database.
    Database(mpsc::Sender<Job>),
    /// Durable once synced to the journal; indexed into the database after.
    Journal(Arc<journal::Journal>),
}

impl AuditLog {
    /// A writer that commits to the database, on the current tokio runtime.
    pub fn spawn(store: Arc<dyn Store>) -> Self {
        Self::spawn_with_batch(store, MAX_BATCH)
    }

    /// A database writer that commits at most `max_batch` events per transaction (1 = one
    /// transaction per event, for comparison).
    pub fn spawn_with_batch(store: Arc<dyn Store>, max_batch: usize) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(write_batches(store, rx, max_batch.max(1)));
        Self {
            sink: Sink::Database(queue),
        }
    }

    /// A writer that appends to a journal in `dir` (see [`journal`]), indexing what earlier
    /// runs left there first.
    pub async fn journal(dir: &Path, store: Arc<dyn Store>, segment_bytes: u64) -> anyhow::Result<Self> {
        let journal = journal::Journal::open(dir, store, segment_bytes).await?;
        Ok(Self {
            sink: Sink::Journal(Arc::new(journal)),
        })
    }

    /// Records an event and waits until it is durable.
    pub async fn record(&self, event: AuditEvent) -> Result<(), AuditError> {
        match &self.sink {
            Sink::Database(queue) => {
                let (ack, done) = oneshot::channel();
                queue.send(Job { event, ack }).await.map_err(|_| AuditError)?;
                match done.await {
                    Ok(true) => Ok(()),
                    _ => Err(AuditError),
                }
            }
            Sink::Journal(journal) => journal.record(&event).await,
        }
    }

    /// Waits (at most `limit`) until every event recorded before this call can be read from
    /// the database; false if the limit passed first. Immediate with database durability.
    pub async fn caught_up(&self, limit: Duration) -> bool {
        match &self.sink {
            Sink::Database(_) => true,
            Sink::Journal(journal) => journal.caught_up(limit).await,
        }
    }

    /// Events queued and not yet taken by the writer (for the metrics endpoint).
    pub fn queue_depth(&self) -> usize {
        match &self.sink {
            Sink::Database(queue) => queue.max_capacity() - queue.capacity(),
            Sink::Journal(journal) => journal.queue_depth(),
        }
    }
}

async fn write_batches(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
    let mut jobs: Vec<Job> = Vec::with_capacity(max_batch);
    let mut events: Vec<AuditEvent> = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut jobs, max_batch).await > 0 {
        let (acks, batch): (Vec<_>, Vec<_>) = jobs.drain(..).map(|j| (j.ack, j.event)).unzip();
        events.extend(batch);
        let ok = match store.append_audit(&events).await {
            Ok(_) => true,
            Err(e) => {
                tracing::error!(
                    error = format!("{e:#}"),
                    events = events.len(),
                    "audit batch not written"
                );
                false
            }
        };
        events.clear();
        for ack in acks {
            // A caller that went away no longer needs its answer.
            let _ = ack.send(ok);
        }
    }
}

/// The result of checking a chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Verification {
    pub ok: bool,
    /// Events found intact (before the first bad one, when there is one).
    pub events: u64,
    /// The first event whose link, content or position is wrong; for a chain cut short at its
    /// end, the last event still present (`null` if none is).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad_event: Option<String>,
    /// Why the chain is broken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

impl Verification {
    fn bad(events: u64, id: Option<String>, reason: &'static str) -> Self {
        Self {
            ok: false,
            events,
            first_bad_event: id,
            reason: Some(reason),
        }
    }
}

/// Walks a tenant's chain from the first event to the head recorded with the last commit,
/// recomputing every hash: an edited row changes its hash, a deleted row leaves a gap in the
/// sequence and a broken link, reordered rows break the links, and a cut at the end no longer
/// reaches the head.
pub async fn verify(store: &dyn Store, tenant: &TenantId) -> StoreResult<Verification> {
    let Some((head_seq, head_hash)) = store.audit_head(tenant).await? else {
        let orphans = store.audit_chain(tenant, 0, i64::MAX, 1).await?;
        return Ok(match orphans.into_iter().next() {
            Some(r) => Verification::bad(0, Some(r.event.id), "the chain head is missing"),
            None => Verification {
                ok: true,
                events: 0,
                first_bad_event: None,
                reason: None,
            },
        });
    };
    let mut prev = GENESIS_HASH.to_owned();
    let mut seen: i64 = 0;
    let mut last_id = None;
    loop {
        let page = store.audit_chain(tenant, seen, head_seq, VERIFY_PAGE).await?;
        let done = page.len() < VERIFY_PAGE as usize;
        for r in page {
            let intact = u64::try_from(seen).unwrap_or(0);
            if r.seq != seen + 1 {
                return Ok(Verification::bad(
                    intact,
                    Some(r.event.id),
                    "an event before this one is missing",
                ));
            }
            if r.prev_hash != prev {
                return Ok(Verification::bad(
                    intact,
                    Some(r.event.id),
                    "this event does not follow the one before it",
                ));
            }
            if r.event.chain_hash(r.seq, &prev) != r.hash {
                return Ok(Verification::bad(intact, Some(r.event.id), "this event was altered"));
            }
            prev = r.hash;
            seen = r.seq;
            last_id = Some(r.event.id);
        }
        if done {
            break;
        }
    }
    let intact = u64::try_from(seen).unwrap_or(0);
    if seen != head_seq || prev != head_hash {
        return Ok(Verification::bad(
            intact,
            last_id,
            "the chain does not reach its recorded head",
        ));
    }
    Ok(Verification {
        ok: true,
        events: intact,
        first_bad_event: None,
        reason: None,
    })
}
