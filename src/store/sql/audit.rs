//! The audit trail's rows: events in their chains, the chain heads, and how far each audit
//! journal has been indexed. Links are computed by [`ChainKey`] (the audit's rule); this module
//! only reads heads and persists what it is given.
//!
//! Appending reads and advances the tenant's chain head inside the writing transaction, and
//! the first statement of that transaction is an upsert on the head row: on PostgreSQL it locks
//! the row (a second gateway appending to the same chain waits, then sees the new head), on
//! SQLite the transaction holds the database write lock from its start. So two gateway
//! processes on one database never fork a chain. `audit_events.tenant_id` has no foreign key:
//! the system chain belongs to no tenant row.

use std::collections::HashMap;
use std::sync::OnceLock;

use sqlx_macros::FromRow;

use super::{SqlStore, db_err, parsed};
use crate::audit::event::{Action, CredentialName, Host, Method, Outcome, TargetPath};
use crate::audit::{Actor, AuditEvent, AuditFilter, AuditRecord, ChainHead, ChainKey, LinkVersion};
use crate::domain::{Surface, TenantId};
use crate::store::{JournalMark, StoreError, StoreResult};

/// An `audit_events` row.
#[derive(FromRow)]
struct AuditRow {
    tenant_id: String,
    seq: i64,
    id: String,
    time_us: i64,
    actor_kind: String,
    actor_id: Option<String>,
    action: String,
    proxy_mode: Option<String>,
    credential: Option<String>,
    credential_version: Option<i64>,
    method: Option<String>,
    target_host: Option<String>,
    target_path: Option<String>,
    status: Option<i64>,
    latency_ms: Option<i64>,
    bytes: Option<i64>,
    client_ip: Option<String>,
    outcome: String,
    prev_hash: String,
    hash: String,
    link: i64,
}

impl TryFrom<AuditRow> for AuditRecord {
    type Error = StoreError;

    fn try_from(r: AuditRow) -> StoreResult<Self> {
        let event = AuditEvent {
            id: parsed(uuid::Uuid::parse_str(&r.id), "audit_events.id")?,
            time: super::from_micros(r.time_us, "audit_events.time_us")?,
            tenant_id: parsed(TenantId::parse(&r.tenant_id), "audit_events.tenant_id")?,
            actor: parsed(
                Actor::from_parts(&r.actor_kind, r.actor_id.as_deref()).ok_or(()),
                "audit_events.actor",
            )?,
            action: Action::from(r.action),
            proxy_mode: r
                .proxy_mode
                .map(|m| parsed(Surface::parse(&m).ok_or(()), "audit_events.proxy_mode"))
                .transpose()?,
            credential: r.credential.map(CredentialName::from),
            credential_version: r.credential_version,
            method: r.method.as_deref().map(Method::parse),
            target_host: r.target_host.map(Host::from),
            target_path: r.target_path.map(TargetPath::from),
            status: r
                .status
                .map(|s| parsed(u16::try_from(s), "audit_events.status"))
                .transpose()?,
            latency_ms: r.latency_ms,
            bytes: r.bytes,
            client_ip: r
                .client_ip
                .map(|ip| parsed(ip.parse(), "audit_events.client_ip"))
                .transpose()?,
            outcome: Outcome::parse(&r.outcome),
        };
        Ok(Self {
            seq: r.seq,
            event,
            link: parsed(LinkVersion::from_i64(r.link).ok_or(()), "audit_events.link")?,
            prev_hash: r.prev_hash,
            hash: r.hash,
        })
    }
}

/// The columns an event row is written with, in the order [`bind_record`] binds them.
const COLUMNS: &str = "tenant_id, seq, id, time_us, actor_kind, actor_id, action, proxy_mode, credential, \
                       credential_version, method, target_host, target_path, status, latency_ms, bytes, client_ip, \
                       outcome, prev_hash, hash, link";
/// How many columns [`COLUMNS`] names.
const COLUMN_COUNT: usize = 21;
/// Most rows per INSERT: 21 parameters each stays far below both backends' limits.
const ROWS_PER_INSERT: usize = 64;

