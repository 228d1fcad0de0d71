//! Every proxy surface end to end: redaction of echoed secrets, execute, the ephemeral proxy
//! and routes (CRUD, forwarding, `x-api-key`, redirects).

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn an_echoed_secret_is_redacted_in_headers_and_body() {
    let app = spawn_app().await;
    let upstream = Upstream::start().await;
    app.create_credential(local_credential("k", "api_key", json!({"key": "sk-echo-0123456789"})))
        .await;
    app.create_credential(local_credential(
        "b",
        "basic_auth",
        json!({"username": "bot", "password": "pw-echo-98765"}),
    ))
    .await;
    for alias in ["k", "b"] {
        let resp = app
            .http
            .get(app.url(&format!("/{}/echo", upstream.url())))
            .bearer_auth(&app.admin_key)
            .header("x-keystile-credential", alias)
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let echoed = resp.headers()["x-echo-auth"].to_str().unwrap().to_owned();
        let text = resp.text().await.unwrap();
        assert!(echoed.contains("[REDACTED]"), "{alias}: header {echoed}");
        for secret in ["sk-echo-0123456789", "pw-echo-98765", "Ym90OnB3LWVjaG8tOTg3NjU="] {
            assert!(
                !text.contains(secret) && !echoed.contains(secret),
                "{alias}: {secret} echoed back"
            );
        }
        assert!(text.contains("[REDACTED]"), "{alias}: {text}");
        let got = upstream.requests().pop().unwrap();
        assert_eq!(
            got.header("accept-encoding").as_deref(),
            Some("identity"),
            "identity requested so bodies can be checked"
        );
    }
}

#[tokio::test]
async fn a_compressed_answer_that_cannot_be_checked_is_refused() {
    let app = spawn_app().await;
    let upstream = Upstream::start().await;
    app.create_credential(local_credential("k", "api_key", json!({"key": "sk-zip-0123456789"})))
        .await;
    app.proxy(&app.admin_key, "k", "GET", &format!("{}/gzip", upstream.url()))
        .await
        .assert_error(502, "upstream_error");
}

#[tokio::test]
async fn execute_returns_status_headers_and_a_redacted_body() {
    let app = spawn_app().await;
    let upstream = Upstream::start().await;
    app.create_credential(local_credential("k", "api_key", json!({"key": "sk-exec-0123456789"})))
        .await;
    let a = app
        .admin(
            "POST",
            "/v1/execute",
            Some(json!({
                "credential": "k",
                "action": "http.request",
                "params": {"method": "post", "url": format!("{}/echo?x=1", upstream.url()), "headers": {"X-Trace": "t1"}, "body": {"hello": "world"}}
            })),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["status"], 200);
    assert_eq!(a.body["headers"]["content-type"], "application/json");
    assert_eq!(a.body["body"]["headers"]["authorization"], "Bearer [REDACTED]");
    assert!(!a.text.contains("sk-exec-0123456789"));
    let got = upstream.requests().pop().unwrap();
    assert_eq!(got.method, "POST");
    assert_eq!(got.header("x-trace").as_deref(), Some("t1"));
    assert_eq!(got.header("content-type").as_deref(), Some("application/json"));
    assert_eq!(
        serde_json::from_slice::<Value>(&got.body).unwrap(),
        json!({"hello": "world"})
    );
    assert_eq!(
        got.header("authorization").as_deref(),
        Some("Bearer sk-exec-0123456789")
    );

    let bad = |body: Value| {
        let app = &app;
        async move { app.admin("POST", "/v1/execute", Some(body)).await }
    };
    bad(json!({"credential": "k", "action": "shell.exec", "params": {"method": "GET", "url": "https://x.com"}}))
        .await
        .assert_error(400, "invalid_request");
    bad(json!({"credential": "k", "action": "http.request", "params": {"method": "GET", "url": "https://x.com", "headers": {"X": "a\r\nb"}}}))
        .await
        .assert_error(400, "invalid_request");
    bad(json!({"credential": "k", "action": "http.request", "params": {"method": "GET", "url": "https://elsewhere.example/"}}))
        .await
        .assert_error(403, "egress_denied");
    let (_, _, reader) = app.key_with(&["read"], &["*"]).await;
    let a = app
        .call("POST", "/v1/execute", Some(&reader), Some(json!({"credential": "k", "action": "http.request", "params": {"method": "GET", "url": upstream.url()}})))
        .await;
    a.assert_error(403, "forbidden");
    assert_eq!(upstream.requests().len(), 1, "refused executions sent nothing");
}

