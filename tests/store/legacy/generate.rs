#[path = "store/legacy_data.rs"]
mod legacy_data;
use legacy_data::*;
use keystile::audit::{Actor, AuditEvent};
use keystile::crypto::Sealed;
use keystile::store::Store;

async fn fill(store: &dyn Store) {
    let m = master();
    let (a, g) = (acme(), globex());
    let admin_a = role(&a, 1, 0);
    let admin_g = role(&g, 2, 4);
    store.create_tenant(&a, &admin_a, &key(&a, &admin_a, 1, 0)).await.unwrap();
    store.create_tenant(&g, &admin_g, &key(&g, &admin_g, 2, 4)).await.unwrap();
    store.set_tenant_status(&g.id, g.status).await.unwrap();
    for n in 3..=8u32 {
        let i = (n as usize) % 6;
        let r = role(&a, n, i);
        store.create_role(&r).await.unwrap();
        let mut k = key(&a, &r, n, i);
        let (last, revoked) = (k.last_used_at.take(), k.revoked_at.take());
        store.create_api_key(&k).await.unwrap();
        if let Some(at) = last { store.touch_api_key(&k.id, at).await.unwrap(); }
        if let Some(at) = revoked { store.revoke_api_key(&a.id, &k.id, at).await.unwrap(); }
    }
    for n in 1..=3u32 {
        let mut c = credential(&a, n, n as usize);
        c.sealed = Sealed::seal(&m, credential_aad(&a.id, &c.id, 1), &credential_plaintext(n, 1));
        store.create_credential(&c).await.unwrap();
        if n == 2 {
            let s = Sealed::seal(&m, credential_aad(&a.id, &c.id, 2), &credential_plaintext(n, 2));
            store.rotate_credential(&a.id, &c.id, 1, &s, c.updated_at).await.unwrap();
            store.set_credential_status(&a.id, &c.id, c.status, c.updated_at).await.unwrap();
        }
    }
    store.create_route(&route(&a)).await.unwrap();
    let p = project(&a);
    store.create_project(&p, &project_key(&p, 1, 1)).await.unwrap();
    store.rotate_project_key(&project_key(&p, 2, 2), t(5)).await.unwrap();
    for n in 1..=2u32 {
        let mut s = secret(&p, n, n as usize);
        s.sealed = Sealed::seal(&m, secret_aad(&a.id, &s.id, 1), &secret_plaintext(n, 1));
        store.create_secret(&s).await.unwrap();
        if n == 2 {
            let v2 = Sealed::seal(&m, secret_aad(&a.id, &s.id, 2), &secret_plaintext(n, 2));
            store.update_secret(&a.id, &s.id, 1, &v2, t(3)).await.unwrap();
        }
    }
    assert!(store.consume_nonce(&p.id, "nonce-1", t(5), t(2)).await.unwrap());
    store.add_usage(&a.id, "2026-05", 42).await.unwrap();
    // Audit: two chains and the system chain, every field used.
    let mut events = Vec::new();
    for n in 0..3u32 {
        let mut e = AuditEvent::new(a.id.clone(), Actor::Key(format!("00000000-0000-4000-8000-{:012}", 201)), "proxy.request");
        e.id = format!("00000000-0000-4000-8000-{:012}", 800 + n);
        e.time = t(n as usize);
        e.proxy_mode = Some(["path", "route", "execute"][n as usize].into());
        e.credential = Some("github-1".into());
        e.credential_version = Some(1);
        e.method = Some("GET".into());
        e.target_host = Some("api.example.com".into());
        e.target_path = Some(format!("/v1/items/{n}?page=_"));
        e.status = Some(200);
        e.latency_ms = Some(12 + i64::from(n));
        e.bytes = Some(345);
        e.client_ip = Some("2001:db8::1".into());
        events.push(e);
    }
    let mut g1 = AuditEvent::new(g.id.clone(), Actor::Project("00000000-0000-4000-8000-000000000500".into()), "secret.fetch");
    g1.id = "00000000-0000-4000-8000-000000000810".into();
    g1.time = t(3);
    g1.method = Some("GET".into());
    g1.target_path = Some("/v1/secrets?env=production".into());
    g1.status = Some(403);
    g1.outcome = "forbidden".into();
    g1.client_ip = Some("127.0.0.1".into());
    events.push(g1);
    let mut g2 = AuditEvent::new(g.id.clone(), Actor::Key("00000000-0000-4000-8000-000000000202".into()), "POST /v1/credentials");
    g2.id = "00000000-0000-4000-8000-000000000811".into();
    g2.time = t(4);
    g2.method = Some("POST".into());
    g2.target_path = Some("/v1/credentials".into());
    g2.status = Some(201);
    g2.latency_ms = Some(3);
    events.push(g2);
    let mut s = AuditEvent::new(keystile::audit::system_tenant(), Actor::None, "auth.failure");
    s.id = "00000000-0000-4000-8000-000000000820".into();
    s.time = t(5);
    s.method = Some("GET".into());
    s.target_path = Some("/v1/credentials".into());
    s.status = Some(401);
    s.outcome = "unauthorized".into();
    s.client_ip = Some("192.0.2.7".into());
    events.push(s);
    store.append_audit(&events).await.unwrap();
    store.index_audit_journal(&[], "0123456789abcdef0123456789abcdef-0000000001", 123).await.unwrap();
}

#[tokio::test]
async fn generate_sqlite() {
    let path = std::path::Path::new("/tmp/legacy/keystile.db");
    let _ = std::fs::remove_dir_all("/tmp/legacy");
    std::fs::create_dir_all("/tmp/legacy").unwrap();
    let store = keystile::store::sqlite::SqliteStore::open(path).await.unwrap();
    fill(&store).await;
    store.pool().close().await;
}

#[tokio::test]
async fn generate_postgres() {
    use std::str::FromStr;
    let url = "postgres://postgres@127.0.0.1:5432/test";
    let opts = sqlx::postgres::PgConnectOptions::from_str(url).unwrap();
    let mut c = <sqlx::PgConnection as sqlx::Connection>::connect_with(&opts).await.unwrap();
    sqlx::raw_sql("DROP SCHEMA IF EXISTS legacy_fixture CASCADE; CREATE SCHEMA legacy_fixture").execute(&mut c).await.unwrap();
    let store = keystile::store::postgres::PostgresStore::connect_with(opts.options([("search_path", "legacy_fixture")])).await.unwrap();
    fill(&store).await;
    store.pool().close().await;
}
