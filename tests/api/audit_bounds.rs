//! The audit trail against hostile input and damage, with the real binary where a restart
//! matters: oversized request fields are recorded cut and never stop the indexer or the next
//! start; a damaged journal segment is set aside while the gateway serves; removing the newest
//! events and rewinding the head is caught by the checkpoint kept outside the database.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use keystile::audit::event::TargetPath;
use keystile::audit::{Actor, AuditEvent, AuditFilter, journal, system_tenant};
use keystile::domain::TenantId;
use keystile::store::{SqlStore, Store as _};
use serde_json::{Value, json};

use crate::helpers::*;

const ADMIN_TOKEN: &str = "bounds-test-admin-token-0123456789abcdef";
const HUGE: usize = 300 * 1024;

/// Starts the binary on `data_dir` and waits until it answers `/health`.
async fn start(data_dir: &Path, http: &reqwest::Client) -> (Gateway, String) {
    let port = free_port();
    let child = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(data_dir)
        .env("KEYSTILE_ADMIN_TOKEN", ADMIN_TOKEN)
        .env_remove("KEYSTILE_MASTER_KEY")
        .env_remove("KEYSTILE_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let gateway = Gateway(child);
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    loop {
        if let Ok(r) = http.get(format!("{url}/health")).send().await
            && r.status() == 200
        {
            return (gateway, url);
        }
        assert!(started.elapsed() < Duration::from_secs(30), "gateway became healthy");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn get(http: &reqwest::Client, url: &str, path: &str) -> (u16, Value) {
    let r = http
        .get(format!("{url}{path}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Every event of the system chain (unknown keys, the gateway's own reports).
async fn system_chain(data_dir: &Path) -> Vec<AuditEvent> {
    let db = SqlStore::open(&data_dir.join("keystile.db")).await.unwrap();
    let filter = AuditFilter {
        limit: 1000,
        ..AuditFilter::default()
    };
    let events = db.list_audit(&system_tenant(), &filter).await.unwrap();
    db.pool().close().await;
    events.into_iter().map(|r| r.event).collect()
}

async fn status_of(r: reqwest::RequestBuilder) -> reqwest::StatusCode {
    // Only the status: an error's text must never carry the huge value back.
    r.send().await.expect("an answer").status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_300_kb_field_is_recorded_cut_read_back_and_the_gateway_restarts_cleanly_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let http = test_client();
    let (gateway, url) = start(&data_dir, &http).await;
    let credential = local_credential("echo", "api_key", json!({"key": "sk-bounds-0123456789"}));
    let created = status_of(
        http.post(format!("{url}/v1/credentials"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&credential),
    );
    assert_eq!(created.await, 201);
    let huge_target = format!("https://api.example.com/{}", "t".repeat(HUGE));

    // Unauthenticated, a 300 KB method: refused as the client's mistake.
    let method = reqwest::Method::from_bytes("M".repeat(HUGE).as_bytes()).unwrap();
    let status = status_of(http.request(method, format!("{url}/v1/proxy"))).await;
    assert!(status.is_client_error(), "{status}");
    // Unauthenticated, as long a path as a request line carries (URIs stop at 64 KiB).
    let long_path = format!("/https://api.example.com/{}", "p".repeat(60 * 1024));
    assert_eq!(status_of(http.get(format!("{url}{long_path}"))).await, 401);
    // With a key: a 300 KB X-Keystile-Target and a 300 KB params.url on execute (refused by
    // the credential's egress policy: nothing leaves this machine).
    let ephemeral = http
        .get(format!("{url}/v1/proxy"))
        .bearer_auth(ADMIN_TOKEN)
        .header("x-keystile-target", &huge_target)
        .header("x-keystile-credential", "echo");
    assert_eq!(status_of(ephemeral).await, 403);
    let body = json!({"credential": "echo", "action": "http.request", "params": {"method": "GET", "url": huge_target}});
    let execute = http
        .post(format!("{url}/v1/execute"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body);
    assert!(status_of(execute).await.is_client_error());

    // Read back, through the API (which waits for the indexer: it is not stalled).
    let (status, page) = get(&http, &url, "/v1/audit?action=proxy.request&limit=10").await;
    assert_eq!(status, 200);
    let events = page["events"].as_array().unwrap();
    let cut: Vec<&str> = events
        .iter()
        .filter_map(|e| e["target_path"].as_str())
        .filter(|p| p.ends_with("…[truncated]"))
        .collect();
    assert_eq!(
        cut.len(),
        2,
        "the ephemeral call and the execute, each recorded cut with a visible marker"
    );
    assert!(cut.iter().all(|p| p.len() == 2048), "cut to their bound");
    let (_, verified) = get(&http, &url, "/v1/audit/verify").await;
    assert_eq!(verified["ok"], true, "{verified}");

    // Killed, then started again on the same data directory: it starts and serves.
    drop(gateway);
    let (_gateway, url) = start(&data_dir, &http).await;
    let (status, _) = get(&http, &url, "/v1/credentials").await;
    assert_eq!(status, 200);
    let (_, verified) = get(&http, &url, "/v1/audit/verify").await;
    assert_eq!(verified["ok"], true, "{verified}");
    let system = system_chain(&data_dir).await;
    let failure = system
        .iter()
        .find(|e| e.action == "auth.failure" && e.target_path.as_ref().is_some_and(|p| p.was_cut()))
        .expect("the unauthenticated long path is on the system chain, cut");
    assert_eq!(failure.target_path.as_ref().unwrap().len(), 2048);
    assert!(
        system.iter().all(|e| e.method.as_ref().is_none_or(|m| m.len() <= 32)),
        "no recorded method is longer than its bound"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_journal_segment_is_set_aside_the_gateway_serves_and_the_damage_is_on_the_system_chain() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let http = test_client();
    // A first run creates the data directory, then a crashed run's segment is left in the
    // journal: an event, a damaged line, another event.
    drop(start(&data_dir, &http).await);
    let audit_dir = data_dir.join("audit");
    let instance = "c0ffee00c0ffee00c0ffee00c0ffee00";
    let id = format!("{instance}-0000000001");
    let tenant = TenantId::generate();
    let event = |n: u32| {
        let mut e = AuditEvent::new(tenant.clone(), Actor::None, "proxy.request");
        e.target_path = Some(TargetPath::cut(format!("/left/{n}")));
        journal::encode(&e)
    };
    let mut bytes = format!("keystile-audit-journal 1 {id}\n").into_bytes();
    bytes.extend(event(1));
    bytes.extend(b"{\"id\": this line was damaged on disk\n");
    bytes.extend(event(2));
    std::fs::write(audit_dir.join(format!("{id}.journal")), &bytes).unwrap();
    std::fs::write(audit_dir.join(format!("{instance}.lock")), b"").unwrap();

    let (_gateway, url) = start(&data_dir, &http).await;
    let (status, _) = get(&http, &url, "/v1/credentials").await;
    assert_eq!(status, 200, "the gateway serves");
    let metrics = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("keystile_audit_journal_damaged_segments_total 1"),
        "{metrics}"
    );
    let kept: Vec<_> = std::fs::read_dir(audit_dir.join("quarantine"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(std::fs::read(&kept[0]).unwrap(), bytes, "kept as it was");
    assert!(!audit_dir.join(format!("{id}.journal")).exists());
    // Reading the trail waits for the indexer, which has the report by then.
    let (status, _) = get(&http, &url, "/v1/audit?limit=1").await;
    assert_eq!(status, 200);
    let db = SqlStore::open(&data_dir.join("keystile.db")).await.unwrap();
    let filter = AuditFilter {
        limit: 10,
        ..AuditFilter::default()
    };
    let readable: Vec<String> = db
        .list_audit(&tenant, &filter)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .filter_map(|r| r.event.target_path.map(|p| p.to_string()))
        .collect();
    assert_eq!(readable, ["/left/1", "/left/2"], "every readable event indexed");
    db.pool().close().await;
    let report = system_chain(&data_dir)
        .await
        .into_iter()
        .find(|e| e.action == "audit.journal_damaged")
        .expect("the damage is on the system chain");
    let name = kept[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert_eq!(report.target_path.unwrap().as_str(), format!("quarantine/{name}"));
    assert_eq!(report.outcome, "journal_damaged");
}

#[tokio::test]
async fn deleting_the_newest_events_and_rewinding_the_head_is_reported_by_verify() {
    let app = spawn_app().await;
    let upstream = Upstream::start().await;
    app.create_credential(local_credential(
        "echo",
        "api_key",
        json!({"key": "sk-bounds-0123456789"}),
    ))
    .await;
    for i in 0..4 {
        let a = app
            .proxy(&app.admin_key, "echo", "GET", &format!("{}/n/{i}", upstream.url()))
            .await;
        assert_eq!(a.status, 200);
    }
    let v = app.admin("GET", "/v1/audit/verify", None).await;
    assert_eq!(v.body, json!({"ok": true, "events": 5, "checkpoint": 5}));
    let listed = app.admin("GET", "/v1/audit?limit=3", None).await;
    let kept_id = listed.body["events"][2]["id"].as_str().unwrap().to_owned();
    let tenant = listed.body["events"][0]["tenant_id"].as_str().unwrap().to_owned();
    // Someone with write access to the database removes the two newest events and rewinds the
    // head to the event before them: the database agrees with itself again.
    let db = crate::audit::database(&app).await;
    sqlx::query("DELETE FROM audit_events WHERE tenant_id = $1 AND seq > 3")
        .bind(&tenant)
        .execute(db.pool())
        .await
        .unwrap();
    sqlx::query(
        "UPDATE audit_heads SET seq = 3, hash = (SELECT hash FROM audit_events WHERE tenant_id = $1 AND seq = 3) \
         WHERE tenant_id = $1",
    )
    .bind(&tenant)
    .execute(db.pool())
    .await
    .unwrap();
    let v = app.admin("GET", "/v1/audit/verify", None).await;
    assert_eq!(v.body["ok"], false, "{}", v.text);
    assert_eq!(v.body["events"], 3);
    assert_eq!(
        v.body["first_bad_event"],
        kept_id.as_str(),
        "the newest event still there"
    );
    assert_eq!(
        v.body["reason"],
        "the chain ends before its checkpoint: its newest events were removed"
    );
}

#[tokio::test]
async fn listed_events_carry_their_tenant() {
    let app = spawn_app().await;
    let created = app
        .admin(
            "POST",
            "/v1/roles",
            Some(json!({"name": "r", "permissions": ["read"], "credential_scopes": []})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let db = crate::audit::database(&app).await;
    let default = db.ensure_tenant(keystile::server::DEFAULT_TENANT).await.unwrap();
    let listed = app.admin("GET", "/v1/audit", None).await;
    let events = listed.body["events"].as_array().unwrap();
    assert!(!events.is_empty());
    for e in events {
        assert_eq!(e["tenant_id"], default.id.as_str(), "{e}");
    }
}
