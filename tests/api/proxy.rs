//! The path proxy: injection per type, header hygiene, egress and SSRF refusals, upstream errors.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn every_credential_type_is_injected_and_the_callers_key_never_reaches_upstream() {
    let app = spawn_app().await;
    let upstream = Upstream::start().await;
    let mut query = local_credential("q", "api_key", json!({"key": "query-secret"}));
    query["inject"] = json!({"query": "api_key"});
    let mut custom = local_credential("custom", "api_key", json!({"key": "custom-secret"}));
    custom["inject"] = json!({"header": "x-api-key", "format": "{key}"});
    let cases = [
        (
            local_credential("bearer", "api_key", json!({"key": "bearer-secret"})),
            "authorization",
            "Bearer bearer-secret",
        ),
        (custom, "x-api-key", "custom-secret"),
        (
            local_credential("basic", "basic_auth", json!({"username": "bot", "password": "pw"})),
            "authorization",
            "Basic Ym90OnB3",
        ),
        (
            local_credential(
                "multi",
                "headers",
                json!({"headers": {"X-One": "one-secret", "X-Two": "two-secret"}}),
            ),
            "x-two",
            "two-secret",
        ),
    ];
    let (_, _, key) = app.key_with(&["execute"], &["*"]).await;
    for (body, header, expected) in cases {
        let alias = body["alias"].as_str().unwrap().to_owned();
        app.create_credential(body).await;
        let a = app
            .proxy(&key, &alias, "GET", &format!("{}/path?x=1", upstream.url()))
            .await;
        assert_eq!(a.status, 200, "{alias}: {}", a.text);
        let got = upstream.requests().pop().unwrap();
        assert_eq!(got.header(header).as_deref(), Some(expected), "{alias}");
        assert_eq!(got.uri, "/path?x=1");
        assert!(!got.everything().contains(&key), "{alias}: caller key leaked upstream");
        assert!(
            !got.everything().to_lowercase().contains("x-keystile"),
            "{alias}: keystile header leaked"
        );
    }
    app.create_credential(query).await;
    app.proxy(
        &key,
        "q",
        "GET",
        &format!("{}/p?api_key=caller-tries&y=2", upstream.url()),
    )
    .await;
    let got = upstream.requests().pop().unwrap();
    assert_eq!(
        got.uri, "/p?y=2&api_key=query-secret",
        "caller cannot override the injected parameter"
    );
}

#[tokio::test]
async fn method_headers_body_and_status_pass_through_but_injected_headers_cannot_be_overridden() {
    let app = spawn_app().await;
    let upstream = Upstream::start().await;
    let mut cred = local_credential("svc", "api_key", json!({"key": "real-secret"}));
    cred["inject"] = json!({"header": "x-api-key", "format": "{key}"});
    app.create_credential(cred).await;
    let resp = app
        .http
        .post(app.url(&format!("/{}/status/201", upstream.url())))
        .bearer_auth(&app.admin_key)
        .header("x-keystile-credential", "svc")
        .header("x-api-key", "kst_caller_attempt")
        .header("x-custom", "kept")
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "dropped")
        .body("payload-bytes")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let got = upstream.requests().pop().unwrap();
    assert_eq!(got.method, "POST");
    assert_eq!(&got.body[..], b"payload-bytes");
    assert_eq!(got.header("x-custom").as_deref(), Some("kept"));
    assert_eq!(got.header("x-api-key").as_deref(), Some("real-secret"));
    assert!(
        got.header("x-hop").is_none(),
        "headers named by Connection are hop-by-hop"
    );
    assert!(got.header("authorization").is_none());
    assert_eq!(got.header("host"), Some(upstream.addr.to_string()));
}

