//! Measures what rate limits and quotas add to a proxied request (numbers for the report;
//! not a test). Run: `cargo run --release --example limits_overhead` (Redis part: needs Redis at
//! `KEYSTILE_TEST_REDIS_URL` or 127.0.0.1:6379, skipped otherwise).
//!
//! 1. The limiter's own work per proxied request (address check, key budget, tenant
//!    requests-per-second and monthly quota), in memory and with Redis, timed call by call.
//! 2. End to end: sequential proxied requests through a gateway to a local upstream, with the
//!    default limits and with every limit switched off, alternating blocks; medians compared.

use std::sync::Arc;
use std::time::{Duration, Instant};

use keystile::config::{Config, DnsConfig, LimitsConfig, LogFormat};
use keystile::domain::{ApiKeyId, Plan, TenantId};
use keystile::limits::usage::UsageMeter;
use keystile::limits::{Bucket, Clock, Counters, Limiter, MemoryCounters, RedisCounters};
use keystile::store::sqlite::SqliteStore;
use secrecy::ExposeSecret as _;
use serde_json::json;

const LIMITER_CALLS: usize = 20_000;
const REQUESTS_PER_BLOCK: usize = 500;
const BLOCKS: usize = 6;

fn median_us(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e6
}

fn p99_us(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() * 99 / 100].as_secs_f64() * 1e6
}

async fn limiter_work(name: &str, counters: Arc<dyn Counters>, clock: Clock, store: Arc<SqliteStore>) {
    let limiter = Limiter::new(
        LimitsConfig {
            proxy_per_minute: u64::MAX,
            auth_failures_per_minute: u64::MAX,
            ..LimitsConfig::default()
        },
        counters,
        clock,
        Arc::new(UsageMeter::new(store)),
    );
    let (key, tenant) = (ApiKeyId::generate(), TenantId::generate());
    let plan = Plan {
        operations_per_month: Some(u64::MAX),
        requests_per_second: Some(u32::MAX),
        ..Plan::default()
    };
    let ip = "127.0.0.1".parse().unwrap();
    // The first operation of a month reads the store once; not part of the steady state.
    let _ = limiter.charge_operation(&tenant, &Plan::default()).await;
    let mut times = Vec::with_capacity(LIMITER_CALLS);
    for _ in 0..LIMITER_CALLS {
        let t = Instant::now();
        limiter.check_client_ip(ip).await.unwrap();
        let _ = limiter.charge_key(&key, Bucket::Proxy).await;
        let _ = limiter.charge_operation(&tenant, &plan).await;
        times.push(t.elapsed());
    }
    println!(
        "limiter work per proxied request, {name}: median {:.1} µs, p99 {:.1} µs ({LIMITER_CALLS} calls)",
        median_us(times.clone()),
        p99_us(times)
    );
}

async fn gateway(dir: &std::path::Path, limits: LimitsConfig) -> (String, String) {
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        database_url: None,
        master_key: None,
        master_key_file: None,
        admin_token: None,
        log_format: LogFormat::Text,
        log_level: "warn".into(),
        proxy: Default::default(),
        dns: DnsConfig::default(),
        limits,
        audit: Default::default(),
        redis_url: None,
        public: Default::default(),
    };
    let prepared = keystile::server::prepare(&config).await.unwrap();
    let admin = prepared.new_admin_key.as_ref().unwrap().expose_secret().to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(keystile::server::run(listener, prepared.state, std::future::pending()));
    (base, admin)
}

async fn end_to_end() {
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_addr = upstream.local_addr().unwrap();
    let app = axum::Router::new().fallback(|| async { "ok" });
    tokio::spawn(async move { axum::serve(upstream, app).await });
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let off = LimitsConfig {
        proxy_per_minute: 0,
        management_per_minute: 0,
        auth_failures_per_minute: 0,
        ..LimitsConfig::default()
    };
    let on = LimitsConfig {
        proxy_per_minute: 1_000_000,
        ..LimitsConfig::default()
    };
    let mut runs = Vec::new();
    for (label, limits) in [("limits on", on), ("limits off", off)] {
        let dir = tempfile::tempdir().unwrap();
        let (base, admin) = gateway(dir.path(), limits).await;
        let made = client
            .post(format!("{base}/v1/credentials"))
            .bearer_auth(&admin)
            .json(&json!({"alias": "svc", "type": "api_key", "data": {"key": "k"},
                "policy": {"allowed_hosts": ["127.0.0.1"], "allow_http": true, "allow_private_network": true}}))
            .send()
            .await
            .unwrap();
        assert_eq!(made.status(), 201);
        runs.push((label, base, admin, Vec::new(), dir));
    }
    for _ in 0..BLOCKS {
        for (_, base, admin, times, _) in runs.iter_mut() {
            for _ in 0..REQUESTS_PER_BLOCK {
                let t = Instant::now();
                let r = client
                    .get(format!("{base}/http://{upstream_addr}/x"))
                    .bearer_auth(&*admin)
                    .header("x-keystile-credential", "svc")
                    .send()
                    .await
                    .unwrap();
                let _ = r.bytes().await.unwrap();
                times.push(t.elapsed());
            }
        }
    }
    let mut medians = Vec::new();
    for (label, _, _, times, _) in runs {
        let m = median_us(times.clone());
        println!(
            "end to end, {label}: median {m:.1} µs, p99 {:.1} µs ({} requests)",
            p99_us(times.clone()),
            times.len()
        );
        medians.push(m);
    }
    println!("difference of medians (on − off): {:.1} µs", medians[0] - medians[1]);
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("k.db")).await.unwrap());
    let clock = Clock::system();
    limiter_work(
        "in-memory counters",
        Arc::new(MemoryCounters::new(clock.clone())),
        clock.clone(),
        store.clone(),
    )
    .await;
    let url = std::env::var("KEYSTILE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("kst-bench-{}:", uuid::Uuid::new_v4().simple());
    match RedisCounters::connect(&url, &prefix, clock.clone()).await {
        Ok(redis) => limiter_work("Redis counters (loopback)", Arc::new(redis), clock, store).await,
        Err(e) => println!("Redis part skipped: {e:#}"),
    }
    end_to_end().await;
}
