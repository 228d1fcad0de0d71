//! The audit trail seen from outside: one event per proxied call on every surface (successes
//! and refusals), authentication failures, management changes, the query and verify endpoints,
//! tampering on the real SQLite file, and failing closed when the trail cannot be written.

use std::time::Duration;

use keystile::audit::{AuditFilter, system_tenant};
use keystile::store::Store as _;
use keystile::store::sqlite::SqliteStore;
use serde_json::{Value, json};

use crate::helpers::*;

const SECRET: &str = "sk-audit-0123456789";
const QUERY_VALUE: &str = "qv-private-4242";

/// A second store on the gateway's own database file, to look at and tamper with rows.
/// The gateway's database, once everything it journaled so far is indexed into it.
pub async fn database(app: &TestApp) -> SqliteStore {
    assert!(app.audit.caught_up(Duration::from_secs(10)).await, "journal indexed");
    SqliteStore::open(&app.data_dir.join("keystile.db")).await.unwrap()
}

/// Makes the database refuse every new audit row (a trigger), as a failing database would.
async fn refuse_audit_rows(db: &SqliteStore) {
    sqlx::raw_sql(
        "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events BEGIN SELECT RAISE(FAIL, 'refused'); END;",
    )
    .execute(db.pool())
    .await
    .unwrap();
}

/// Undoes [`refuse_audit_rows`].
async fn accept_audit_rows(db: &SqliteStore) {
    sqlx::raw_sql("DROP TRIGGER refuse_audit")
        .execute(db.pool())
        .await
        .unwrap();
}

/// All of the tenant's events matching `query`, oldest first.
async fn events(app: &TestApp, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if query.is_empty() { "" } else { "&" };
        let path = match &cursor {
            Some(c) => format!("/v1/audit?limit=2{sep}{query}&cursor={c}"),
            None => format!("/v1/audit?limit=2{sep}{query}"),
        };
        let a = app.admin("GET", &path, None).await;
        assert_eq!(a.status, 200, "{}", a.text);
        out.extend(a.body["events"].as_array().unwrap().iter().cloned());
        match a.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    out.reverse();
    out
}

