//! Audit-trail queries, shared by both backends like those in `sql.rs`.
//!
//! Appending reads and advances the tenant's chain head inside the writing transaction, and
//! the first statement of that transaction is an upsert on the head row: on PostgreSQL it locks
//! the row (a second gateway appending to the same chain waits, then sees the new head), on
//! SQLite it takes the database write lock before anything is read. So two gateway processes
//! on one database never fork a chain. `audit_events.tenant_id` has no foreign key: the system
//! chain (unknown API keys) belongs to no tenant row.

macro_rules! audit_cols {
    () => {
        "tenant_id, seq, id, time_us, actor_kind, actor_id, action, proxy_mode, credential, credential_version, method, target_host, target_path, status, latency_ms, bytes, client_ip, outcome, prev_hash, hash"
    };
}
pub(super) use audit_cols;

/// Implements the audit queries as inherent methods of `$store`; the `Store` impl delegates.
macro_rules! impl_audit_queries {
    ($store:ty, $db:ty) => {
        impl $store {
            fn audit_from_row(
                row: &<$db as sqlx::Database>::Row,
            ) -> crate::store::StoreResult<crate::audit::AuditRecord> {
                use sqlx::Row as _;
                let get =
                    |e: sqlx::Error| crate::store::StoreError::Database(anyhow::Error::new(e).context("audit row"));
                let text = |name: &str| row.try_get::<String, _>(name).map_err(get);
                let opt_text = |name: &str| row.try_get::<Option<String>, _>(name).map_err(get);
                let opt_int = |name: &str| row.try_get::<Option<i64>, _>(name).map_err(get);
                let bad = |what: &str| {
                    crate::store::StoreError::Database(anyhow::anyhow!("malformed audit_events.{what} column"))
                };
                let time_us: i64 = row.try_get("time_us").map_err(get)?;
                let event = crate::audit::AuditEvent {
                    id: text("id")?,
                    time: chrono::DateTime::from_timestamp_micros(time_us).ok_or_else(|| bad("time_us"))?,
                    tenant_id: crate::store::sql::parsed(
                        crate::domain::TenantId::parse(&text("tenant_id")?),
                        "audit_events.tenant_id",
                    )?,
                    actor: crate::audit::Actor::from_parts(&text("actor_kind")?, opt_text("actor_id")?)
                        .ok_or_else(|| bad("actor"))?,
                    action: text("action")?,
                    proxy_mode: opt_text("proxy_mode")?,
                    credential: opt_text("credential")?,
                    credential_version: opt_int("credential_version")?,
                    method: opt_text("method")?,
                    target_host: opt_text("target_host")?,
                    target_path: opt_text("target_path")?,
                    status: opt_int("status")?,
                    latency_ms: opt_int("latency_ms")?,
                    bytes: opt_int("bytes")?,
                    client_ip: opt_text("client_ip")?,
                    outcome: text("outcome")?,
                };
                Ok(crate::audit::AuditRecord {
                    seq: row.try_get("seq").map_err(get)?,
                    event,
                    prev_hash: text("prev_hash")?,
                    hash: text("hash")?,
                })
            }

            /// Appends `events` to their chains in one transaction; with `journal`, also records
            /// how far that journal is indexed. Rows go in multi-row inserts. Returns the stored
            /// records when no journal is given (the journal's indexer does not need them).
            async fn q_append_audit(
                &self,
                events: &[crate::audit::AuditEvent],
                journal: Option<(&str, i64)>,
            ) -> crate::store::StoreResult<Vec<crate::audit::AuditRecord>> {
                use sqlx::Row as _;
                /// Most rows per INSERT: 20 parameters each stays far below both backends' limits.
                const ROWS_PER_INSERT: usize = 64;
                let err = crate::store::sql::db_err("audit event");
                let mut tx = self.begin_write().await.map_err(&err)?;
                // Lock every head this batch touches, in one order (no deadlock between replicas).
                let mut tenants: Vec<&crate::domain::TenantId> = events.iter().map(|e| &e.tenant_id).collect();
                tenants.sort();
                tenants.dedup();
                let mut heads = std::collections::HashMap::new();
                for tenant in tenants {
                    let row = sqlx::query(
                        "INSERT INTO audit_heads (tenant_id, seq, hash) VALUES ($1, 0, $2) \
                         ON CONFLICT (tenant_id) DO UPDATE SET seq = audit_heads.seq RETURNING seq, hash",
                    )
                    .bind(tenant.as_str())
                    .bind(crate::audit::GENESIS_HASH)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(&err)?;
                    let seq: i64 = row.try_get("seq").map_err(&err)?;
                    let hash: String = row.try_get("hash").map_err(&err)?;
                    heads.insert(tenant.clone(), (seq, hash));
                }
                // (seq, prev_hash, hash) of each event, in order.
                let mut links: Vec<(i64, String, String)> = Vec::with_capacity(events.len());
                for e in events {
                    let Some(head) = heads.get_mut(&e.tenant_id) else {
                        return Err(crate::store::StoreError::Database(anyhow::anyhow!(
                            "audit head missing"
                        )));
                    };
                    let seq = head.0 + 1;
                    let hash = e.chain_hash(seq, &head.1);
                    links.push((seq, std::mem::replace(&mut head.1, hash.clone()), hash));
                    head.0 = seq;
                }
                // Chunks of 64 rows, then of decreasing powers of two: at most seven distinct
                // statements, each prepared once per pooled connection and cached.
                let mut start = 0;
                while start < events.len() {
                    let left = events.len() - start;
                    let rows = if left >= ROWS_PER_INSERT {
                        ROWS_PER_INSERT
                    } else {
                        1 << left.ilog2()
                    };
                    let (chunk, chunk_links) = (&events[start..start + rows], &links[start..start + rows]);
                    start += rows;
                    let mut insert = sqlx::QueryBuilder::<$db>::new(concat!(
                        "INSERT INTO audit_events (",
                        crate::store::sql_audit::audit_cols!(),
                        ") "
                    ));
                    insert.push_values(
                        chunk.iter().zip(chunk_links),
                        |mut row, (e, (seq, prev, hash))| {
                            let (actor_kind, actor_id) = e.actor.parts();
                            row.push_bind(e.tenant_id.as_str())
                                .push_bind(*seq)
                                .push_bind(e.id.as_str())
                                .push_bind(e.time.timestamp_micros())
                                .push_bind(actor_kind)
                                .push_bind(actor_id)
                                .push_bind(e.action.as_str())
                                .push_bind(e.proxy_mode.as_deref())
                                .push_bind(e.credential.as_deref())
                                .push_bind(e.credential_version)
                                .push_bind(e.method.as_deref())
                                .push_bind(e.target_host.as_deref())
                                .push_bind(e.target_path.as_deref())
                                .push_bind(e.status)
                                .push_bind(e.latency_ms)
                                .push_bind(e.bytes)
                                .push_bind(e.client_ip.as_deref())
                                .push_bind(e.outcome.as_str())
                                .push_bind(prev.as_str())
                                .push_bind(hash.as_str());
                        },
                    );
                    insert.build().execute(&mut *tx).await.map_err(&err)?;
                }
                for (tenant, (seq, hash)) in &heads {
                    sqlx::query("UPDATE audit_heads SET seq = $2, hash = $3 WHERE tenant_id = $1")
                        .bind(tenant.as_str())
                        .bind(seq)
                        .bind(hash)
                        .execute(&mut *tx)
                        .await
                        .map_err(&err)?;
                }
                if let Some((journal, indexed_to)) = journal {
                    sqlx::query(
                        "INSERT INTO audit_journals (journal, indexed_to) VALUES ($1, $2) \
                         ON CONFLICT (journal) DO UPDATE SET indexed_to = excluded.indexed_to",
                    )
                    .bind(journal)
                    .bind(indexed_to)
                    .execute(&mut *tx)
                    .await
                    .map_err(&err)?;
                }
                tx.commit().await.map_err(&err)?;
                if journal.is_some() {
                    return Ok(Vec::new());
                }
                Ok(events
                    .iter()
                    .zip(links)
                    .map(|(e, (seq, prev_hash, hash))| crate::audit::AuditRecord {
                        seq,
                        event: e.clone(),
                        prev_hash,
                        hash,
                    })
                    .collect())
            }

            async fn q_audit_journal_checkpoint(&self, journal: &str) -> crate::store::StoreResult<Option<i64>> {
                sqlx::query_scalar("SELECT indexed_to FROM audit_journals WHERE journal = $1")
                    .bind(journal)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(crate::store::sql::db_err("audit journal checkpoint"))
            }

            async fn q_forget_audit_journal(&self, journal: &str) -> crate::store::StoreResult<()> {
                sqlx::query("DELETE FROM audit_journals WHERE journal = $1")
                    .bind(journal)
                    .execute(&self.pool)
                    .await
                    .map_err(crate::store::sql::db_err("audit journal checkpoint"))
                    .map(drop)
            }

            async fn q_list_audit(
                &self,
                tenant: &crate::domain::TenantId,
                f: &crate::audit::AuditFilter,
            ) -> crate::store::StoreResult<Vec<crate::audit::AuditRecord>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    crate::store::sql_audit::audit_cols!(),
                    " FROM audit_events WHERE tenant_id = $1",
                    " AND ($2 IS NULL OR credential = $2)",
                    " AND ($3 IS NULL OR (actor_kind = 'key' AND actor_id = $3))",
                    " AND ($4 IS NULL OR (actor_kind = 'project' AND actor_id = $4))",
                    " AND ($5 IS NULL OR action = $5)",
                    " AND ($6 IS NULL OR proxy_mode = $6)",
                    " AND ($7 IS NULL OR time_us >= $7)",
                    " AND ($8 IS NULL OR time_us < $8)",
                    " AND ($9 IS NULL OR seq < $9)",
                    " ORDER BY seq DESC LIMIT $10"
                ))
                .bind(tenant.as_str())
                .bind(f.credential.as_deref())
                .bind(f.key.as_deref())
                .bind(f.project.as_deref())
                .bind(f.action.as_deref())
                .bind(f.mode.as_deref())
                .bind(f.since.map(|t| t.timestamp_micros()))
                .bind(f.until.map(|t| t.timestamp_micros()))
                .bind(f.before_seq)
                .bind(i64::from(f.limit))
                .fetch_all(&self.pool)
                .await
                .map_err(crate::store::sql::db_err("audit events"))?;
                rows.iter().map(Self::audit_from_row).collect()
            }

            async fn q_audit_chain(
                &self,
                tenant: &crate::domain::TenantId,
                after_seq: i64,
                up_to_seq: i64,
                limit: u32,
            ) -> crate::store::StoreResult<Vec<crate::audit::AuditRecord>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    crate::store::sql_audit::audit_cols!(),
                    " FROM audit_events WHERE tenant_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4"
                ))
                .bind(tenant.as_str())
                .bind(after_seq)
                .bind(up_to_seq)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(crate::store::sql::db_err("audit chain"))?;
                rows.iter().map(Self::audit_from_row).collect()
            }

            async fn q_audit_head(
                &self,
                tenant: &crate::domain::TenantId,
            ) -> crate::store::StoreResult<Option<(i64, String)>> {
                use sqlx::Row as _;
                let err = crate::store::sql::db_err("audit head");
                let row = sqlx::query("SELECT seq, hash FROM audit_heads WHERE tenant_id = $1")
                    .bind(tenant.as_str())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(&err)?;
                match row {
                    None => Ok(None),
                    Some(row) => Ok(Some((
                        row.try_get("seq").map_err(&err)?,
                        row.try_get("hash").map_err(&err)?,
                    ))),
                }
            }
        }
    };
}

pub(super) use impl_audit_queries;
