//! Callers: keys, roles, permissions, scopes, revocation and expiry.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn requests_without_a_valid_key_get_401_with_an_s13_body() {
    let app = spawn_app().await;
    app.call("GET", "/v1/credentials", None, None)
        .await
        .assert_error(401, "unauthorized");
    app.call("GET", "/v1/credentials", Some("kst_nope"), None)
        .await
        .assert_error(401, "unauthorized");
    let a = app
        .http
        .get(app.url("/v1/credentials"))
        .header("authorization", "Basic dXNlcjpwdw==")
        .send()
        .await
        .unwrap();
    answer(a).await.assert_error(401, "unauthorized");
}

#[tokio::test]
async fn the_x_keystile_token_header_is_accepted_too() {
    let app = spawn_app().await;
    let a = app
        .http
        .get(app.url("/v1/credentials"))
        .header("x-keystile-token", &app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), 200);
}

#[tokio::test]
async fn a_missing_permission_is_403_naming_the_permission() {
    let app = spawn_app().await;
    let (_, _, reader) = app.key_with(&["read"], &["*"]).await;
    let a = app
        .call(
            "POST",
            "/v1/credentials",
            Some(&reader),
            Some(local_credential("x", "api_key", json!({"key": "k"}))),
        )
        .await;
    a.assert_error(403, "forbidden");
    assert_eq!(a.body["message"], "Missing required permission: write");
    let a = app.call("GET", "/v1/keys", Some(&reader), None).await;
    a.assert_error(403, "forbidden");
    assert_eq!(a.body["message"], "Missing required permission: admin");
    assert_eq!(
        app.call("GET", "/v1/credentials", Some(&reader), None).await.status,
        200
    );
}

#[tokio::test]
async fn credential_scopes_limit_what_a_key_sees_and_uses() {
    let app = spawn_app().await;
    let upstream = Upstream::start().await;
    app.create_credential(local_credential("github-ci", "api_key", json!({"key": "gh-secret"})))
        .await;
    app.create_credential(local_credential("openai", "api_key", json!({"key": "oa-secret"})))
        .await;
    let (_, _, key) = app.key_with(&["read", "execute"], &["github-*"]).await;

    let list = app.call("GET", "/v1/credentials", Some(&key), None).await;
    let aliases: Vec<_> = list.body["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["alias"].clone())
        .collect();
    assert_eq!(aliases, vec![json!("github-ci")]);
    app.call("GET", "/v1/credentials/openai", Some(&key), None)
        .await
        .assert_error(403, "forbidden");

    let target = format!("{}/x", upstream.url());
    assert_eq!(app.proxy(&key, "github-ci", "GET", &target).await.status, 200);
    app.proxy(&key, "openai", "GET", &target)
        .await
        .assert_error(403, "forbidden");
    assert_eq!(upstream.requests().len(), 1, "the out-of-scope call sent nothing");
}

#[tokio::test]
async fn a_revoked_key_is_refused_on_the_very_next_request() {
    let app = spawn_app().await;
    let (_, key_id, key) = app.key_with(&["read"], &["*"]).await;
    assert_eq!(app.call("GET", "/v1/credentials", Some(&key), None).await.status, 200);
    assert_eq!(
        app.admin("DELETE", &format!("/v1/keys/{key_id}"), None).await.status,
        204
    );
    let a = app.call("GET", "/v1/credentials", Some(&key), None).await;
    a.assert_error(401, "unauthorized");
    assert_eq!(a.body["message"], "API key has been revoked");
    app.admin("DELETE", &format!("/v1/keys/{key_id}"), None)
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn an_expired_key_is_refused() {
    let app = spawn_app().await;
    let (role_id, _, _) = app.key_with(&["read"], &["*"]).await;
    let past = app
        .admin(
            "POST",
            "/v1/keys",
            Some(json!({"name": "old", "role_id": role_id, "expires_at": "2020-01-01T00:00:00Z"})),
        )
        .await;
    past.assert_error(400, "invalid_request");
    let soon = (chrono::Utc::now() + chrono::Duration::milliseconds(1500)).to_rfc3339();
    let k = app
        .admin(
            "POST",
            "/v1/keys",
            Some(json!({"name": "soon", "role_id": role_id, "expires_at": soon})),
        )
        .await;
    let key = k.body["key"].as_str().unwrap().to_owned();
    assert_eq!(app.call("GET", "/v1/credentials", Some(&key), None).await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    let a = app.call("GET", "/v1/credentials", Some(&key), None).await;
    a.assert_error(401, "unauthorized");
    assert_eq!(a.body["message"], "API key has expired");
}

#[tokio::test]
async fn keys_are_listed_by_prefix_with_last_use_and_never_in_full() {
    let app = spawn_app().await;
    let (role_id, key_id, key) = app.key_with(&["read"], &["*"]).await;
    app.call("GET", "/v1/credentials", Some(&key), None).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let list = app.admin("GET", "/v1/keys", None).await;
    assert_eq!(list.status, 200);
    assert!(!list.text.contains(&key), "a list never shows a key");
    assert!(!list.text.contains(&app.admin_key));
    let entry = list.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == key_id)
        .unwrap()
        .clone();
    assert_eq!(entry["key_prefix"], key[..12]);
    assert_eq!(entry["role_id"], role_id);
    assert!(entry["last_used_at"].is_string(), "{entry}");
    assert!(list.body.get("next_cursor").is_some());
}

#[tokio::test]
async fn roles_are_managed_and_a_role_in_use_cannot_be_deleted() {
    let app = spawn_app().await;
    let (role_id, key_id, _) = app.key_with(&["read"], &["*"]).await;
    let roles = app.admin("GET", "/v1/roles", None).await;
    assert!(
        roles.body["roles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == role_id)
    );
    let shown = app.admin("GET", &format!("/v1/roles/{role_id}"), None).await;
    assert_eq!(shown.body["permissions"], json!(["read"]));
    app.admin("DELETE", &format!("/v1/roles/{role_id}"), None)
        .await
        .assert_error(409, "conflict");
    app.admin("DELETE", &format!("/v1/keys/{key_id}"), None).await;
    assert_eq!(
        app.admin("DELETE", &format!("/v1/roles/{role_id}"), None).await.status,
        204
    );
    app.admin("GET", &format!("/v1/roles/{role_id}"), None)
        .await
        .assert_error(404, "not_found");
    app.admin("GET", "/v1/roles/not-a-uuid", None)
        .await
        .assert_error(404, "not_found");
    let dup = app
        .admin(
            "POST",
            "/v1/roles",
            Some(json!({"name": "admin", "permissions": ["read"]})),
        )
        .await;
    dup.assert_error(409, "conflict");
    let bad = app
        .admin("POST", "/v1/roles", Some(json!({"name": "x", "permissions": ["sudo"]})))
        .await;
    bad.assert_error(400, "invalid_request");
    let key_for_missing_role = app
        .admin(
            "POST",
            "/v1/keys",
            Some(json!({"name": "k", "role_id": uuid::Uuid::new_v4().to_string()})),
        )
        .await;
    key_for_missing_role.assert_error(404, "not_found");
}
