//! Secrets at rest: nothing in the data directory or the logs is a secret in plaintext, and a
//! tampered or transplanted ciphertext never decrypts.

use base64::Engine as _;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn the_data_directory_and_logs_never_hold_a_secret_or_an_api_key() {
    let app = spawn_app().await;
    let upstream = Upstream::start().await;
    let secrets = ["apikey-7d1f0c2e9b", "passw0rd-a8e3f1", "hdr-secret-55c0aa"];
    app.create_credential(local_credential("a", "api_key", json!({"key": secrets[0]})))
        .await;
    app.create_credential(local_credential(
        "b",
        "basic_auth",
        json!({"username": "user-x", "password": secrets[1]}),
    ))
    .await;
    app.create_credential(local_credential(
        "c",
        "headers",
        json!({"headers": {"X-Token": secrets[2]}}),
    ))
    .await;
    let (_, _, key) = app.key_with(&["execute"], &["*"]).await;
    for alias in ["a", "b", "c"] {
        assert_eq!(
            app.proxy(&key, alias, "GET", &format!("{}/x", upstream.url()))
                .await
                .status,
            200
        );
    }
    app.admin(
        "POST",
        "/v1/credentials/a/rotate",
        Some(json!({"data": {"key": "rotated-9f8e7d"}})),
    )
    .await;

    let basic = base64::engine::general_purpose::STANDARD.encode(format!("user-x:{}", secrets[1]));
    let mut needles: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
    needles.extend([basic, "rotated-9f8e7d".into(), key.clone(), app.admin_key.clone()]);

    let files = files_under(&app.data_dir);
    assert!(
        files.iter().any(|(p, _)| p.ends_with("keystile.db")),
        "the store lives in the data dir"
    );
    let logs = captured_logs();
    for needle in &needles {
        for (path, bytes) in &files {
            assert!(
                !contains(bytes, needle.as_bytes()),
                "{} holds a secret in plaintext",
                path.display()
            );
        }
        assert!(!logs.contains(needle.as_str()), "logs hold a secret");
    }
}

#[tokio::test]
async fn the_generated_master_key_file_is_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let app = spawn_app().await;
    let mode = std::fs::metadata(app.data_dir.join("master.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let dir_mode = std::fs::metadata(&app.data_dir).unwrap().permissions().mode();
    assert_eq!(dir_mode & 0o077, 0, "data directory is private to its owner");
}

async fn db(app: &TestApp) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(&format!("sqlite://{}", app.data_dir.join("keystile.db").display()))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_tampered_ciphertext_fails_closed_with_a_generic_500() {
    let app = spawn_app().await;
    let upstream = Upstream::start().await;
    app.create_credential(local_credential("t", "api_key", json!({"key": "tamper-me"})))
        .await;
    let pool = db(&app).await;
    let (mut ct,): (Vec<u8>,) = sqlx::query_as("SELECT ciphertext FROM credentials WHERE alias = 't'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let last = ct.len() - 1;
    ct[last] ^= 1;
    sqlx::query("UPDATE credentials SET ciphertext = $1 WHERE alias = 't'")
        .bind(ct)
        .execute(&pool)
        .await
        .unwrap();

    let a = app
        .proxy(&app.admin_key, "t", "GET", &format!("{}/x", upstream.url()))
        .await;
    a.assert_error(500, "internal_error");
    assert_eq!(a.body["message"], "internal error", "no detail reaches the caller");
    assert!(
        upstream.requests().is_empty(),
        "nothing is sent without a valid credential"
    );
}

#[tokio::test]
async fn a_ciphertext_moved_to_another_row_does_not_decrypt() {
    let app = spawn_app().await;
    let upstream = Upstream::start().await;
    app.create_credential(local_credential("victim", "api_key", json!({"key": "victim-secret"})))
        .await;
    app.create_credential(local_credential(
        "attacker",
        "api_key",
        json!({"key": "attacker-secret"}),
    ))
    .await;
    let pool = db(&app).await;
    sqlx::query(
        "UPDATE credentials SET wrapped_key = (SELECT wrapped_key FROM credentials WHERE alias = 'victim'), \
         ciphertext = (SELECT ciphertext FROM credentials WHERE alias = 'victim') WHERE alias = 'attacker'",
    )
    .execute(&pool)
    .await
    .unwrap();
    let a = app
        .proxy(&app.admin_key, "attacker", "GET", &format!("{}/x", upstream.url()))
        .await;
    a.assert_error(500, "internal_error");
    assert!(upstream.requests().is_empty());
    assert_eq!(
        app.proxy(&app.admin_key, "victim", "GET", &format!("{}/x", upstream.url()))
            .await
            .status,
        200
    );
    assert_eq!(
        upstream.requests()[0].header("authorization").as_deref(),
        Some("Bearer victim-secret")
    );
}