async fn admin_key_id(app: &TestApp) -> String {
    let keys = app.admin("GET", "/v1/keys", None).await;
    keys.body["keys"][0]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_surface_records_exactly_one_event_with_its_fields_and_no_secret_or_query_value() {
    let app = spawn_app().await;
    let upstream = Upstream::start().await;
    app.create_credential(local_credential("echo", "api_key", json!({"key": SECRET})))
        .await;
    let route = json!({"name": "svc", "base_url": upstream.url(), "credential": "echo"});
    assert_eq!(app.admin("POST", "/v1/routes", Some(route)).await.status, 201);
    let target = format!("{}/items?token={QUERY_VALUE}", upstream.url());

    let path = app.proxy(&app.admin_key, "echo", "GET", &target).await;
    assert_eq!(path.status, 200, "{}", path.text);
    let route = app
        .admin("GET", &format!("/r/svc/items?token={QUERY_VALUE}"), None)
        .await;
    assert_eq!(route.status, 200, "{}", route.text);
    let execute = app
        .admin(
            "POST",
            "/v1/execute",
            Some(json!({"credential": "echo", "action": "http.request", "params": {"method": "POST", "url": target}})),
        )
        .await;
    assert_eq!(execute.status, 200, "{}", execute.text);
    let ephemeral = app
        .http
        .delete(app.url("/v1/proxy"))
        .bearer_auth(&app.admin_key)
        .header("x-keystile-target", &target)
        .header("x-keystile-credential", "echo")
        .send()
        .await
        .unwrap();
    assert_eq!(ephemeral.status(), 200);

    let got = events(&app, "action=proxy.request").await;
    let modes: Vec<&str> = got.iter().map(|e| e["proxy_mode"].as_str().unwrap()).collect();
    assert_eq!(
        modes,
        ["path", "route", "execute", "ephemeral"],
        "one event per call: {got:#?}"
    );
    let methods: Vec<&str> = got.iter().map(|e| e["method"].as_str().unwrap()).collect();
    assert_eq!(methods, ["GET", "GET", "POST", "DELETE"]);
    let key_id = admin_key_id(&app).await;
    for e in &got {
        assert_eq!(e["credential"], "echo");
        assert_eq!(e["credential_version"], 1);
        assert_eq!(e["target_host"], "127.0.0.1");
        assert_eq!(e["target_path"], "/items?token=_", "query value redacted, name kept");
        assert_eq!(e["status"], 200);
        assert_eq!(e["outcome"], "ok");
        assert_eq!(e["client_ip"], "127.0.0.1");
        assert_eq!(e["actor"], json!({"kind": "key", "id": key_id}));
        assert!(e["latency_ms"].is_i64() && e["time"].is_string() && e["id"].is_string());
    }
    // The upstream declares its answer's length; it is recorded as `bytes`.
    assert!(
        got.iter().any(|e| e["bytes"].as_i64().is_some_and(|b| b > 0)),
        "{got:#?}"
    );
    let listed = app.admin("GET", "/v1/audit?limit=1000", None).await.text;
    assert!(!listed.contains(SECRET) && !listed.contains(QUERY_VALUE));
    let db = database(&app).await;
    db.pool().close().await;
    for (file, bytes) in files_under(&app.data_dir) {
        for needle in [SECRET, QUERY_VALUE] {
            assert!(
                !contains(&bytes, needle.as_bytes()),
                "{needle} found in {}",
                file.display()
            );
        }
    }
    let v = app.admin("GET", "/v1/audit/verify", None).await;
    assert_eq!(v.body["ok"], true, "{}", v.text);
}

#[tokio::test]
async fn refused_and_failed_proxy_calls_are_recorded_with_their_error_code() {
    let app = spawn_app().await;
    let upstream = Upstream::start().await;
    app.create_credential(local_credential("echo", "api_key", json!({"key": SECRET})))
        .await;
    app.create_credential(json!({"alias": "public", "type": "api_key", "data": {"key": SECRET},
        "policy": {"allowed_hosts": ["127.0.0.1"], "allow_http": true}}))
        .await;
    let (_, _, no_exec) = app.key_with(&["read"], &["*"]).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let cases: Vec<(Answer, u16, &str)> = vec![
        (
            app.proxy(&app.admin_key, "echo", "GET", "http://example.org/x").await,
            403,
            "egress_denied",
        ),
        (
            app.proxy(&app.admin_key, "public", "GET", &upstream.url()).await,
            403,
            "ssrf_blocked",
        ),
        (
            app.proxy(&no_exec, "echo", "GET", &upstream.url()).await,
            403,
            "forbidden",
        ),
        (
            app.proxy(&app.admin_key, "nope", "GET", &upstream.url()).await,
            404,
            "not_found",
        ),
        (
            app.proxy(&app.admin_key, "echo", "GET", &format!("http://{closed}/"))
                .await,
            502,
            "upstream_error",
        ),
    ];
    let got = events(&app, "action=proxy.request").await;
    assert_eq!(got.len(), cases.len(), "{got:#?}");
    for ((answer, status, code), event) in cases.iter().zip(&got) {
        answer.assert_error(*status, code);
        assert_eq!(event["outcome"], *code);
        assert_eq!(event["status"], *status);
        assert_eq!(event["proxy_mode"], "path");
    }
    assert_eq!(got[0]["target_host"], "example.org");
}

#[tokio::test]
async fn authentication_failures_are_recorded_in_the_keys_tenant_or_the_system_chain() {
    let app = spawn_app().await;
    let (_, key_id, key) = app.key_with(&["read"], &["*"]).await;
    app.admin("DELETE", &format!("/v1/keys/{key_id}"), None).await;
    app.call("GET", "/v1/credentials", Some(&key), None)
        .await
        .assert_error(401, "unauthorized");
    app.call(
        "GET",
        &format!("/v1/credentials?secret={QUERY_VALUE}"),
        Some("kst_unknown_key_0123456789"),
        None,
    )
    .await
    .assert_error(401, "unauthorized");
    app.call("POST", "/v1/credentials", None, Some(json!({})))
        .await
        .assert_error(401, "unauthorized");

    let revoked = events(&app, "action=auth.failure").await;
    assert_eq!(revoked.len(), 1, "{revoked:#?}");
    assert_eq!(revoked[0]["actor"], json!({"kind": "key", "id": key_id}));
    assert_eq!(revoked[0]["outcome"], "unauthorized");
    assert_eq!(revoked[0]["target_path"], "/v1/credentials");

    let db = database(&app).await;
    let system = db
        .list_audit(
            &system_tenant(),
            &AuditFilter {
                limit: 10,
                ..AuditFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(system.len(), 2, "unknown and missing keys go to the system chain");
    let unknown = &system[1].event;
    assert_eq!(unknown.action, "auth.failure");
    assert_eq!(unknown.target_path.as_deref(), Some("/v1/credentials?secret=_"));
    assert_eq!(unknown.client_ip, Some("127.0.0.1".parse().unwrap()));
    assert_eq!(system[0].event.method.as_deref(), Some("POST"));
    assert!(app.audit.verify(&db, &system_tenant()).await.unwrap().ok);
    // The unauthenticated POST is an authentication failure, not also a management change.
    assert!(events(&app, "action=POST%20%2Fv1%2Fcredentials").await.is_empty());
}

#[tokio::test]
async fn management_changes_are_recorded_with_actor_route_template_and_outcome() {
    let app = spawn_app().await;
    let admin_id = admin_key_id(&app).await;
    let (_, key_id, reader) = app.key_with(&["read"], &["*"]).await;
    app.create_credential(local_credential("gh", "api_key", json!({"key": SECRET})))
        .await;
    app.admin("POST", "/v1/credentials/gh/freeze", None).await;
    app.admin("GET", "/v1/credentials", None).await;
    app.call("DELETE", "/v1/credentials/gh", Some(&reader), None)
        .await
        .assert_error(403, "forbidden");
    app.admin("DELETE", "/v1/credentials/missing", None)
        .await
        .assert_error(404, "not_found");

    let all = events(&app, "").await;
    let summary: Vec<(String, String, String, String)> = all
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["target_path"].as_str().unwrap().to_owned(),
                e["actor"]["id"].as_str().unwrap().to_owned(),
                e["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let s = |a: &str, p: &str, actor: &str, o: &str| (a.to_owned(), p.to_owned(), actor.to_owned(), o.to_owned());
    assert_eq!(
        summary,
        vec![
            s("POST /v1/roles", "/v1/roles", &admin_id, "ok"),
            s("POST /v1/keys", "/v1/keys", &admin_id, "ok"),
            s("POST /v1/credentials", "/v1/credentials", &admin_id, "ok"),
            s(
                "POST /v1/credentials/{alias}/freeze",
                "/v1/credentials/gh/freeze",
                &admin_id,
                "ok"
            ),
            s(
                "DELETE /v1/credentials/{alias}",
                "/v1/credentials/gh",
                &key_id,
                "forbidden"
            ),
            s(
                "DELETE /v1/credentials/{alias}",
                "/v1/credentials/missing",
                &admin_id,
                "not_found"
            ),
        ],
        "reads are not recorded; refusals are"
    );
    assert_eq!(all[4]["status"], 403);
    assert!(!serde_json::to_string(&all).unwrap().contains(SECRET));
}

#[tokio::test]
async fn both_audit_endpoints_are_in_the_openapi_document() {
    let app = spawn_app().await;
    let doc = app.call("GET", "/openapi.json", None, None).await;
    assert!(doc.body["paths"]["/v1/audit"]["get"].is_object(), "{}", doc.text);
    assert!(doc.body["paths"]["/v1/audit/verify"]["get"].is_object());
    assert!(doc.body["components"]["schemas"]["AuditView"].is_object());
    assert!(doc.body["components"]["schemas"]["Verification"].is_object());
}

#[tokio::test]
async fn reading_the_trail_needs_the_audit_permission_and_stays_in_the_tenant() {
    let app = spawn_app().await;
    let (_, _, reader) = app.key_with(&["read"], &["*"]).await;
    let (_, _, auditor) = app.key_with(&["audit"], &[]).await;
    app.call("GET", "/v1/audit", Some(&reader), None)
        .await
        .assert_error(403, "forbidden");
    app.call("GET", "/v1/audit/verify", Some(&reader), None)
        .await
        .assert_error(403, "forbidden");
    let listed = app.call("GET", "/v1/audit", Some(&auditor), None).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["events"].as_array().unwrap().len(), 4, "{}", listed.text);
    app.call("GET", "/v1/audit?limit=0", Some(&auditor), None)
        .await
        .assert_error(400, "invalid_request");
    app.call("GET", "/v1/audit?since=soon", Some(&auditor), None)
        .await
        .assert_error(400, "invalid_request");
    app.call("GET", "/v1/audit?cursor=x", Some(&auditor), None)
        .await
        .assert_error(400, "invalid_request");
    // Another tenant's events are not visible.
    let db = database(&app).await;
    let other = db.ensure_tenant("globex").await.unwrap();
    let mut e = keystile::audit::AuditEvent::new(other.id.clone(), keystile::audit::Actor::None, "proxy.request");
    e.credential = Some("globex-secret-alias".into());
    app.audit.chains().append(&db, vec![e], None).await.unwrap();
    let listed = app.call("GET", "/v1/audit?limit=1000", Some(&auditor), None).await;
    assert!(!listed.text.contains("globex-secret-alias"));
}

#[tokio::test]
async fn verify_reports_an_intact_chain_and_names_the_first_event_tampered_with_on_disk() {
    let app = spawn_app().await;
    let upstream = Upstream::start().await;
    app.create_credential(local_credential("echo", "api_key", json!({"key": SECRET})))
        .await;
    for i in 0..4 {
        let a = app
            .proxy(&app.admin_key, "echo", "GET", &format!("{}/n/{i}", upstream.url()))
            .await;
        assert_eq!(a.status, 200);
    }
    let v = app.admin("GET", "/v1/audit/verify", None).await;
    assert_eq!(
        v.body,
        json!({"ok": true, "events": 5, "checkpoint": 5}),
        "credential creation + 4 calls, checked against the checkpoint outside the database"
    );
    let victim = events(&app, "action=proxy.request").await[1]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let db = database(&app).await;
    sqlx::query("UPDATE audit_events SET status = 500 WHERE id = $1")
        .bind(&victim)
        .execute(db.pool())
        .await
        .unwrap();
    let v = app.admin("GET", "/v1/audit/verify", None).await;
    assert_eq!(v.body["ok"], false, "{}", v.text);
    assert_eq!(v.body["first_bad_event"], victim.as_str());
    assert_eq!(v.body["events"], 2);
}

#[tokio::test]
async fn when_the_trail_cannot_be_written_calls_fail_closed_and_release_nothing() {
    // Database durability: the event is durable once committed, so a refused commit is a
    // trail that cannot be written.
    let app = spawn_app_with(AppOptions {
        audit: Some(keystile::config::AuditConfig {
            durability: Some(keystile::config::AuditDurability::Database),
        }),
        ..Default::default()
    })
    .await;
    let upstream = Upstream::start().await;
    app.create_credential(local_credential("echo", "api_key", json!({"key": SECRET})))
        .await;
    let db = database(&app).await;
    refuse_audit_rows(&db).await;
    let a = app
        .proxy(&app.admin_key, "echo", "GET", &format!("{}/json", upstream.url()))
        .await;
    a.assert_error(500, "internal_error");
    assert!(
        !a.text.contains("\"ok\":true"),
        "nothing of the upstream's answer: {}",
        a.text
    );
    assert_eq!(upstream.requests().len(), 1, "the call itself had been made");
    app.call("GET", "/v1/credentials", Some("kst_unknown_key_0123456789"), None)
        .await
        .assert_error(500, "internal_error");
    let created = app
        .admin(
            "POST",
            "/v1/roles",
            Some(json!({"name": "r", "permissions": ["read"], "credential_scopes": []})),
        )
        .await;
    created.assert_error(500, "internal_error");
    accept_audit_rows(&db).await;
    let v = app.admin("GET", "/v1/audit/verify", None).await;
    assert_eq!(
        v.body["ok"], true,
        "failed batches leave no trace in the chain: {}",
        v.text
    );
}

#[tokio::test]
async fn with_the_journal_a_database_that_refuses_delays_indexing_but_loses_no_event() {
    let app = spawn_app().await; // the embedded default journals
    let upstream = Upstream::start().await;
    app.create_credential(local_credential("echo", "api_key", json!({"key": SECRET})))
        .await;
    let db = database(&app).await;
    refuse_audit_rows(&db).await;
    for i in 0..5 {
        let a = app
            .proxy(
                &app.admin_key,
                "echo",
                "GET",
                &format!("{}/journaled/{i}", upstream.url()),
            )
            .await;
        assert_eq!(a.status, 200, "durable in the journal: answered ({})", a.text);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let indexed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE target_path LIKE '/journaled/%'")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(indexed, 0, "the database refused every attempt so far");
    accept_audit_rows(&db).await;
    let recorded = events(&app, "action=proxy.request").await;
    let paths: Vec<&str> = recorded.iter().filter_map(|e| e["target_path"].as_str()).collect();
    assert_eq!(
        paths,
        (0..5).map(|i| format!("/journaled/{i}")).collect::<Vec<_>>(),
        "every event indexed once, in order"
    );
    let v = app.admin("GET", "/v1/audit/verify", None).await;
    assert_eq!(v.body, json!({"ok": true, "events": 6, "checkpoint": 6}), "{}", v.text);
}

#[tokio::test]
async fn calls_a_surface_refuses_before_the_pipeline_are_recorded_too() {
    let app = spawn_app().await;
    let upstream = Upstream::start().await;
    let no_header = app
        .http
        .get(app.url(&format!("/{}/x?api_key={QUERY_VALUE}", upstream.url())))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(no_header.status(), 400);
    app.admin("GET", "/r/nope/x", None).await.assert_error(404, "not_found");
    app.admin("GET", "/v1/proxy", None)
        .await
        .assert_error(400, "invalid_request");
    app.admin(
        "POST",
        "/v1/execute",
        Some(json!({"credential": "c", "action": "shell", "params": {"method": "GET", "url": upstream.url()}})),
    )
    .await
    .assert_error(400, "invalid_request");
    let got = events(&app, "action=proxy.request").await;
    let seen: Vec<(&str, &str, i64)> = got
        .iter()
        .map(|e| {
            (
                e["proxy_mode"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
                e["status"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("path", "missing_credential", 400),
            ("route", "not_found", 404),
            ("ephemeral", "invalid_request", 400),
            ("execute", "invalid_request", 400),
        ]
    );
    let path = got[0]["target_path"].as_str().unwrap();
    assert!(path.ends_with("/x?api_key=_") && !path.contains(QUERY_VALUE), "{path}");
    assert_eq!(upstream.requests().len(), 0, "nothing was sent");
}

#[tokio::test]
async fn a_scoped_audit_key_sees_only_events_of_its_credentials() {
    let app = spawn_app().await;
    let upstream = Upstream::start().await;
    for alias in ["team-a-svc", "team-b-svc"] {
        app.create_credential(local_credential(alias, "api_key", json!({"key": "k-secret"})))
            .await;
        let a = app
            .proxy(&app.admin_key, alias, "GET", &format!("{}/x", upstream.url()))
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
    }
    let (_, _, scoped) = app.key_with(&["audit"], &["team-a-*"]).await;
    let got = app
        .call("GET", "/v1/audit?action=proxy.request", Some(&scoped), None)
        .await;
    assert_eq!(got.status, 200, "{}", got.text);
    let credentials: Vec<&str> = got.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["credential"].as_str())
        .collect();
    assert_eq!(credentials, vec!["team-a-svc"], "{}", got.text);
}
