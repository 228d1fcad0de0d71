//! Rate limits and quotas through the real gateway: `X-RateLimit-*` headers, per-key proxy and
//! management budgets, the failed-authentication limit per client address, plan quotas that
//! survive a restart, and limits shared by two gateways through Redis.
//!
//! Windows are fixed and aligned on Unix minutes; each test first moves the gateway's limiter
//! clock to just after a minute starts, so a real minute boundary cannot fall mid-test, and
//! moves it on by a minute to see the window reset.

use std::time::Duration;

use keystile::config::{Config, LimitsConfig};
use keystile::limits::Clock;
use secrecy::ExposeSecret as _;
use serde_json::json;

use crate::helpers::{
    Answer, AppOptions, Upstream, answer, local_credential, spawn_app_with, test_client, test_config,
};

/// Moves `clock` to 1 ms after the start of its next minute.
fn align_to_minute(clock: &Clock) {
    let now = clock.now_ms();
    clock.advance(Duration::from_millis(60_000 - now % 60_000 + 1));
}

fn limits(proxy: u64, management: u64, auth_failures: u64) -> LimitsConfig {
    LimitsConfig {
        proxy_per_minute: proxy,
        management_per_minute: management,
        auth_failures_per_minute: auth_failures,
        ..LimitsConfig::default()
    }
}

/// A response with its rate-limit headers.
struct Limited {
    answer: Answer,
    limit: Option<u64>,
    remaining: Option<u64>,
    reset: Option<u64>,
    retry_after: Option<u64>,
}

async fn limited(resp: reqwest::Response) -> Limited {
    let num = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().parse::<u64>().unwrap())
    };
    let (limit, remaining, reset, retry_after) = (
        num("x-ratelimit-limit"),
        num("x-ratelimit-remaining"),
        num("x-ratelimit-reset"),
        num("retry-after"),
    );
    Limited {
        answer: answer(resp).await,
        limit,
        remaining,
        reset,
        retry_after,
    }
}

