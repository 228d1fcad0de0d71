//! Limiter tests on tokio's paused clock (windows reset on schedule without waiting), with
//! in-memory counters and with Redis (two limiters sharing one prefix act as two replicas).

use std::time::Duration;

use super::*;
use crate::store::sqlite::SqliteStore;

fn config(proxy: u64, management: u64, auth_failures: u64) -> LimitsConfig {
    LimitsConfig {
        proxy_per_minute: proxy,
        management_per_minute: management,
        auth_failures_per_minute: auth_failures,
        ..LimitsConfig::default()
    }
}

async fn meter() -> (Arc<UsageMeter>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("k.db")).await.unwrap();
    (Arc::new(UsageMeter::new(Arc::new(store))), dir)
}

/// A limiter on in-memory counters whose clock starts `offset_ms` into a minute. With
/// `paused`, tokio's time is paused once the (SQLite-backed) usage meter is open: SQLite works
/// on a thread of its own, and paused time would time out its pool.
async fn memory_limiter(config: LimitsConfig, offset_ms: u64, paused: bool) -> (Limiter, tempfile::TempDir) {
    let (usage, dir) = meter().await;
    if paused {
        tokio::time::pause();
    }
    let clock = Clock::starting_at(1_800_000_000_000 + offset_ms);
    let counters = Arc::new(MemoryCounters::new(clock.clone()));
    (Limiter::new(config, counters, clock, usage), dir)
}

fn assert_rate_limited(r: Result<(), ApiError>) -> u64 {
    match r {
        Err(ApiError::RateLimited { retry_after_secs, .. }) => retry_after_secs,
        other => panic!("expected rate_limited, got {other:?}"),
    }
}

#[tokio::test]
async fn a_key_is_refused_exactly_after_its_limit_and_again_allowed_when_the_minute_turns() {
    // 20 s into a minute: the window resets 40 s from now.
    let (limiter, _dir) = memory_limiter(config(3, 100, 10), 20_000, true).await;
    let key = ApiKeyId::generate();
    for expected_remaining in [2, 1, 0] {
        let (status, verdict) = limiter.charge_key(&key, Bucket::Proxy).await.unwrap();
        assert!(verdict.is_ok());
        assert_eq!(status.limit, 3);
        assert_eq!(status.remaining, expected_remaining);
        assert_eq!(status.reset_unix, 1_800_000_060);
    }
    let (status, verdict) = limiter.charge_key(&key, Bucket::Proxy).await.unwrap();
    assert_eq!(status.remaining, 0);
    assert_eq!(assert_rate_limited(verdict), 40);
    // The management budget is separate.
    assert!(limiter.charge_key(&key, Bucket::Management).await.unwrap().1.is_ok());
    // Another key is unaffected.
    assert!(
        limiter
            .charge_key(&ApiKeyId::generate(), Bucket::Proxy)
            .await
            .unwrap()
            .1
            .is_ok()
    );

    tokio::time::advance(Duration::from_millis(39_999)).await;
    assert_rate_limited(limiter.charge_key(&key, Bucket::Proxy).await.unwrap().1);
    tokio::time::advance(Duration::from_millis(1)).await;
    let (status, verdict) = limiter.charge_key(&key, Bucket::Proxy).await.unwrap();
    assert!(verdict.is_ok(), "a new window starts on schedule");
    assert_eq!(status.remaining, 2);
    assert_eq!(status.reset_unix, 1_800_000_120);
}

#[tokio::test]
async fn a_zero_limit_disables_the_key_limit() {
    let (limiter, _dir) = memory_limiter(config(0, 0, 10), 0, true).await;
    assert!(limiter.charge_key(&ApiKeyId::generate(), Bucket::Proxy).await.is_none());
}

#[tokio::test]
async fn an_address_is_refused_after_its_failures_until_the_window_resets() {
    let (limiter, _dir) = memory_limiter(config(100, 100, 3), 30_000, true).await;
    let ip: IpAddr = "192.0.2.7".parse().unwrap();
    let other: IpAddr = "192.0.2.8".parse().unwrap();
    for _ in 0..3 {
        assert!(limiter.check_client_ip(ip).await.is_ok());
        limiter.record_auth_failure(ip).await;
    }
    assert_eq!(assert_rate_limited(limiter.check_client_ip(ip).await), 30);
    assert!(limiter.check_client_ip(other).await.is_ok());
    // IPv4-mapped IPv6 is the same client.
    assert_rate_limited(limiter.check_client_ip("::ffff:192.0.2.7".parse().unwrap()).await);
    tokio::time::advance(Duration::from_secs(30)).await;
    assert!(limiter.check_client_ip(ip).await.is_ok());
}