#[tokio::test]
async fn the_ephemeral_proxy_takes_its_target_from_a_header() {
    let app = spawn_app().await;
    let upstream = Upstream::start().await;
    app.create_credential(local_credential("k", "api_key", json!({"key": "sk-eph-0123456789"})))
        .await;
    let resp = app
        .http
        .put(app.url("/v1/proxy?b=2"))
        .bearer_auth(&app.admin_key)
        .header("x-keystile-target", format!("{}/things?a=1", upstream.url()))
        .header("x-keystile-credential", "k")
        .body("data")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let got = upstream.requests().pop().unwrap();
    assert_eq!(got.method, "PUT");
    assert_eq!(got.uri, "/things?a=1&b=2");
    assert_eq!(got.header("authorization").as_deref(), Some("Bearer sk-eph-0123456789"));
    assert!(got.header("x-keystile-target").is_none());

    let no_target = app
        .http
        .get(app.url("/v1/proxy"))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    answer(no_target).await.assert_error(400, "invalid_request");
    // Without a credential only https is allowed, and public addresses only.
    let plain = app
        .http
        .get(app.url("/v1/proxy"))
        .bearer_auth(&app.admin_key)
        .header("x-keystile-target", format!("{}/x", upstream.url()))
        .send()
        .await
        .unwrap();
    answer(plain).await.assert_error(403, "egress_denied");
    let private = app
        .http
        .get(app.url("/v1/proxy"))
        .bearer_auth(&app.admin_key)
        .header(
            "x-keystile-target",
            format!("https://127.0.0.1:{}/x", upstream.addr.port()),
        )
        .send()
        .await
        .unwrap();
    answer(private).await.assert_error(403, "ssrf_blocked");
    assert_eq!(upstream.requests().len(), 1);
}

async fn route(app: &TestApp, body: Value) -> Answer {
    app.admin("POST", "/v1/routes", Some(body)).await
}

