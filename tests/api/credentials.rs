//! Credential management: canonical JSON in, never any data out; validation; freeze; rotate.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_credential_round_trips_without_its_data() {
    let app = spawn_app().await;
    let body = json!({
        "alias": "github",
        "type": "api_key",
        "data": {"key": "ghp_topsecret"},
        "inject": {"header": "Authorization", "format": "token {key}"},
        "policy": {
            "allowed_hosts": ["api.github.com", "*.githubusercontent.com"],
            "allowed_methods": ["GET", "POST"],
            "allowed_paths": ["/user*", "/repos/*"],
            "allowed_ports": [443],
            "allow_http": false,
            "allow_private_network": false
        },
        "description": "GitHub token for the release bot",
        "metadata": {"team": "infra"}
    });
    let created = app.create_credential(body.clone()).await;
    assert!(created.get("data").is_none());
    for field in ["alias", "type", "inject", "policy", "description", "metadata"] {
        assert_eq!(created[field], body[field], "{field}");
    }
    assert_eq!(created["status"], "active");
    assert_eq!(created["version"], 1);
    for path in ["/v1/credentials/github", "/v1/credentials"] {
        let a = app.admin("GET", path, None).await;
        assert_eq!(a.status, 200);
        assert!(!a.text.contains("ghp_topsecret"), "{path} leaks data: {}", a.text);
    }
    let list = app.admin("GET", "/v1/credentials", None).await;
    assert_eq!(list.body["credentials"][0]["alias"], "github");
    assert_eq!(list.body["next_cursor"], json!(null));
}