/// Binds one record's columns, in [`COLUMNS`] order.
fn bind_record<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    r: &'q AuditRecord,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    // Destructured whole: a field added to the event fails to compile here until it is stored.
    let AuditEvent {
        id,
        time,
        tenant_id,
        actor,
        action,
        proxy_mode,
        credential,
        credential_version,
        method,
        target_host,
        target_path,
        status,
        latency_ms,
        bytes,
        client_ip,
        outcome,
    } = &r.event;
    let (actor_kind, actor_id) = actor.parts();
    query
        .bind(tenant_id.as_str())
        .bind(r.seq)
        .bind(id.hyphenated().to_string())
        .bind(super::micros(*time))
        .bind(actor_kind)
        .bind(actor_id)
        .bind(action.as_str())
        .bind(proxy_mode.map(Surface::as_str))
        .bind(credential.as_ref().map(|c| c.as_str()))
        .bind(*credential_version)
        .bind(method.as_ref().map(Method::as_str))
        .bind(target_host.as_ref().map(|h| h.as_str()))
        .bind(target_path.as_ref().map(|p| p.as_str()))
        .bind(status.map(i64::from))
        .bind(*latency_ms)
        .bind(*bytes)
        .bind(client_ip.map(|ip| ip.to_string()))
        .bind(outcome.as_str())
        .bind(r.prev_hash.as_str())
        .bind(r.hash.as_str())
        .bind(r.link.as_i64())
}

/// The INSERT for `rows` rows (a power of two up to [`ROWS_PER_INSERT`]), built once: at most
/// seven distinct statements, each prepared once per pooled connection and cached. (sqlx's
/// query builder writes `?` placeholders for `Any`, which PostgreSQL does not take.)
fn insert_sql(rows: usize) -> &'static str {
    static SQL: OnceLock<Vec<String>> = OnceLock::new();
    let all = SQL.get_or_init(|| {
        (0..=ROWS_PER_INSERT.ilog2())
            .map(|power| {
                let mut sql = format!("INSERT INTO audit_events ({COLUMNS}) VALUES ");
                for row in 0..1usize << power {
                    sql.push_str(if row == 0 { "(" } else { ", (" });
                    for col in 0..COLUMN_COUNT {
                        let sep = if col == 0 { "" } else { ", " };
                        sql.push_str(&format!("{sep}${}", row * COLUMN_COUNT + col + 1));
                    }
                    sql.push(')');
                }
                sql
            })
            .collect()
    });
    &all[rows.ilog2() as usize]
}

