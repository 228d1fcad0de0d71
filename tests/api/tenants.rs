//! The operator's tenant API: create (with the first admin key, shown once), list, show,
//! change the plan, terminate; only an admin of the default tenant may use it.

use serde_json::json;

use crate::helpers::{Upstream, local_credential, spawn_app};

#[tokio::test]
async fn the_operator_creates_lists_shows_and_replans_tenants_and_a_new_tenants_key_works_in_its_own_tenant_only() {
    let app = spawn_app().await;
    let created = app
        .admin(
            "POST",
            "/v1/tenants",
            Some(json!({"name": "acme", "plan": {"operations_per_month": 1000, "disabled_surfaces": ["ephemeral"]}})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["name"], "acme");
    assert_eq!(created.body["status"], "active");
    assert_eq!(
        created.body["plan"],
        json!({"operations_per_month": 1000, "disabled_surfaces": ["ephemeral"]})
    );
    let key = created.body["admin_key"]["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("kst_"));

    // The new tenant's admin manages its own tenant, and sees nothing of the default one.
    app.create_credential(local_credential(
        "shared-name",
        "api_key",
        json!({"key": "default-secret"}),
    ))
    .await;
    let own = app.call("GET", "/v1/credentials", Some(&key), None).await;
    assert_eq!(own.status, 200, "{}", own.text);
    assert_eq!(own.body["credentials"], json!([]));
    app.call("GET", "/v1/credentials/shared-name", Some(&key), None)
        .await
        .assert_error(404, "not_found");
    let keys = app.call("GET", "/v1/keys", Some(&key), None).await;
    assert_eq!(keys.body["keys"].as_array().unwrap().len(), 1, "{}", keys.text);
    assert!(!keys.text.contains(&key), "a key is never listed");

    let second = app.admin("POST", "/v1/tenants", Some(json!({"name": "beta"}))).await;
    assert_eq!(second.status, 201, "{}", second.text);
    assert_eq!(second.body["plan"], json!({}));

    let list = app.admin("GET", "/v1/tenants?limit=2", None).await;
    assert_eq!(list.status, 200, "{}", list.text);
    let names: Vec<&str> = list.body["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["acme", "beta"]);
    assert_eq!(list.body["next_cursor"], "beta");
    assert!(!list.text.contains("kst_"), "lists never show keys");
    let rest = app.admin("GET", "/v1/tenants?limit=2&cursor=beta", None).await;
    assert_eq!(rest.body["tenants"][0]["name"], "default");
    assert_eq!(rest.body["next_cursor"], json!(null));

    let shown = app.admin("GET", &format!("/v1/tenants/{id}"), None).await;
    assert_eq!(shown.status, 200, "{}", shown.text);
    assert_eq!(shown.body["usage"]["operations"], 0);
    assert!(shown.body["usage"]["period"].as_str().unwrap().len() == 7);

    let patched = app
        .admin(
            "PATCH",
            &format!("/v1/tenants/{id}"),
            Some(json!({"plan": {"requests_per_second": 5, "template_expressions_per_request": 10}})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(
        patched.body["plan"],
        json!({"requests_per_second": 5, "template_expressions_per_request": 10})
    );
}

#[tokio::test]
async fn tenant_input_is_validated_and_missing_tenants_are_404() {
    let app = spawn_app().await;
    for body in [
        json!({"name": "bad name"}),
        json!({"name": "x", "plan": {"requests_per_second": 0}}),
        json!({"name": "x", "plan": {"template_expressions_per_request": 5000}}),
        json!({"name": "x", "plan": {"unknown": 1}}),
        json!({"name": "x", "extra": true}),
    ] {
        app.admin("POST", "/v1/tenants", Some(body))
            .await
            .assert_error(400, "invalid_request");
    }
    assert_eq!(
        app.admin("POST", "/v1/tenants", Some(json!({"name": "dup"})))
            .await
            .status,
        201
    );
    app.admin("POST", "/v1/tenants", Some(json!({"name": "dup"})))
        .await
        .assert_error(409, "conflict");
    app.admin("POST", "/v1/tenants", Some(json!({"name": "default"})))
        .await
        .assert_error(409, "conflict");
    let missing = uuid::Uuid::new_v4();
    app.admin("GET", &format!("/v1/tenants/{missing}"), None)
        .await
        .assert_error(404, "not_found");
    app.admin("GET", "/v1/tenants/not-an-id", None)
        .await
        .assert_error(404, "not_found");
    app.admin("POST", &format!("/v1/tenants/{missing}/terminate"), None)
        .await
        .assert_error(404, "not_found");
    app.admin("PATCH", &format!("/v1/tenants/{missing}"), Some(json!({"plan": {}})))
        .await
        .assert_error(404, "not_found");
    app.admin("GET", "/v1/tenants?limit=lots", None)
        .await
        .assert_error(400, "invalid_request");
}

#[tokio::test]
async fn only_an_admin_of_the_default_tenant_may_manage_tenants() {
    let app = spawn_app().await;
    let created = app.admin("POST", "/v1/tenants", Some(json!({"name": "other"}))).await;
    let other_id = created.body["id"].as_str().unwrap().to_owned();
    let other_admin = created.body["admin_key"]["key"].as_str().unwrap().to_owned();
    let (_, _, reader) = app.key_with(&["read", "write", "delete", "execute"], &["*"]).await;
    for key in [&other_admin, &reader] {
        for (method, path, body) in [
            ("GET", "/v1/tenants".to_owned(), None),
            ("POST", "/v1/tenants".to_owned(), Some(json!({"name": "sneaky"}))),
            ("GET", format!("/v1/tenants/{other_id}"), None),
            ("PATCH", format!("/v1/tenants/{other_id}"), Some(json!({"plan": {}}))),
            ("POST", format!("/v1/tenants/{other_id}/terminate"), None),
        ] {
            app.call(method, &path, Some(key), body)
                .await
                .assert_error(403, "forbidden");
        }
    }
    app.call("GET", "/v1/tenants", None, None)
        .await
        .assert_error(401, "unauthorized");
    let list = app.admin("GET", "/v1/tenants", None).await;
    assert!(!list.text.contains("sneaky"));
}

#[tokio::test]
async fn a_terminated_tenants_keys_get_403_account_terminated_and_its_data_is_kept() {
    let app = spawn_app().await;
    let upstream = Upstream::start().await;
    let created = app.admin("POST", "/v1/tenants", Some(json!({"name": "leaving"}))).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let key = created.body["admin_key"]["key"].as_str().unwrap().to_owned();
    let made = app
        .call(
            "POST",
            "/v1/credentials",
            Some(&key),
            Some(local_credential("svc", "api_key", json!({"key": "k"}))),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.text);
    assert_eq!(app.call("GET", "/v1/credentials", Some(&key), None).await.status, 200);
    let project = app
        .call("POST", "/v1/projects", Some(&key), Some(json!({"name": "leaving-app"})))
        .await;
    assert_eq!(project.status, 201, "{}", project.text);
    let project = crate::projects::Project {
        id: project.body["id"].as_str().unwrap().to_owned(),
        name: "leaving-app".into(),
        private_hex: project.body["private_key"].as_str().unwrap().to_owned(),
    };
    assert_eq!(
        crate::projects::fetch(&app, &project.signer(), "prod").await.status,
        200
    );

    let done = app.admin("POST", &format!("/v1/tenants/{id}/terminate"), None).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.body["status"], "terminated");

    app.call("GET", "/v1/credentials", Some(&key), None)
        .await
        .assert_error(403, "account_terminated");
    let proxied = app
        .http
        .get(app.url(&format!("/{}/x", upstream.url())))
        .bearer_auth(&key)
        .header("x-keystile-credential", "svc")
        .send()
        .await
        .unwrap();
    crate::helpers::answer(proxied)
        .await
        .assert_error(403, "account_terminated");
    assert!(upstream.requests().is_empty());
    // Its projects' signatures are refused too.
    crate::projects::fetch(&app, &project.signer(), "prod")
        .await
        .assert_error(403, "account_terminated");

    // Kept: the tenant is still there, and so is its credential row.
    let shown = app.admin("GET", &format!("/v1/tenants/{id}"), None).await;
    assert_eq!(shown.body["status"], "terminated");
    let store = keystile::store::sqlite::SqliteStore::open(&app.data_dir.join("keystile.db"))
        .await
        .unwrap();
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM credentials WHERE tenant_id = $1")
        .bind(&id)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(count, 1);

    // The operator's own tenant cannot be terminated.
    let tenants = app.admin("GET", "/v1/tenants", None).await;
    let default_id = tenants.body["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "default")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.admin("POST", &format!("/v1/tenants/{default_id}/terminate"), None)
        .await
        .assert_error(409, "conflict");
    assert_eq!(app.admin("GET", "/v1/tenants", None).await.status, 200);
}

#[tokio::test]
async fn the_openapi_document_describes_the_tenant_api() {
    let app = spawn_app().await;
    let doc = app.call("GET", "/openapi.json", None, None).await;
    for path in ["/v1/tenants", "/v1/tenants/{id}", "/v1/tenants/{id}/terminate"] {
        assert!(doc.body["paths"][path].is_object(), "missing {path}");
    }
}

/// Runs the real `keystile` binary against `app` as the operator and parses its JSON output.
async fn cli(app: &crate::helpers::TestApp, args: &[&str]) -> serde_json::Value {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_keystile"));
    cmd.args(args)
        .arg("--url")
        .arg(app.url(""))
        .env("KEYSTILE_TOKEN", &app.admin_key)
        .env_remove("KEYSTILE_URL");
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "keystile {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("keystile {args:?} printed {stdout:?}: {e}"))
}

#[tokio::test]
async fn the_tenant_cli_creates_lists_shows_replans_and_terminates() {
    let app = spawn_app().await;
    let made = cli(
        &app,
        &[
            "tenant",
            "create",
            "cli-made",
            "--operations-per-month",
            "5",
            "--disable-surface",
            "mcp",
        ],
    )
    .await;
    assert_eq!(
        made["plan"],
        json!({"operations_per_month": 5, "disabled_surfaces": ["mcp"]})
    );
    assert!(made["admin_key"]["key"].as_str().unwrap().starts_with("kst_"));
    let id = made["id"].as_str().unwrap().to_owned();

    let listed = cli(&app, &["tenant", "list"]).await;
    assert!(
        listed["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == json!(id))
    );
    let replanned = cli(&app, &["tenant", "set-plan", &id, "--requests-per-second", "3"]).await;
    assert_eq!(replanned["plan"], json!({"requests_per_second": 3}));
    let json_plan = cli(
        &app,
        &["tenant", "set-plan", &id, "--plan", r#"{"operations_per_month": 9}"#],
    )
    .await;
    assert_eq!(json_plan["plan"], json!({"operations_per_month": 9}));
    let shown = cli(&app, &["tenant", "show", &id]).await;
    assert_eq!(shown["usage"]["operations"], 0);
    let ended = cli(&app, &["tenant", "terminate", &id]).await;
    assert_eq!(ended["status"], "terminated");
}