#[tokio::test]
async fn invalid_credentials_are_400_and_never_echo_the_secret() {
    let app = spawn_app().await;
    let cases = [
        json!({"alias": "a", "type": "api_key", "data": "sk-wrong-place-123", "policy": {"allowed_hosts": ["x.com"]}}),
        json!({"alias": "a", "type": "api_key", "data": {"key": "sk-wrong-place-123"}}),
        json!({"alias": "a", "type": "api_key", "data": {"key": "sk-wrong-place-123"}, "policy": {"allowed_hosts": []}}),
        json!({"alias": "a b", "type": "api_key", "data": {"key": "sk-wrong-place-123"}, "policy": {"allowed_hosts": ["x.com"]}}),
        json!({"alias": "a", "type": "oauth9", "data": {"key": "sk-wrong-place-123"}, "policy": {"allowed_hosts": ["x.com"]}}),
        json!({"alias": "a", "type": "basic_auth", "data": {"key": "sk-wrong-place-123"}, "policy": {"allowed_hosts": ["x.com"]}}),
        json!({"alias": "a", "type": "api_key", "data": {"key": "sk-wrong-place-123\r\nX-Evil: 1"}, "policy": {"allowed_hosts": ["x.com"]}}),
        json!({"alias": "a", "type": "api_key", "data": {"key": "sk-wrong-place-123"}, "policy": {"allowed_hosts": ["x.com"]}, "inject": {"header": "Host", "format": "{key}"}}),
        json!({"alias": "a", "type": "api_key", "data": {"key": "sk-wrong-place-123"}, "policy": {"allowed_hosts": ["x.com"]}, "extra": 1}),
    ];
    for case in cases {
        let a = app.admin("POST", "/v1/credentials", Some(case.clone())).await;
        a.assert_error(400, "invalid_request");
        assert!(
            !a.text.contains("sk-wrong-place-123"),
            "error echoes the secret: {}",
            a.text
        );
    }
    let raw = app
        .http
        .post(app.url("/v1/credentials"))
        .bearer_auth(&app.admin_key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    answer(raw).await.assert_error(400, "invalid_request");
    assert!(captured_logs().find("sk-wrong-place-123").is_none());
}

#[tokio::test]
async fn duplicate_aliases_conflict_and_unknown_ones_are_404() {
    let app = spawn_app().await;
    app.create_credential(local_credential("dup", "api_key", json!({"key": "k"})))
        .await;
    app.admin(
        "POST",
        "/v1/credentials",
        Some(local_credential("dup", "api_key", json!({"key": "k"}))),
    )
    .await
    .assert_error(409, "conflict");
    app.admin("GET", "/v1/credentials/missing", None)
        .await
        .assert_error(404, "not_found");
    app.admin("DELETE", "/v1/credentials/missing", None)
        .await
        .assert_error(404, "not_found");
    assert_eq!(app.admin("DELETE", "/v1/credentials/dup", None).await.status, 204);
    app.admin("GET", "/v1/credentials/dup", None)
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn listing_pages_with_a_cursor() {
    let app = spawn_app().await;
    for i in 0..5 {
        app.create_credential(local_credential(&format!("c{i}"), "api_key", json!({"key": "k"})))
            .await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/credentials?limit=2&cursor={c}"),
            None => "/v1/credentials?limit=2".to_owned(),
        };
        let page = app.admin("GET", &path, None).await;
        for c in page.body["credentials"].as_array().unwrap() {
            seen.push(c["alias"].as_str().unwrap().to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["c0", "c1", "c2", "c3", "c4"]);
}

#[tokio::test]
async fn patch_updates_policy_and_metadata_but_not_data() {
    let app = spawn_app().await;
    app.create_credential(local_credential("p", "api_key", json!({"key": "k"})))
        .await;
    let a = app
        .admin(
            "PATCH",
            "/v1/credentials/p",
            Some(json!({"description": "new", "metadata": {"a": 1}, "policy": {"allowed_hosts": ["example.com"]}})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["description"], "new");
    assert_eq!(a.body["policy"]["allowed_hosts"], json!(["example.com"]));
    let shown = app.admin("GET", "/v1/credentials/p", None).await;
    assert_eq!(shown.body["metadata"], json!({"a": 1}));
    app.admin("PATCH", "/v1/credentials/p", Some(json!({"data": {"key": "x"}})))
        .await
        .assert_error(400, "invalid_request");
}

#[tokio::test]
async fn frozen_credentials_refuse_use_and_rotation_bumps_the_version() {
    let app = spawn_app().await;
    let upstream = Upstream::start().await;
    app.create_credential(local_credential("svc", "api_key", json!({"key": "first-secret"})))
        .await;
    let target = format!("{}/v1/thing", upstream.url());

    let frozen = app.admin("POST", "/v1/credentials/svc/freeze", None).await;
    assert_eq!(frozen.body["status"], "frozen");
    app.proxy(&app.admin_key, "svc", "GET", &target)
        .await
        .assert_error(404, "credential_frozen");
    assert!(upstream.requests().is_empty());
    app.admin("POST", "/v1/credentials/svc/unfreeze", None).await;

    let rotated = app
        .admin(
            "POST",
            "/v1/credentials/svc/rotate",
            Some(json!({"data": {"key": "second-secret"}})),
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    assert_eq!(rotated.body["version"], 2);
    assert!(!rotated.text.contains("second-secret"));
    assert_eq!(app.proxy(&app.admin_key, "svc", "GET", &target).await.status, 200);
    assert_eq!(
        upstream.requests()[0].header("authorization").as_deref(),
        Some("Bearer second-secret")
    );
}

#[tokio::test]
async fn a_write_key_cannot_repoint_where_an_existing_secret_is_sent() {
    let app = spawn_app().await;
    app.create_credential(local_credential("gh", "api_key", json!({"key": "k"})))
        .await;
    let (_, _, writer) = app.key_with(&["read", "write", "execute"], &["*"]).await;
    for body in [
        json!({"policy": {"allowed_hosts": ["attacker.example"]}}),
        json!({"inject": {"query": "leak"}}),
    ] {
        let a = app.call("PATCH", "/v1/credentials/gh", Some(&writer), Some(body)).await;
        a.assert_error(403, "forbidden");
        assert_eq!(a.body["message"], "Missing required permission: admin");
    }
    let ok = app
        .call(
            "PATCH",
            "/v1/credentials/gh",
            Some(&writer),
            Some(json!({"description": "fine"})),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let shown = app.admin("GET", "/v1/credentials/gh", None).await;
    assert_eq!(shown.body["policy"]["allowed_hosts"], json!(["127.0.0.1"]));
}