/// Appends `events`, linked by `chain`, in one transaction; with `journal`, also records how
/// far that journal is indexed.
pub(super) async fn append(
    db: &SqlStore,
    events: Vec<AuditEvent>,
    chain: &ChainKey,
    journal: Option<JournalMark<'_>>,
) -> StoreResult<Vec<AuditRecord>> {
    let err = db_err("audit event");
    let mut tx = db.begin_write().await.map_err(&err)?;
    // Lock every head this batch touches, in one order (no deadlock between replicas).
    let mut tenants: Vec<&TenantId> = events.iter().map(|e| &e.tenant_id).collect();
    tenants.sort();
    tenants.dedup();
    let mut heads: HashMap<TenantId, ChainHead> = HashMap::with_capacity(tenants.len());
    for tenant in tenants {
        let (seq, hash): (i64, String) = sqlx::query_as(
            "INSERT INTO audit_heads (tenant_id, seq, hash) VALUES ($1, 0, $2) \
             ON CONFLICT (tenant_id) DO UPDATE SET seq = audit_heads.seq RETURNING seq, hash",
        )
        .bind(tenant.as_str())
        .bind(crate::audit::GENESIS_HASH)
        .fetch_one(&mut *tx)
        .await
        .map_err(&err)?;
        heads.insert(tenant.clone(), ChainHead { seq, hash });
    }
    let mut records = Vec::with_capacity(events.len());
    for event in events {
        let Some(head) = heads.get_mut(&event.tenant_id) else {
            return Err(StoreError::Database(anyhow::anyhow!("audit head missing")));
        };
        records.push(chain.link(head, event));
    }
    // Chunks of 64 rows, then of decreasing powers of two.
    let mut rest = records.as_slice();
    while !rest.is_empty() {
        let rows = rest.len().min(ROWS_PER_INSERT);
        let rows = 1 << rows.ilog2();
        let (chunk, after) = rest.split_at(rows);
        rest = after;
        let query = chunk.iter().fold(sqlx::query(insert_sql(rows)), bind_record);
        query.execute(&mut *tx).await.map_err(&err)?;
    }
    for (tenant, head) in &heads {
        sqlx::query("UPDATE audit_heads SET seq = $2, hash = $3 WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .bind(head.seq)
            .bind(head.hash.as_str())
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
    }
    if let Some(mark) = journal {
        sqlx::query(
            "INSERT INTO audit_journals (journal, indexed_to) VALUES ($1, $2) \
             ON CONFLICT (journal) DO UPDATE SET indexed_to = excluded.indexed_to",
        )
        .bind(mark.journal)
        .bind(mark.indexed_to)
        .execute(&mut *tx)
        .await
        .map_err(&err)?;
    }
    tx.commit().await.map_err(&err)?;
    Ok(records)
}

/// How far `journal` has been indexed.
pub(super) async fn journal_checkpoint(db: &SqlStore, journal: &str) -> StoreResult<Option<i64>> {
    sqlx::query_scalar("SELECT indexed_to FROM audit_journals WHERE journal = $1")
        .bind(journal)
        .fetch_optional(&db.pool)
        .await
        .map_err(db_err("audit journal checkpoint"))
}

/// Forgets a journal indexed to its end.
pub(super) async fn forget_journal(db: &SqlStore, journal: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM audit_journals WHERE journal = $1")
        .bind(journal)
        .execute(&db.pool)
        .await
        .map_err(db_err("audit journal checkpoint"))?;
    Ok(())
}

/// A tenant's events matching `f`, newest first.
pub(super) async fn list(db: &SqlStore, tenant: &TenantId, f: &AuditFilter) -> StoreResult<Vec<AuditRecord>> {
    let rows: Vec<AuditRow> = sqlx::query_as(
        "SELECT * FROM audit_events WHERE tenant_id = $1 \
         AND ($2 IS NULL OR credential = $2) \
         AND ($3 IS NULL OR (actor_kind = 'key' AND actor_id = $3)) \
         AND ($4 IS NULL OR (actor_kind = 'project' AND actor_id = $4)) \
         AND ($5 IS NULL OR action = $5) \
         AND ($6 IS NULL OR proxy_mode = $6) \
         AND ($7 IS NULL OR time_us >= $7) \
         AND ($8 IS NULL OR time_us < $8) \
         AND ($9 IS NULL OR seq < $9) \
         ORDER BY seq DESC LIMIT $10",
    )
    .bind(tenant.as_str())
    .bind(f.credential.as_deref())
    .bind(f.key.as_deref())
    .bind(f.project.as_deref())
    .bind(f.action.as_deref())
    .bind(f.mode.map(Surface::as_str))
    .bind(f.since.map(super::micros))
    .bind(f.until.map(super::micros))
    .bind(f.before_seq)
    .bind(i64::from(f.limit))
    .fetch_all(&db.pool)
    .await
    .map_err(db_err("audit events"))?;
    rows.into_iter().map(TryInto::try_into).collect()
}

/// A tenant's events with `after_seq < seq <= up_to_seq`, oldest first.
pub(super) async fn chain(
    db: &SqlStore,
    tenant: &TenantId,
    after_seq: i64,
    up_to_seq: i64,
    limit: u32,
) -> StoreResult<Vec<AuditRecord>> {
    let rows: Vec<AuditRow> = sqlx::query_as(
        "SELECT * FROM audit_events WHERE tenant_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4",
    )
    .bind(tenant.as_str())
    .bind(after_seq)
    .bind(up_to_seq)
    .bind(i64::from(limit))
    .fetch_all(&db.pool)
    .await
    .map_err(db_err("audit chain"))?;
    rows.into_iter().map(TryInto::try_into).collect()
}

/// A tenant's chain head.
pub(super) async fn head(db: &SqlStore, tenant: &TenantId) -> StoreResult<Option<ChainHead>> {
    let row: Option<(i64, String)> = sqlx::query_as("SELECT seq, hash FROM audit_heads WHERE tenant_id = $1")
        .bind(tenant.as_str())
        .fetch_optional(&db.pool)
        .await
        .map_err(db_err("audit head"))?;
    Ok(row.map(|(seq, hash)| ChainHead { seq, hash }))
}

/// The tenants whose newest event has an unkeyed link.
pub(super) async fn unkeyed_chains(db: &SqlStore) -> StoreResult<Vec<TenantId>> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT h.tenant_id FROM audit_heads h JOIN audit_events e ON e.tenant_id = h.tenant_id AND e.seq = h.seq \
         WHERE e.link = 1 ORDER BY h.tenant_id",
    )
    .fetch_all(&db.pool)
    .await
    .map_err(db_err("audit chains"))?;
    ids.iter()
        .map(|id| parsed(TenantId::parse(id), "audit_heads.tenant_id"))
        .collect()
}