#[tokio::test]
async fn ipv6_failures_are_counted_per_64_prefix() {
    let (limiter, _dir) = memory_limiter(config(100, 100, 2), 0, true).await;
    limiter.record_auth_failure("2001:db8:1:2::1".parse().unwrap()).await;
    limiter
        .record_auth_failure("2001:db8:1:2:ffff::9".parse().unwrap())
        .await;
    assert_rate_limited(limiter.check_client_ip("2001:db8:1:2::abcd".parse().unwrap()).await);
    assert!(
        limiter
            .check_client_ip("2001:db8:1:3::1".parse().unwrap())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_tenants_requests_per_second_reset_every_second() {
    // Charging an operation reads the usage table: the clock is advanced by hand instead.
    let (limiter, _dir) = memory_limiter(config(100, 100, 10), 0, false).await;
    let tenant = TenantId::generate();
    let plan = Plan {
        requests_per_second: Some(2),
        ..Plan::default()
    };
    // Warm the usage meter (its first use reads the store), then start a fresh second.
    assert!(limiter.charge_operation(&tenant, &Plan::default()).await.is_ok());
    limiter
        .clock()
        .advance(Duration::from_millis(1000 - limiter.clock().now_ms() % 1000));
    assert!(limiter.charge_operation(&tenant, &plan).await.is_ok());
    assert!(limiter.charge_operation(&tenant, &plan).await.is_ok());
    assert_eq!(assert_rate_limited(limiter.charge_operation(&tenant, &plan).await), 1);
    let into_second = limiter.clock().now_ms() % 1000;
    limiter.clock().advance(Duration::from_millis(1000 - into_second));
    assert!(limiter.charge_operation(&tenant, &plan).await.is_ok());
}

#[tokio::test]
async fn monthly_operations_stop_at_the_quota_until_the_next_month() {
    // Five seconds before December 2026 (UTC).
    let clock = Clock::starting_at(1_796_083_200_000 - 5_000);
    let (usage, _dir) = meter().await;
    let limiter = Limiter::new(
        config(100, 100, 10),
        Arc::new(MemoryCounters::new(clock.clone())),
        clock,
        usage,
    );
    let tenant = TenantId::generate();
    let plan = Plan {
        operations_per_month: Some(2),
        ..Plan::default()
    };
    assert!(limiter.charge_operation(&tenant, &plan).await.is_ok());
    assert!(limiter.charge_operation(&tenant, &plan).await.is_ok());
    match limiter.charge_operation(&tenant, &plan).await {
        Err(ApiError::QuotaExceeded { retry_after_secs }) => assert_eq!(retry_after_secs, 5),
        other => panic!("expected quota_exceeded, got {other:?}"),
    }
    limiter.clock().advance(Duration::from_secs(5));
    assert!(limiter.charge_operation(&tenant, &plan).await.is_ok(), "a new month");
}

/// Redis at `KEYSTILE_TEST_REDIS_URL` (default 127.0.0.1:6379), or `None` (skip) outside CI.
pub async fn test_redis(prefix: &str, clock: Clock) -> Option<RedisCounters> {
    let url = std::env::var("KEYSTILE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    match RedisCounters::connect(&url, prefix, clock).await {
        Ok(c) => Some(c),
        Err(e) if std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true")) => {
            panic!("Redis at {url} is required on CI: {e:#}")
        }
        Err(e) => {
            eprintln!("skipping Redis test: Redis at {url} is not usable: {e:#}");
            None
        }
    }
}

#[tokio::test]
async fn two_limiters_on_one_redis_prefix_share_a_keys_budget_and_its_reset() {
    let prefix = format!("kst-test-{}:", uuid::Uuid::new_v4().simple());
    // Two replicas with their own clocks, both 10 s into the same minute.
    let (clock_a, clock_b) = (
        Clock::starting_at(1_800_000_010_000),
        Clock::starting_at(1_800_000_010_000),
    );
    let Some(redis_a) = test_redis(&prefix, clock_a.clone()).await else {
        return;
    };
    let Some(redis_b) = test_redis(&prefix, clock_b.clone()).await else {
        return;
    };
    let (usage_a, _da) = meter().await;
    let (usage_b, _db) = meter().await;
    let a = Limiter::new(config(4, 100, 2), Arc::new(redis_a), clock_a.clone(), usage_a);
    let b = Limiter::new(config(4, 100, 2), Arc::new(redis_b), clock_b.clone(), usage_b);
    let key = ApiKeyId::generate();
    let mut remaining = Vec::new();
    for limiter in [&a, &b, &a, &b] {
        let (status, verdict) = limiter.charge_key(&key, Bucket::Proxy).await.unwrap();
        assert!(verdict.is_ok());
        remaining.push(status.remaining);
    }
    assert_eq!(remaining, vec![3, 2, 1, 0], "one budget across both replicas");
    assert_rate_limited(a.charge_key(&key, Bucket::Proxy).await.unwrap().1);
    assert_rate_limited(b.charge_key(&key, Bucket::Proxy).await.unwrap().1);

    // Failed authentications on one replica block the address on the other.
    let ip: IpAddr = "198.51.100.4".parse().unwrap();
    a.record_auth_failure(ip).await;
    b.record_auth_failure(ip).await;
    assert_rate_limited(a.check_client_ip(ip).await);
    assert_rate_limited(b.check_client_ip(ip).await);

    for c in [&clock_a, &clock_b] {
        c.advance(Duration::from_secs(50));
    }
    assert!(a.charge_key(&key, Bucket::Proxy).await.unwrap().1.is_ok());
    assert_eq!(b.charge_key(&key, Bucket::Proxy).await.unwrap().0.remaining, 2);
    assert!(b.check_client_ip(ip).await.is_ok());
}