async fn get(base: &str, path: &str, key: &str) -> Limited {
    limited(
        test_client()
            .get(format!("{base}{path}"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn management_calls_carry_rate_limit_headers_and_the_call_past_the_limit_is_429_until_the_minute_turns() {
    let app = spawn_app_with(AppOptions {
        limits: Some(limits(1000, 3, 10)),
        ..Default::default()
    })
    .await;
    let clock = app.limiter.clock();
    align_to_minute(clock);
    let reset = clock.now_ms() / 60_000 * 60 + 60;
    let base = app.url("");
    for expected in [2, 1, 0] {
        let r = get(&base, "/v1/credentials", &app.admin_key).await;
        assert_eq!(r.answer.status, 200, "{}", r.answer.text);
        assert_eq!(r.limit, Some(3));
        assert_eq!(r.remaining, Some(expected));
        assert_eq!(r.reset, Some(reset), "reset is the window's end in Unix seconds");
        assert_eq!(r.retry_after, None);
    }
    let r = get(&base, "/v1/credentials", &app.admin_key).await;
    r.answer.assert_error(429, "rate_limited");
    assert_eq!((r.limit, r.remaining, r.reset), (Some(3), Some(0), Some(reset)));
    let retry = r.retry_after.expect("429 carries Retry-After");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_eq!(r.answer.body["details"]["retry_after_seconds"], json!(retry));

    // Any management endpoint draws on the same budget; an unknown route needs no key.
    get(&base, "/v1/roles", &app.admin_key)
        .await
        .answer
        .assert_error(429, "rate_limited");
    assert_eq!(get(&base, "/health", &app.admin_key).await.limit, None);

    clock.advance(Duration::from_secs(60));
    let r = get(&base, "/v1/credentials", &app.admin_key).await;
    assert_eq!(r.answer.status, 200, "{}", r.answer.text);
    assert_eq!((r.remaining, r.reset), (Some(2), Some(reset + 60)));
}

#[tokio::test]
async fn proxy_calls_on_every_surface_share_the_keys_proxy_budget_and_nothing_is_sent_past_it() {
    let app = spawn_app_with(AppOptions {
        limits: Some(limits(2, 100, 10)),
        ..Default::default()
    })
    .await;
    let upstream = Upstream::start().await;
    app.create_credential(local_credential("svc", "api_key", json!({"key": "k-123"})))
        .await;
    let (_, _, key) = app.key_with(&["execute"], &["*"]).await;
    align_to_minute(app.limiter.clock());

    let path_call = || {
        test_client()
            .get(app.url(&format!("/{}/one", upstream.url())))
            .bearer_auth(&key)
            .header("x-keystile-credential", "svc")
            .send()
    };
    let r = limited(path_call().await.unwrap()).await;
    assert_eq!(r.answer.status, 200, "{}", r.answer.text);
    assert_eq!((r.limit, r.remaining), (Some(2), Some(1)));

    let execute = json!({"credential": "svc", "action": "http.request",
        "params": {"method": "GET", "url": format!("{}/two", upstream.url())}});
    let r = limited(
        test_client()
            .post(app.url("/v1/execute"))
            .bearer_auth(&key)
            .json(&execute)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.answer.status, 200, "{}", r.answer.text);
    assert_eq!((r.limit, r.remaining), (Some(2), Some(0)));

    let r = limited(path_call().await.unwrap()).await;
    r.answer.assert_error(429, "rate_limited");
    assert!(r.retry_after.is_some());
    assert_eq!(
        upstream.requests().len(),
        2,
        "the refused call never reached the upstream"
    );

    // Management calls by the same key use the separate management budget (and a 403 still
    // reports it).
    let r = get(&app.url(""), "/v1/keys", &key).await;
    r.answer.assert_error(403, "forbidden");
    assert_eq!((r.limit, r.remaining), (Some(100), Some(99)));
}

#[tokio::test]
async fn an_address_that_failed_to_authenticate_too_often_gets_429_even_with_a_valid_key_until_the_window_resets() {
    let app = spawn_app_with(AppOptions {
        limits: Some(limits(1000, 100, 3)),
        ..Default::default()
    })
    .await;
    let clock = app.limiter.clock();
    align_to_minute(clock);
    let base = app.url("");
    // No key at all counts too (an anonymous flood would otherwise cost an audit commit each).
    app.call("GET", "/v1/credentials", None, None)
        .await
        .assert_error(401, "unauthorized");
    for _ in 0..2 {
        get(&base, "/v1/credentials", "kst_not-a-real-key-0000000000000000")
            .await
            .answer
            .assert_error(401, "unauthorized");
    }
    let r = get(&base, "/v1/credentials", &app.admin_key).await;
    r.answer.assert_error(429, "rate_limited");
    let retry = r.retry_after.expect("Retry-After");
    assert!((1..=60).contains(&retry));
    // A guessed header naming another client changes nothing: the TCP peer is the client.
    let spoofed = test_client()
        .get(app.url("/v1/credentials"))
        .bearer_auth(&app.admin_key)
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(spoofed.status(), 429);
    assert_eq!(app.call("GET", "/health", None, None).await.status, 200);

    clock.advance(Duration::from_secs(60));
    let r = get(&base, "/v1/credentials", &app.admin_key).await;
    assert_eq!(r.answer.status, 200, "{}", r.answer.text);
}

/// Creates a tenant with `plan` as the operator; returns (tenant id, its admin key).
pub async fn tenant_with_plan(base: &str, operator_key: &str, name: &str, plan: serde_json::Value) -> (String, String) {
    let resp = test_client()
        .post(format!("{base}/v1/tenants"))
        .bearer_auth(operator_key)
        .json(&json!({"name": name, "plan": plan}))
        .send()
        .await
        .unwrap();
    let a = answer(resp).await;
    assert_eq!(a.status, 201, "{}", a.text);
    (
        a.body["id"].as_str().unwrap().to_owned(),
        a.body["admin_key"]["key"].as_str().unwrap().to_owned(),
    )
}

async fn proxy_call(base: &str, key: &str, upstream: &Upstream) -> Limited {
    limited(
        test_client()
            .get(format!("{base}/{}/op", upstream.url()))
            .bearer_auth(key)
            .header("x-keystile-credential", "svc")
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn add_credential(base: &str, key: &str) {
    let resp = test_client()
        .post(format!("{base}/v1/credentials"))
        .bearer_auth(key)
        .json(&local_credential("svc", "api_key", json!({"key": "k-1"})))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
}

#[tokio::test]
async fn a_tenant_past_its_monthly_operations_gets_429_quota_exceeded_and_its_usage_is_reported() {
    let app = spawn_app_with(AppOptions::default()).await;
    let upstream = Upstream::start().await;
    let base = app.url("");
    let (tenant, key) = tenant_with_plan(&base, &app.admin_key, "metered", json!({"operations_per_month": 2})).await;
    add_credential(&base, &key).await;
    for _ in 0..2 {
        let r = proxy_call(&base, &key, &upstream).await;
        assert_eq!(r.answer.status, 200, "{}", r.answer.text);
    }
    let r = proxy_call(&base, &key, &upstream).await;
    r.answer.assert_error(429, "quota_exceeded");
    assert!(r.retry_after.is_some_and(|s| s > 0), "Retry-After points at next month");
    assert_eq!(r.limit, Some(1000), "the key's own rate-limit headers are still there");
    assert_eq!(upstream.requests().len(), 2);

    let shown = app.admin("GET", &format!("/v1/tenants/{tenant}"), None).await;
    assert_eq!(shown.status, 200, "{}", shown.text);
    assert_eq!(shown.body["usage"]["operations"], json!(2));
    // Management calls are not operations: the tenant can still manage its account.
    assert_eq!(get(&base, "/v1/credentials", &key).await.answer.status, 200);

    // Raising the quota applies at once.
    let patched = app
        .admin(
            "PATCH",
            &format!("/v1/tenants/{tenant}"),
            Some(json!({"plan": {"operations_per_month": 3}})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(proxy_call(&base, &key, &upstream).await.answer.status, 200);
    proxy_call(&base, &key, &upstream)
        .await
        .answer
        .assert_error(429, "quota_exceeded");
}

/// A gateway serving until told to stop gracefully.
struct Running {
    base: String,
    limiter: std::sync::Arc<keystile::limits::Limiter>,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start(config: &Config) -> (Running, Option<String>) {
    let prepared = keystile::server::prepare(config).await.expect("gateway prepares");
    let admin = prepared.new_admin_key.as_ref().map(|k| k.expose_secret().to_owned());
    let limiter = prepared.state.limiter().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(keystile::server::run(listener, prepared.state, async move {
        let _ = stopped.await;
    }));
    (
        Running {
            base,
            limiter,
            stop,
            served,
        },
        admin,
    )
}

impl Running {
    async fn shut_down(self) {
        let _ = self.stop.send(());
        self.served.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn monthly_operations_survive_a_restart_of_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path().join("data"), AppOptions::default(), Vec::new());
    let upstream = Upstream::start().await;

    let (first, admin) = start(&config).await;
    let admin = admin.expect("fresh store prints an admin key");
    let (tenant, key) = tenant_with_plan(&first.base, &admin, "durable", json!({"operations_per_month": 3})).await;
    add_credential(&first.base, &key).await;
    for _ in 0..2 {
        assert_eq!(proxy_call(&first.base, &key, &upstream).await.answer.status, 200);
    }
    first.shut_down().await;

    let (second, again) = start(&config).await;
    assert!(again.is_none(), "same database: no new admin key");
    assert_eq!(proxy_call(&second.base, &key, &upstream).await.answer.status, 200);
    proxy_call(&second.base, &key, &upstream)
        .await
        .answer
        .assert_error(429, "quota_exceeded");
    let shown = answer(
        test_client()
            .get(format!("{}/v1/tenants/{tenant}", second.base))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(shown.body["usage"]["operations"], json!(3), "{}", shown.text);
    assert_eq!(upstream.requests().len(), 3);
    second.shut_down().await;
}

#[tokio::test]
async fn two_gateways_on_one_database_share_a_keys_limit_through_redis() {
    let url = std::env::var("KEYSTILE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("kst-test-{}:", uuid::Uuid::new_v4().simple());
    if let Err(e) = keystile::limits::RedisCounters::connect(&url, &prefix, Clock::system()).await {
        if std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true")) {
            panic!("Redis at {url} is required on CI: {e:#}");
        }
        eprintln!("skipping Redis test: Redis at {url} is not usable: {e:#}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut limits = limits(1000, 4, 10);
    limits.redis_prefix = prefix;
    let mut config = test_config(
        dir.path().join("data"),
        AppOptions {
            limits: Some(limits),
            ..Default::default()
        },
        Vec::new(),
    );
    config.redis_url = Some(url.into());
    let (a, admin) = start(&config).await;
    let admin = admin.expect("admin key");
    let (b, _) = start(&config).await;
    align_to_minute(a.limiter.clock());
    align_to_minute(b.limiter.clock());

    let mut remaining = Vec::new();
    for gateway in [&a, &b, &a, &b] {
        let r = get(&gateway.base, "/v1/credentials", &admin).await;
        assert_eq!(r.answer.status, 200, "{}", r.answer.text);
        remaining.push(r.remaining.unwrap());
    }
    assert_eq!(remaining, vec![3, 2, 1, 0], "one budget across both gateways");
    get(&a.base, "/v1/credentials", &admin)
        .await
        .answer
        .assert_error(429, "rate_limited");
    get(&b.base, "/v1/credentials", &admin)
        .await
        .answer
        .assert_error(429, "rate_limited");

    a.limiter.clock().advance(Duration::from_secs(60));
    b.limiter.clock().advance(Duration::from_secs(60));
    assert_eq!(get(&b.base, "/v1/credentials", &admin).await.remaining, Some(3));
    assert_eq!(get(&a.base, "/v1/credentials", &admin).await.remaining, Some(2));
    a.shut_down().await;
    b.shut_down().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_failed_authentications_count_per_forwarded_client() {
    let app = spawn_app_with(AppOptions {
        limits: Some(limits(1000, 100, 3)),
        public: Some(keystile::config::PublicAddress {
            public_url: None,
            trusted_proxies: vec!["127.0.0.0/8".parse().unwrap()],
        }),
        ..Default::default()
    })
    .await;
    let call = |key: String, forwarded: &'static str| {
        let req = test_client()
            .get(app.url("/v1/credentials"))
            .bearer_auth(key)
            .header("forwarded", forwarded);
        async move { answer(req.send().await.unwrap()).await }
    };
    for _ in 0..3 {
        call("kst_not-a-real-key-0000000000000000".into(), "for=203.0.113.9")
            .await
            .assert_error(401, "unauthorized");
    }
    call(app.admin_key.clone(), "for=203.0.113.9")
        .await
        .assert_error(429, "rate_limited");
    // Another client behind the same proxy is not refused for the first one's guesses.
    let other = call(app.admin_key.clone(), "for=\"[2001:db8::5]:443\"").await;
    assert_eq!(other.status, 200, "{}", other.text);
}
