//! Tenant isolation: an admin of one tenant tries to reach another tenant's objects through
//! every endpoint — by id, by alias or name, and by glob — and gets 404 (or 403) every time,
//! with nothing sent upstream and nothing changed.

use serde_json::{Value, json};

use crate::helpers::*;

/// Creates tenant `name` through the operator API and returns its first admin key.
async fn tenant_admin(app: &TestApp, name: &str) -> String {
    let created = app.admin("POST", "/v1/tenants", Some(json!({"name": name}))).await;
    assert_eq!(created.status, 201, "{}", created.text);
    created.body["admin_key"]["key"].as_str().unwrap().to_owned()
}

/// Tenant A's objects: a credential, a route, a role and a key.
struct Victim {
    role_id: String,
    key_id: String,
    key: String,
    project_id: String,
    secret_id: String,
}

async fn victim(app: &TestApp, upstream: &Upstream) -> Victim {
    app.create_credential(local_credential(
        "shared-name",
        "api_key",
        json!({"key": "tenant-a-secret"}),
    ))
    .await;
    let r = app
        .admin(
            "POST",
            "/v1/routes",
            Some(json!({"name": "svc", "base_url": upstream.url(), "credential": "shared-name"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let (role_id, key_id, key) = app.key_with(&["execute", "read"], &["*"]).await;
    let project = crate::projects::create_project(app, "shared-project").await;
    let secret = crate::projects::put_secret(app, &project, "prod", "DB", "tenant-a-db-secret").await;
    assert_eq!(secret.status, 200, "{}", secret.text);
    Victim {
        role_id,
        key_id,
        key,
        project_id: project.id,
        secret_id: secret.body["id"].as_str().unwrap().to_owned(),
    }
}

#[tokio::test]
async fn another_tenant_cannot_reach_any_object_by_id_alias_or_glob() {
    let app = spawn_app().await;
    let upstream = Upstream::start().await;
    let a = victim(&app, &upstream).await;
    let b_key = tenant_admin(&app, "tenant-b").await;
    let b = Some(b_key.as_str());

    // Management endpoints, by alias / name / id.
    let by_ref: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/v1/credentials/shared-name".into(), None),
        (
            "PATCH",
            "/v1/credentials/shared-name".into(),
            Some(json!({"description": "mine now"})),
        ),
        ("POST", "/v1/credentials/shared-name/freeze".into(), None),
        ("POST", "/v1/credentials/shared-name/unfreeze".into(), None),
        (
            "POST",
            "/v1/credentials/shared-name/rotate".into(),
            Some(json!({"data": {"key": "x"}})),
        ),
        ("DELETE", "/v1/credentials/shared-name".into(), None),
        ("GET", "/v1/routes/svc".into(), None),
        ("PATCH", "/v1/routes/svc".into(), Some(json!({"timeout_ms": 1000}))),
        ("DELETE", "/v1/routes/svc".into(), None),
        ("GET", format!("/v1/roles/{}", a.role_id), None),
        ("DELETE", format!("/v1/roles/{}", a.role_id), None),
        ("DELETE", format!("/v1/keys/{}", a.key_id), None),
        ("PUT", format!("/v1/projects/{}/rotate", a.project_id), None),
        ("GET", format!("/v1/projects/{}/secrets?env=prod", a.project_id), None),
        (
            "PUT",
            format!("/v1/projects/{}/secrets", a.project_id),
            Some(json!({"key": "DB", "value": "overwritten", "env": "prod"})),
        ),
        ("DELETE", format!("/v1/secrets/{}", a.secret_id), None),
        ("DELETE", format!("/v1/projects/{}", a.project_id), None),
    ];
    for (method, path, body) in by_ref {
        let got = app.call(method, &path, b, body).await;
        got.assert_error(404, "not_found");
        assert!(!got.text.contains("tenant-a-secret"));
    }

    // Creating objects in B that point at A's: a key on A's role, a route on A's credential.
    let key = app
        .call("POST", "/v1/keys", b, Some(json!({"name": "k", "role_id": a.role_id})))
        .await;
    assert!(matches!(key.status, 400 | 404), "{}", key.text);
    let route = app
        .call(
            "POST",
            "/v1/routes",
            b,
            Some(json!({"name": "steal", "base_url": upstream.url(), "credential": "shared-name"})),
        )
        .await;
    assert!(matches!(route.status, 400 | 404), "{}", route.text);

    // Lists (a `*` scope is a glob over B's own objects only).
    for (path, field) in [
        ("/v1/credentials", "credentials"),
        ("/v1/routes", "routes"),
        ("/v1/roles", "roles"),
        ("/v1/keys", "keys"),
        ("/v1/projects", "projects"),
    ] {
        let got = app.call("GET", path, b, None).await;
        assert_eq!(got.status, 200, "{path}: {}", got.text);
        let items = got.body[field]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: {}", got.text));
        assert!(
            items.iter().all(|i| i["alias"] != "shared-name"
                && i["name"] != "svc"
                && i["id"] != a.role_id.as_str()
                && i["id"] != a.key_id.as_str()
                && i["id"] != a.project_id.as_str()),
            "{path} shows tenant A's objects: {}",
            got.text
        );
    }

    // Every proxy surface, naming A's credential or route.
    let target = format!("{}/x", upstream.url());
    app.proxy(&b_key, "shared-name", "GET", &target)
        .await
        .assert_error(404, "not_found");
    app.call(
        "POST",
        "/v1/execute",
        b,
        Some(
            json!({"credential": "shared-name", "action": "http.request", "params": {"method": "GET", "url": target}}),
        ),
    )
    .await
    .assert_error(404, "not_found");
    let eph = app
        .http
        .get(app.url("/v1/proxy"))
        .bearer_auth(&b_key)
        .header("x-keystile-target", &target)
        .header("x-keystile-credential", "shared-name")
        .send()
        .await
        .unwrap();
    answer(eph).await.assert_error(404, "not_found");
    app.call("GET", "/r/svc/x", b, None)
        .await
        .assert_error(404, "not_found");
    assert!(upstream.requests().is_empty(), "nothing reached the upstream");

    // Tenant A is untouched and still works.
    let ok = app.proxy(&a.key, "shared-name", "GET", &target).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let cred = app.admin("GET", "/v1/credentials/shared-name", None).await;
    assert_eq!(cred.body["status"], "active");
    assert_eq!(cred.body["version"], 1);
    assert!(cred.body["description"].is_null());
    let route = app.admin("GET", "/v1/routes/svc", None).await;
    assert_eq!(route.status, 200);
    let secrets = app
        .admin("GET", &format!("/v1/projects/{}/secrets?env=prod", a.project_id), None)
        .await;
    assert_eq!(
        secrets.body["secrets"].as_array().map(Vec::len),
        Some(1),
        "{}",
        secrets.text
    );

    // The audit trail: B sees and verifies only its own chain, even when filtering for A's key.
    let mine = app.admin("GET", &format!("/v1/audit?key={}", a.key_id), None).await;
    assert_eq!(mine.body["events"].as_array().map(Vec::len), Some(1), "{}", mine.text);
    for path in [format!("/v1/audit?key={}", a.key_id), "/v1/audit?limit=500".into()] {
        let got = app.call("GET", &path, b, None).await;
        assert_eq!(got.status, 200, "{}", got.text);
        let events = got.body["events"].as_array().unwrap();
        assert!(
            events
                .iter()
                .all(|e| e["actor"]["id"] != a.key_id.as_str() && e["status"] != 200),
            "B sees A's events: {}",
            got.text
        );
    }
    // Tenants are the operator's (the default tenant's admins); B cannot even list them.
    let tenants = app.admin("GET", "/v1/tenants", None).await;
    let a_tenant = tenants.body["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "default")
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .unwrap();
    for (method, path) in [
        ("GET", "/v1/tenants".to_owned()),
        ("GET", format!("/v1/tenants/{a_tenant}")),
        ("PATCH", format!("/v1/tenants/{a_tenant}")),
        ("POST", format!("/v1/tenants/{a_tenant}/terminate")),
    ] {
        let got = app.call(method, &path, b, Some(json!({"plan": {}}))).await;
        assert!(matches!(got.status, 403 | 404), "{method} {path}: {}", got.text);
    }
    let verify = app.call("GET", "/v1/audit/verify", b, None).await;
    let own_events = app.call("GET", "/v1/audit?limit=500", b, None).await;
    assert_eq!(verify.body["ok"], true, "{}", verify.text);
    assert_eq!(
        verify.body["events"].as_u64(),
        own_events.body["events"].as_array().map(|e| e.len() as u64),
        "B's chain holds exactly B's events"
    );
}

#[tokio::test]
async fn the_same_names_in_two_tenants_are_separate_objects() {
    let app = spawn_app().await;
    let upstream = Upstream::start().await;
    let b = tenant_admin(&app, "tenant-b").await;
    app.create_credential(local_credential("same", "api_key", json!({"key": "secret-of-a"})))
        .await;
    let created = app
        .call(
            "POST",
            "/v1/credentials",
            Some(&b),
            Some(local_credential("same", "api_key", json!({"key": "secret-of-b"}))),
        )
        .await;
    assert_eq!(created.status, 201, "the alias is free in tenant B: {}", created.text);
    let target = format!("{}/x", upstream.url());
    app.proxy(&app.admin_key, "same", "GET", &target).await;
    app.proxy(&b, "same", "GET", &target).await;
    let got = upstream.requests();
    assert_eq!(got[0].header("authorization").as_deref(), Some("Bearer secret-of-a"));
    assert_eq!(got[1].header("authorization").as_deref(), Some("Bearer secret-of-b"));

    // Projects are the exception: a signature's keyid names a project but no tenant, so a
    // project name belongs to one tenant only — another tenant cannot claim it (and with it
    // the signatures, even if it registered the same public key).
    let pa = crate::projects::create_project(&app, "same-app").await;
    assert_eq!(
        crate::projects::put_secret(&app, &pa, "prod", "K", "value-of-a")
            .await
            .status,
        200
    );
    let public_hex = hex::encode(pa.key().verifying_key().to_bytes());
    for body in [
        json!({"name": "same-app"}),
        json!({"name": "same-app", "public_key": public_hex}),
    ] {
        let made = app.call("POST", "/v1/projects", Some(&b), Some(body)).await;
        made.assert_error(409, "conflict");
    }
    let a_sees = crate::projects::fetch(&app, &pa.signer(), "prod").await;
    assert_eq!(a_sees.body, json!({"K": "value-of-a"}), "{}", a_sees.text);
}
