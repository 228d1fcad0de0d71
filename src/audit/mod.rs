//! The tamper-evident audit trail (SPEC S11): the event type ([`event`]) with its bounded
//! fields ([`text`]), the keyed per-tenant chains ([`chain`]), their checkpoints outside the
//! database ([`checkpoint`]), the group-commit writer ([`AuditLog`]), chain verification
//! ([`verify`]) and the hooks that put events into the request pipeline ([`hooks`]).
//!
//! A caller's response is released only once its event is durable: [`AuditLog::record`]
//! resolves when the batch holding the event has been synced to the gateway's audit journal
//! ([`journal`], indexed into the database in the background), or, with
//! `audit.durability = "database"`, committed in one transaction. Events never contain a
//! secret value, a body or a query value. Must not decide who may read the trail (that is
//! `api::audit`).

pub mod chain;
pub mod checkpoint;
pub mod event;
pub mod hooks;
pub mod journal;
pub mod text;
mod verify;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::{mpsc, oneshot};

pub use chain::{ChainHead, ChainKey, GENESIS_HASH, LinkVersion};
pub use checkpoint::Checkpoints;
pub use event::{Actor, AuditEvent, AuditRecord, AuditView, Outcome, SYSTEM_TENANT, redact_query, system_tenant};
pub use verify::{Verification, verify};

use crate::domain::{Surface, TenantId};
use crate::store::{JournalMark, Store, StoreResult};

/// Events waiting for the writer before new ones make their callers wait (back-pressure).
pub const QUEUE_CAPACITY: usize = 16_384;
/// Most events written in one transaction.
pub const MAX_BATCH: usize = 512;

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
    pub mode: Option<Surface>,
    /// Inclusive.
    pub since: Option<DateTime<Utc>>,
    /// Exclusive.
    pub until: Option<DateTime<Utc>>,
    /// Only events with a smaller sequence number (the cursor of the previous page).
    pub before_seq: Option<i64>,
    pub limit: u32,
}

/// How events join their chains: the key that links them, and the checkpoints (when the
/// gateway keeps them) that every append advances.
#[derive(Clone, Debug)]
pub struct Chains {
    pub key: ChainKey,
    pub checkpoints: Option<Arc<Checkpoints>>,
}

impl Chains {
    /// Chains linked by `key`, without checkpoints.
    pub fn new(key: ChainKey) -> Self {
        Self { key, checkpoints: None }
    }

    /// Appends `events` (see [`Store::append_audit`]) and advances the checkpoints to the new
    /// heads.
    pub async fn append(
        &self,
        store: &dyn Store,
        events: Vec<AuditEvent>,
        journal: Option<JournalMark<'_>>,
    ) -> StoreResult<Vec<AuditRecord>> {
        let records = store.append_audit(events, &self.key, journal).await?;
        if let Some(checkpoints) = &self.checkpoints {
            checkpoints.advance(&records);
        }
        Ok(records)
    }

    /// Verifies a tenant's chain against its checkpoint, if one is kept.
    pub async fn verify(&self, store: &dyn Store, tenant: &TenantId) -> StoreResult<Verification> {
        let checkpoint = match &self.checkpoints {
            Some(c) => c.load(tenant),
            None => checkpoint::Loaded::None,
        };
        verify(store, &self.key, tenant, checkpoint).await
    }
}

/// Seals every chain whose newest link is unkeyed (written before links were keyed) with a
/// keyed `audit.chain_keyed` event, whose hash covers the unkeyed ones. Returns how many.
pub async fn seal_legacy_chains(store: &dyn Store, chains: &Chains) -> StoreResult<usize> {
    let tenants = store.unkeyed_audit_chains().await?;
    let events: Vec<AuditEvent> = tenants
        .into_iter()
        .map(|t| AuditEvent::new(t, Actor::None, "audit.chain_keyed"))
        .collect();
    let sealed = events.len();
    if sealed > 0 {
        chains.append(store, events, None).await?;
        tracing::info!(chains = sealed, "audit: sealed chains written before links were keyed");
    }
    Ok(sealed)
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
    chains: Chains,
    /// Journal segments found damaged and set aside (a metric).
    damaged_segments: Counter,
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
    pub fn spawn(store: Arc<dyn Store>, chains: Chains) -> Self {
        Self::spawn_with_batch(store, chains, MAX_BATCH)
    }

    /// A database writer that commits at most `max_batch` events per transaction (1 = one
    /// transaction per event, for comparison).
    pub fn spawn_with_batch(store: Arc<dyn Store>, chains: Chains, max_batch: usize) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(write_batches(store, chains.clone(), rx, max_batch.max(1)));
        Self {
            sink: Sink::Database(queue),
            chains,
            damaged_segments: Counter::default(),
        }
    }

    /// A writer that appends to a journal in `dir` (see [`journal`]), indexing what earlier
    /// runs left there first.
    pub async fn journal(
        dir: &Path,
        store: Arc<dyn Store>,
        segment_bytes: u64,
        chains: Chains,
    ) -> anyhow::Result<Self> {
        let damaged_segments = Counter::default();
        let journal =
            journal::Journal::open(dir, store, segment_bytes, chains.clone(), damaged_segments.clone()).await?;
        Ok(Self {
            sink: Sink::Journal(Arc::new(journal)),
            chains,
            damaged_segments,
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
    /// the database and its chain's checkpoint is written; false if the limit passed first.
    pub async fn caught_up(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        let indexed = match &self.sink {
            Sink::Database(_) => true,
            Sink::Journal(journal) => journal.caught_up(limit).await,
        };
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        indexed
            && match &self.chains.checkpoints {
                Some(c) => c.flushed(left).await,
                None => true,
            }
    }

    /// Verifies a tenant's chain (with its checkpoint, when this gateway keeps them).
    pub async fn verify(&self, store: &dyn Store, tenant: &TenantId) -> StoreResult<Verification> {
        self.chains.verify(store, tenant).await
    }

    /// The chains' key and checkpoints.
    pub fn chains(&self) -> &Chains {
        &self.chains
    }

    /// Events queued and not yet taken by the writer (for the metrics endpoint).
    pub fn queue_depth(&self) -> usize {
        match &self.sink {
            Sink::Database(queue) => queue.max_capacity() - queue.capacity(),
            Sink::Journal(journal) => journal.queue_depth(),
        }
    }

    /// The count of journal segments found damaged and set aside (for the metrics registry).
    pub fn damaged_segments(&self) -> Counter {
        self.damaged_segments.clone()
    }
}

async fn write_batches(store: Arc<dyn Store>, chains: Chains, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
    let mut jobs: Vec<Job> = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut jobs, max_batch).await > 0 {
        let (acks, events): (Vec<_>, Vec<_>) = jobs.drain(..).map(|j| (j.ack, j.event)).unzip();
        let count = events.len();
        let ok = match chains.append(store.as_ref(), events, None).await {
            Ok(_) => true,
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), events = count, "audit batch not written");
                false
            }
        };
        for ack in acks {
            // A caller that went away no longer needs its answer.
            let _ = ack.send(ok);
        }
    }
}