#[tokio::test]
async fn routes_are_managed_and_forward_path_query_and_credential() {
    let app = spawn_app().await;
    let upstream = Upstream::start().await;
    app.create_credential(local_credential(
        "svc",
        "api_key",
        json!({"key": "sk-route-0123456789"}),
    ))
    .await;
    let created = route(&app, json!({"name": "svc", "base_url": format!("{}/v1", upstream.url()), "credential": "svc", "allowed_methods": ["GET", "POST"]})).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["base_url"], format!("{}/v1", upstream.url()));
    route(
        &app,
        json!({"name": "svc", "base_url": upstream.url(), "credential": "svc"}),
    )
    .await
    .assert_error(409, "conflict");
    route(
        &app,
        json!({"name": "x", "base_url": upstream.url(), "credential": "missing"}),
    )
    .await
    .assert_error(404, "not_found");
    route(
        &app,
        json!({"name": "x", "base_url": "ftp://example.com", "credential": "svc"}),
    )
    .await
    .assert_error(400, "invalid_request");
    route(
        &app,
        json!({"name": "x", "base_url": upstream.url(), "credential": "svc", "bogus": 1}),
    )
    .await
    .assert_error(400, "invalid_request");

    let a = app.admin("GET", "/r/svc/models/gpt?limit=2", None).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let got = upstream.requests().pop().unwrap();
    assert_eq!(got.uri, "/v1/models/gpt?limit=2");
    assert_eq!(
        got.header("authorization").as_deref(),
        Some("Bearer sk-route-0123456789")
    );
    assert!(!got.everything().contains(&app.admin_key));

    app.admin("DELETE", "/r/svc/models", None)
        .await
        .assert_error(403, "egress_denied");
    for climb in ["/r/svc/../admin", "/r/svc/%2e%2e/admin", "/r/svc/a/%2E%2E/%2e%2e/admin"] {
        let a = app.admin("GET", climb, None).await;
        assert!(
            a.status == 400 || a.status == 404 || upstream.requests().last().unwrap().uri.starts_with("/v1/"),
            "{climb}: {}",
            a.text
        );
    }
    app.admin("GET", "/r/nope/x", None).await.assert_error(404, "not_found");

    let patched = app
        .admin("PATCH", "/v1/routes/svc", Some(json!({"allowed_methods": ["DELETE"]})))
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(app.admin("DELETE", "/r/svc/models", None).await.status, 200);
    let list = app.admin("GET", "/v1/routes", None).await;
    assert_eq!(list.body["routes"][0]["name"], "svc");
    assert_eq!(app.admin("DELETE", "/v1/routes/svc", None).await.status, 204);
    app.admin("GET", "/v1/routes/svc", None)
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn an_sdk_may_send_its_keystile_key_as_x_api_key_on_routes_only() {
    let app = spawn_app().await;
    let upstream = Upstream::start().await;
    let mut cred = local_credential("anthropic", "api_key", json!({"key": "sk-ant-0123456789"}));
    cred["inject"] = json!({"header": "x-api-key", "format": "{key}"});
    app.create_credential(cred).await;
    route(
        &app,
        json!({"name": "anthropic", "base_url": upstream.url(), "credential": "anthropic"}),
    )
    .await;
    let (_, _, key) = app.key_with(&["execute"], &["anthropic"]).await;
    let resp = app
        .http
        .post(app.url("/r/anthropic/v1/messages"))
        .header("x-api-key", &key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "claude", "max_tokens": 8, "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let got = upstream.requests().pop().unwrap();
    assert_eq!(got.header("x-api-key").as_deref(), Some("sk-ant-0123456789"));
    assert_eq!(got.header("anthropic-version").as_deref(), Some("2023-06-01"));
    assert!(!got.everything().contains(&key));
    let path_proxy = app
        .http
        .get(app.url(&format!("/{}/x", upstream.url())))
        .header("x-api-key", &key)
        .header("x-keystile-credential", "anthropic")
        .send()
        .await
        .unwrap();
    answer(path_proxy).await.assert_error(401, "unauthorized");
}

#[tokio::test]
async fn redirects_are_returned_as_is_unless_the_route_follows_them_with_every_hop_checked() {
    let app = spawn_app().await;
    let upstream = Upstream::start().await;
    let other = Upstream::start().await;
    app.create_credential(local_credential(
        "svc",
        "api_key",
        json!({"key": "sk-redir-0123456789"}),
    ))
    .await;
    let hop = |target: String| {
        format!(
            "/redirect/302?to={}",
            url::form_urlencoded::byte_serialize(target.as_bytes()).collect::<String>()
        )
    };

    // The path proxy never follows: the caller gets the 302 as is, even to the metadata address
    // (the test client follows no redirects either, so nothing is ever sent there).
    let resp = app
        .http
        .get(app.url(&format!(
            "/{}{}",
            upstream.url(),
            hop("http://169.254.169.254/latest/meta-data/".into())
        )))
        .bearer_auth(&app.admin_key)
        .header("x-keystile-credential", "svc")
        .send()
        .await
        .unwrap();
    let status = resp.status();
    assert_eq!(status, 302, "{:?}", resp.text().await);

    route(
        &app,
        json!({"name": "follow", "base_url": upstream.url(), "credential": "svc", "follow_redirects": true}),
    )
    .await;
    // Same origin: followed, credential injected on the hop.
    let a = app
        .admin(
            "GET",
            &format!("/r/follow{}", hop(format!("{}/landed", upstream.url()))),
            None,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let got = upstream.requests().pop().unwrap();
    assert_eq!(got.uri, "/landed");
    assert_eq!(
        got.header("authorization").as_deref(),
        Some("Bearer sk-redir-0123456789")
    );
    // Another origin the policy allows: followed, but the credential is not sent there.
    let a = app
        .admin(
            "GET",
            &format!("/r/follow{}", hop(format!("{}/elsewhere", other.url()))),
            None,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let got = other.requests().pop().unwrap();
    assert_eq!(got.uri, "/elsewhere");
    assert!(
        got.header("authorization").is_none(),
        "credential never crosses origins"
    );
    assert!(!got.everything().contains("sk-redir-0123456789"));
    // A hop outside the policy, or to a forbidden address, is refused at the hop.
    app.admin("GET", &format!("/r/follow{}", hop("http://example.com/".into())), None)
        .await
        .assert_error(403, "egress_denied");
    route(
        &app,
        json!({"name": "strict", "base_url": upstream.url(), "credential": "svc", "follow_redirects": true}),
    )
    .await;
    app.create_credential(json!({
        "alias": "pub", "type": "api_key", "data": {"key": "sk-pub-0123456789"},
        "policy": {"allowed_hosts": ["127.0.0.1", "169.254.169.254"], "allow_http": true, "allow_private_network": ["127.0.0.1/32"]}
    }))
    .await;
    route(
        &app,
        json!({"name": "meta", "base_url": upstream.url(), "credential": "pub", "follow_redirects": true}),
    )
    .await;
    app.admin(
        "GET",
        &format!("/r/meta{}", hop("http://169.254.169.254/latest/meta-data/".into())),
        None,
    )
    .await
    .assert_error(403, "ssrf_blocked");
}

#[tokio::test]
async fn a_surface_disabled_by_the_tenants_plan_is_refused_within_a_second() {
    let app = spawn_app().await;
    let upstream = Upstream::start().await;
    app.create_credential(local_credential("k", "api_key", json!({"key": "sk-plan-0123456789"})))
        .await;
    let ephemeral = || {
        app.http
            .get(app.url("/v1/proxy"))
            .bearer_auth(&app.admin_key)
            .header("x-keystile-target", format!("{}/x", upstream.url()))
            .header("x-keystile-credential", "k")
            .send()
    };
    assert_eq!(ephemeral().await.unwrap().status(), 200);
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", app.data_dir.join("keystile.db").display()))
        .await
        .unwrap();
    sqlx::query("UPDATE tenants SET plan = '{\"disabled_surfaces\": [\"ephemeral\"]}'")
        .execute(&pool)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    let a = answer(ephemeral().await.unwrap()).await;
    a.assert_error(403, "forbidden");
    assert!(a.body["message"].as_str().unwrap().contains("ephemeral"));
    assert_eq!(
        app.proxy(&app.admin_key, "k", "GET", &format!("{}/x", upstream.url()))
            .await
            .status,
        200,
        "other surfaces stay on"
    );
    assert_eq!(upstream.requests().len(), 2);
}