#[tokio::test]
async fn caller_mistakes_are_4xx_with_nothing_sent() {
    let app = spawn_app().await;
    let upstream = Upstream::start().await;
    app.create_credential(local_credential("svc", "api_key", json!({"key": "k"})))
        .await;
    let target = format!("{}/x", upstream.url());

    let no_header = app
        .http
        .get(app.url(&format!("/{target}")))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    answer(no_header).await.assert_error(400, "missing_credential");
    app.proxy(&app.admin_key, "nope", "GET", &target)
        .await
        .assert_error(404, "not_found");
    app.proxy(&app.admin_key, "svc", "GET", "ftp://127.0.0.1/x")
        .await
        .assert_error(400, "invalid_request");
    app.proxy(&app.admin_key, "svc", "GET", "http://user:pw@127.0.0.1/x")
        .await
        .assert_error(400, "invalid_request");
    app.proxy(&app.admin_key, "svc", "GET", "http://[fe80::1%25eth0]/")
        .await
        .assert_error(400, "invalid_request");
    let (_, _, reader) = app.key_with(&["read"], &["*"]).await;
    let a = app.proxy(&reader, "svc", "GET", &target).await;
    a.assert_error(403, "forbidden");
    assert_eq!(a.body["message"], "Missing required permission: execute");
    app.call("GET", &format!("/{target}"), None, None)
        .await
        .assert_error(401, "unauthorized");
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn targets_outside_the_egress_policy_are_refused_with_nothing_sent() {
    let app = spawn_app().await;
    let upstream = Upstream::start().await;
    app.create_credential(json!({
        "alias": "strict",
        "type": "api_key",
        "data": {"key": "k"},
        "policy": {
            "allowed_hosts": ["127.0.0.1"],
            "allowed_methods": ["GET"],
            "allowed_paths": ["/ok*"],
            "allowed_ports": [upstream.addr.port()],
            "allow_http": true,
            "allow_private_network": true
        }
    }))
    .await;
    let base = upstream.url();
    for (method, target) in [
        ("GET", format!("http://localhost:{}/ok", upstream.addr.port())),
        ("POST", format!("{base}/ok")),
        ("GET", format!("{base}/admin")),
        ("GET", format!("http://127.0.0.1:{}/ok", upstream.addr.port() + 1)),
    ] {
        let a = app.proxy(&app.admin_key, "strict", method, &target).await;
        a.assert_error(403, "egress_denied");
    }
    assert!(upstream.requests().is_empty());
    assert_eq!(
        app.proxy(&app.admin_key, "strict", "GET", &format!("{base}/ok/1"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn private_addresses_are_refused_unless_the_policy_allows_them() {
    let app = spawn_app().await;
    let upstream = Upstream::start().await;
    let port = upstream.addr.port();
    app.create_credential(json!({
        "alias": "public-only",
        "type": "api_key",
        "data": {"key": "k"},
        "policy": {"allowed_hosts": ["127.0.0.1", "localhost", "::1", "127.0.0.2"], "allow_http": true}
    }))
    .await;
    for target in [
        format!("http://127.0.0.1:{port}/x"),
        format!("http://2130706433:{port}/x"),
        format!("http://0x7f000001:{port}/x"),
        format!("http://127.1:{port}/x"),
        format!("http://localhost:{port}/x"),
        format!("http://[::1]:{port}/x"),
    ] {
        let a = app.proxy(&app.admin_key, "public-only", "GET", &target).await;
        a.assert_error(403, "ssrf_blocked");
    }
    app.create_credential(json!({
        "alias": "only-127-0-0-2",
        "type": "api_key",
        "data": {"key": "k"},
        "policy": {"allowed_hosts": ["127.0.0.1"], "allow_http": true, "allow_private_network": ["127.0.0.2/32"]}
    }))
    .await;
    app.proxy(
        &app.admin_key,
        "only-127-0-0-2",
        "GET",
        &format!("http://127.0.0.1:{port}/x"),
    )
    .await
    .assert_error(403, "ssrf_blocked");
    assert!(upstream.requests().is_empty(), "nothing reached the upstream");
}

#[tokio::test]
async fn the_gateway_refuses_to_call_itself() {
    let app = spawn_app().await;
    app.create_credential(local_credential("loop", "api_key", json!({"key": "k"})))
        .await;
    let a = app
        .proxy(
            &app.admin_key,
            "loop",
            "GET",
            &format!("http://127.0.0.1:{}/health", app.addr.port()),
        )
        .await;
    a.assert_error(403, "ssrf_blocked");
}

#[tokio::test]
async fn upstream_failures_are_502_and_504() {
    let app = spawn_app_with(AppOptions {
        proxy: Some(keystile::config::ProxyConfig {
            first_byte_timeout_ms: 500,
            ..Default::default()
        }),
        ..Default::default()
    })
    .await;
    let upstream = Upstream::start().await;
    app.create_credential(local_credential("svc", "api_key", json!({"key": "k"})))
        .await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let a = app
        .proxy(&app.admin_key, "svc", "GET", &format!("http://{closed}/x"))
        .await;
    a.assert_error(502, "upstream_error");
    let a = app
        .proxy(&app.admin_key, "svc", "GET", &format!("{}/slow", upstream.url()))
        .await;
    a.assert_error(504, "upstream_timeout");
}

#[tokio::test]
async fn oversized_bodies_are_413_before_anything_is_sent() {
    let app = spawn_app_with(AppOptions {
        proxy: Some(keystile::config::ProxyConfig {
            max_request_body_bytes: 1024,
            ..Default::default()
        }),
        ..Default::default()
    })
    .await;
    let upstream = Upstream::start().await;
    app.create_credential(local_credential("svc", "api_key", json!({"key": "k"})))
        .await;
    let resp = app
        .http
        .post(app.url(&format!("/{}/x", upstream.url())))
        .bearer_auth(&app.admin_key)
        .header("x-keystile-credential", "svc")
        .body(vec![b'a'; 4096])
        .send()
        .await
        .unwrap();
    answer(resp).await.assert_error(413, "payload_too_large");
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn health_ready_and_openapi_are_served() {
    let app = spawn_app().await;
    let h = app.call("GET", "/health", None, None).await;
    assert_eq!(h.body, json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}));
    assert_eq!(app.call("GET", "/ready", None, None).await.status, 200);
    let doc = app.call("GET", "/openapi.json", None, None).await;
    assert_eq!(doc.status, 200);
    assert!(
        doc.body["paths"]["/v1/credentials"]["post"].is_object(),
        "generated from the handlers"
    );
    assert!(doc.body["components"]["schemas"]["CredentialView"].is_object());
    app.call("GET", "/no/such/route", None, None)
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn a_stalled_tls_handshake_is_bounded_by_the_connect_timeout() {
    let app = spawn_app_with(AppOptions {
        proxy: Some(keystile::config::ProxyConfig {
            connect_timeout_ms: 300,
            first_byte_timeout_ms: 10_000,
            ..Default::default()
        }),
        ..Default::default()
    })
    .await;
    // Accepts TCP, then never answers the ClientHello.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    app.create_credential(json!({
        "alias": "tls", "type": "api_key", "data": {"key": "k"},
        "policy": {"allowed_hosts": ["127.0.0.1"], "allow_private_network": true}
    }))
    .await;
    let started = std::time::Instant::now();
    let a = app
        .proxy(&app.admin_key, "tls", "GET", &format!("https://{addr}/x"))
        .await;
    a.assert_error(504, "upstream_timeout");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}
