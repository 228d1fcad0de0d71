//! The pipeline's credential and route caches (SPEC S14): a change made through this replica
//! is seen by the very next request; a change made through another replica is seen once the
//! freshness bound has passed. These fail if an invalidation is missing.

use keystile::proxy::lookup::FRESHNESS;
use serde_json::json;

use crate::helpers::*;

/// Sends one path-proxy request and returns it with what the upstream received.
async fn through(app: &TestApp, key: &str, alias: &str, upstream: &Upstream) -> (Answer, Option<Received>) {
    let before = upstream.requests().len();
    let a = app
        .proxy(key, alias, "GET", &format!("{}/cached", upstream.url()))
        .await;
    let got = upstream.requests().get(before).cloned();
    (a, got)
}

/// Waits past the freshness bound (a cache property, not a performance threshold).
async fn past_freshness() {
    tokio::time::sleep(FRESHNESS + std::time::Duration::from_millis(300)).await;
}

#[tokio::test]
async fn every_credential_change_on_this_replica_is_seen_by_the_very_next_request() {
    let app = spawn_app().await;
    let upstream = Upstream::start().await;
    app.create_credential(local_credential("svc", "api_key", json!({"key": "first-secret"})))
        .await;
    let (_, _, key) = app.key_with(&["execute"], &["*"]).await;

    let (a, got) = through(&app, &key, "svc", &upstream).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        got.unwrap().header("authorization").as_deref(),
        Some("Bearer first-secret")
    );

    let r = app
        .admin(
            "POST",
            "/v1/credentials/svc/rotate",
            Some(json!({"data": {"key": "second-secret"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let (_, got) = through(&app, &key, "svc", &upstream).await;
    assert_eq!(
        got.unwrap().header("authorization").as_deref(),
        Some("Bearer second-secret")
    );

    let u = app
        .admin(
            "PATCH",
            "/v1/credentials/svc",
            Some(json!({"inject": {"header": "x-api-key", "format": "{key}"}})),
        )
        .await;
    assert_eq!(u.status, 200, "{}", u.text);
    let (_, got) = through(&app, &key, "svc", &upstream).await;
    let got = got.unwrap();
    assert_eq!(got.header("x-api-key").as_deref(), Some("second-secret"));
    assert_eq!(got.header("authorization"), None);

    let u = app
        .admin(
            "PATCH",
            "/v1/credentials/svc",
            Some(json!({"policy": {"allowed_hosts": ["api.example.com"]}})),
        )
        .await;
    assert_eq!(u.status, 200, "{}", u.text);
    let (a, got) = through(&app, &key, "svc", &upstream).await;
    a.assert_error(403, "egress_denied");
    assert!(got.is_none(), "nothing may be sent after the policy changed");
    let u = app
        .admin(
            "PATCH",
            "/v1/credentials/svc",
            Some(
                json!({"policy": {"allowed_hosts": ["127.0.0.1"], "allow_http": true, "allow_private_network": true}}),
            ),
        )
        .await;
    assert_eq!(u.status, 200, "{}", u.text);

    assert_eq!(app.admin("POST", "/v1/credentials/svc/freeze", None).await.status, 200);
    let (a, got) = through(&app, &key, "svc", &upstream).await;
    a.assert_error(404, "credential_frozen");
    assert!(got.is_none());

    assert_eq!(
        app.admin("POST", "/v1/credentials/svc/unfreeze", None).await.status,
        200
    );
    let (a, _) = through(&app, &key, "svc", &upstream).await;
    assert_eq!(a.status, 200, "{}", a.text);

    assert_eq!(app.admin("DELETE", "/v1/credentials/svc", None).await.status, 204);
    let (a, got) = through(&app, &key, "svc", &upstream).await;
    a.assert_error(404, "not_found");
    assert!(got.is_none());

    // A new credential under the same alias is used at once, with its own secret.
    app.create_credential(local_credential("svc", "api_key", json!({"key": "third-secret"})))
        .await;
    let (_, got) = through(&app, &key, "svc", &upstream).await;
    assert_eq!(
        got.unwrap().header("authorization").as_deref(),
        Some("Bearer third-secret")
    );
}

#[tokio::test]
async fn every_route_change_on_this_replica_is_seen_by_the_very_next_request() {
    let app = spawn_app().await;
    let upstream = Upstream::start().await;
    app.create_credential(local_credential("svc", "api_key", json!({"key": "route-secret"})))
        .await;
    let (_, _, key) = app.key_with(&["execute"], &["*"]).await;
    let created = app
        .admin(
            "POST",
            "/v1/routes",
            Some(json!({"name": "svc", "base_url": format!("{}/one", upstream.url()), "credential": "svc"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);

    let a = app.call("GET", "/r/svc/x", Some(&key), None).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(upstream.requests().pop().unwrap().uri, "/one/x");

    let u = app
        .admin(
            "PATCH",
            "/v1/routes/svc",
            Some(json!({"base_url": format!("{}/two", upstream.url())})),
        )
        .await;
    assert_eq!(u.status, 200, "{}", u.text);
    let a = app.call("GET", "/r/svc/x", Some(&key), None).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(upstream.requests().pop().unwrap().uri, "/two/x");

    let u = app
        .admin("PATCH", "/v1/routes/svc", Some(json!({"allowed_methods": ["POST"]})))
        .await;
    assert_eq!(u.status, 200, "{}", u.text);
    let before = upstream.requests().len();
    app.call("GET", "/r/svc/x", Some(&key), None)
        .await
        .assert_error(403, "egress_denied");
    assert_eq!(upstream.requests().len(), before);

    assert_eq!(app.admin("DELETE", "/v1/routes/svc", None).await.status, 204);
    app.call("POST", "/r/svc/x", Some(&key), None)
        .await
        .assert_error(404, "not_found");
    assert_eq!(upstream.requests().len(), before);
}

#[tokio::test]
async fn another_replica_sees_credential_changes_within_the_freshness_bound() {
    let app = spawn_app().await;
    let other = app.replica().await;
    let upstream = Upstream::start().await;
    app.create_credential(local_credential("svc", "api_key", json!({"key": "first-secret"})))
        .await;
    let (_, _, key) = app.key_with(&["execute"], &["*"]).await;
    // The other replica looks the credential up (and caches it).
    let (a, got) = through(&other, &key, "svc", &upstream).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        got.unwrap().header("authorization").as_deref(),
        Some("Bearer first-secret")
    );

    let r = app
        .admin(
            "POST",
            "/v1/credentials/svc/rotate",
            Some(json!({"data": {"key": "second-secret"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    past_freshness().await;
    let (_, got) = through(&other, &key, "svc", &upstream).await;
    assert_eq!(
        got.unwrap().header("authorization").as_deref(),
        Some("Bearer second-secret")
    );

    assert_eq!(app.admin("POST", "/v1/credentials/svc/freeze", None).await.status, 200);
    past_freshness().await;
    let (a, got) = through(&other, &key, "svc", &upstream).await;
    a.assert_error(404, "credential_frozen");
    assert!(got.is_none());

    assert_eq!(app.admin("DELETE", "/v1/credentials/svc", None).await.status, 204);
    past_freshness().await;
    let (a, got) = through(&other, &key, "svc", &upstream).await;
    a.assert_error(404, "not_found");
    assert!(got.is_none());
}

#[tokio::test]
async fn another_replica_sees_route_changes_within_the_freshness_bound() {
    let app = spawn_app().await;
    let other = app.replica().await;
    let upstream = Upstream::start().await;
    app.create_credential(local_credential("svc", "api_key", json!({"key": "route-secret"})))
        .await;
    let (_, _, key) = app.key_with(&["execute"], &["*"]).await;
    let created = app
        .admin(
            "POST",
            "/v1/routes",
            Some(json!({"name": "svc", "base_url": format!("{}/one", upstream.url()), "credential": "svc"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(other.call("GET", "/r/svc/x", Some(&key), None).await.status, 200);
    assert_eq!(upstream.requests().pop().unwrap().uri, "/one/x");

    let u = app
        .admin(
            "PATCH",
            "/v1/routes/svc",
            Some(json!({"base_url": format!("{}/two", upstream.url())})),
        )
        .await;
    assert_eq!(u.status, 200, "{}", u.text);
    past_freshness().await;
    assert_eq!(other.call("GET", "/r/svc/x", Some(&key), None).await.status, 200);
    assert_eq!(upstream.requests().pop().unwrap().uri, "/two/x");

    assert_eq!(app.admin("DELETE", "/v1/routes/svc", None).await.status, 204);
    past_freshness().await;
    other
        .call("GET", "/r/svc/x", Some(&key), None)
        .await
        .assert_error(404, "not_found");
}
