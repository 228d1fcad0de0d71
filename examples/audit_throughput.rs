//! Measures the audit trail's write throughput: group commit (the default writer) against one
//! transaction per event, on SQLite and (if reachable) PostgreSQL, and the latency one event
//! adds to an otherwise idle gateway.
//!
//! ```sh
//! cargo run --release --example audit_throughput                 # SQLite, 20000 events, 64 callers
//! cargo run --release --example audit_throughput -- postgres://postgres@127.0.0.1:5432/test
//! ```

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use keystile::audit::event::{Host, Method, TargetPath};
use keystile::audit::{self, Actor, AuditEvent, AuditLog, ChainKey, Chains};
use keystile::crypto::MasterKey;
use keystile::domain::{ApiKeyId, Surface, TenantId};
use keystile::store::{SqlStore, Store};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, Connection as _};

const EVENTS: usize = 20_000;
const CALLERS: usize = 64;
const SEQUENTIAL: usize = 500;

fn event(tenant: &TenantId, i: usize) -> AuditEvent {
    let mut e = AuditEvent::new(tenant.clone(), Actor::Key(ApiKeyId::generate()), "proxy.request");
    e.proxy_mode = Some(Surface::Path);
    e.credential = Some("bench".into());
    e.credential_version = Some(1);
    e.method = Some(Method::parse("GET"));
    e.target_host = Some(Host::from("api.example.com"));
    e.target_path = Some(TargetPath::cut(format!("/v1/items/{i}?page=_")));
    e.status = Some(200);
    e.latency_ms = Some(3);
    e.bytes = Some(512);
    e.client_ip = Some(std::net::Ipv4Addr::LOCALHOST.into());
    e
}

/// `events` events from `callers` concurrent callers, each waiting for its commit.
async fn throughput(store: Arc<dyn Store>, batch: usize, events: usize, callers: usize) -> anyhow::Result<f64> {
    let tenant = store.ensure_tenant("bench").await?.id;
    let chains = Chains::new(ChainKey::derive(&MasterKey::generate()));
    let log = AuditLog::spawn_with_batch(store.clone(), chains.clone(), batch);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..callers {
        let (log, tenant) = (log.clone(), tenant.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..events / callers {
                log.record(event(&tenant, c * events + i)).await?;
            }
            Ok::<_, audit::AuditError>(())
        }));
    }
    for t in tasks {
        t.await.context("caller")??;
    }
    let elapsed = started.elapsed();
    let v = chains.verify(store.as_ref(), &tenant).await?;
    anyhow::ensure!(v.ok && v.events as usize == events / callers * callers, "chain: {v:?}");
    Ok((events / callers * callers) as f64 / elapsed.as_secs_f64())
}

/// Median and 99th percentile of one event's commit wait, one caller at a time.
async fn latency(store: Arc<dyn Store>) -> anyhow::Result<(Duration, Duration)> {
    let tenant = store.ensure_tenant("latency").await?.id;
    let log = AuditLog::spawn(store, Chains::new(ChainKey::derive(&MasterKey::generate())));
    let mut samples = Vec::with_capacity(SEQUENTIAL);
    for i in 0..SEQUENTIAL {
        let t = Instant::now();
        log.record(event(&tenant, i)).await?;
        samples.push(t.elapsed());
    }
    samples.sort();
    Ok((samples[SEQUENTIAL / 2], samples[SEQUENTIAL * 99 / 100]))
}

async fn fresh_store(pg: Option<&str>, dir: &std::path::Path, name: &str) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match pg {
        None => Arc::new(SqlStore::open(&dir.join(format!("{name}.db"))).await?),
        Some(url) => {
            let schema = format!("ks_bench_{name}_{}", uuid::Uuid::new_v4().simple());
            let mut conn = PgConnection::connect_with(&PgConnectOptions::from_str(url)?).await?;
            // `schema` is built from fixed words and hex digits: nothing to quote.
            sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(&mut conn)
                .await?;
            let sep = if url.contains('?') { '&' } else { '?' };
            Arc::new(SqlStore::connect(&format!("{url}{sep}options[search_path]={schema}")).await?)
        }
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let pg = std::env::args().nth(1);
    let dir = tempfile::tempdir()?;
    let backend = if pg.is_some() { "PostgreSQL" } else { "SQLite" };
    println!("{backend}: {EVENTS} events from {CALLERS} concurrent callers");
    let group = throughput(
        fresh_store(pg.as_deref(), dir.path(), "group").await?,
        audit::MAX_BATCH,
        EVENTS,
        CALLERS,
    )
    .await?;
    println!(
        "  group commit (batches of up to {}): {group:>9.0} events/s",
        audit::MAX_BATCH
    );
    let single = throughput(
        fresh_store(pg.as_deref(), dir.path(), "single").await?,
        1,
        EVENTS / 4,
        CALLERS,
    )
    .await?;
    println!("  one transaction per event:          {single:>9.0} events/s");
    println!("  ratio: {:.1}x", group / single);
    let (p50, p99) = latency(fresh_store(pg.as_deref(), dir.path(), "latency").await?).await?;
    println!("  one event, idle writer: median {p50:?}, p99 {p99:?} (added to each response)");
    if pg.is_some() {
        println!("  (schemas ks_bench_* are left in the database for inspection; drop them when done)");
    }
    Ok(())
}
