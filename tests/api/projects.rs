//! Projects and configuration secrets (SPEC S7): admin API, the signed SDK endpoints, every
//! 401 code, key rotation, proxies in front of the gateway, an independent Python signer and
//! `keystile run` with the real binary.

use base64::Engine as _;
use ed25519_dalek::SigningKey;
use keystile::config::PublicAddress;
use keystile::crypto::httpsig::Signer;
use keystile::crypto::httpsig::keys::parse_private_hex;
use keystile::domain::ProjectName;
use serde_json::{Value, json};
use url::Url;

use crate::helpers::*;
use keystile::store::Store as _;

/// A project created through the API with a generated key pair.
pub struct Project {
    pub id: String,
    pub name: String,
    pub private_hex: String,
}

impl Project {
    pub fn signer(&self) -> Signer {
        Signer::new(ProjectName::parse(&self.name).unwrap(), self.key())
    }

    pub fn key(&self) -> SigningKey {
        parse_private_hex(&self.private_hex).unwrap()
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub async fn create_project(app: &TestApp, name: &str) -> Project {
    let a = app.admin("POST", "/v1/projects", Some(json!({"name": name}))).await;
    assert_eq!(a.status, 201, "{}", a.text);
    Project {
        id: a.body["id"].as_str().unwrap().to_owned(),
        name: name.to_owned(),
        private_hex: a.body["private_key"].as_str().unwrap().to_owned(),
    }
}

pub async fn put_secret(app: &TestApp, project: &Project, env: &str, key: &str, value: &str) -> Answer {
    app.admin(
        "PUT",
        &format!("/v1/projects/{}/secrets", project.id),
        Some(json!({"key": key, "value": value, "env": env})),
    )
    .await
}

/// `http://127.0.0.1:PORT/v1/secrets?env=…` as a client builds it.
fn secrets_url(base: &str, env: &str) -> Url {
    let mut url = Url::parse(&format!("{base}/v1/secrets")).unwrap();
    url.query_pairs_mut().append_pair("env", env);
    url
}

/// Sends `method` to `send_to` with headers signed for `signed_for`.
async fn send_signed(
    app: &TestApp,
    signer: &Signer,
    method: &str,
    signed_for: &Url,
    send_to: &Url,
    created: i64,
    nonce: Option<&str>,
) -> Answer {
    let headers = match nonce {
        Some(n) => signer.sign_with(method, signed_for, None, created, n),
        None => signer.sign(method, signed_for, None, created),
    }
    .unwrap();
    let mut req = app.http.request(method.parse().unwrap(), send_to.as_str());
    for (k, v) in headers.pairs() {
        req = req.header(k, v);
    }
    answer(req.send().await.unwrap()).await
}

pub async fn fetch(app: &TestApp, signer: &Signer, env: &str) -> Answer {
    let url = secrets_url(&app.url(""), env);
    send_signed(app, signer, "GET", &url, &url, now(), None).await
}

#[tokio::test]
async fn a_project_fetches_the_secrets_of_one_environment_with_a_signed_request() {
    let app = spawn_app().await;
    let p = create_project(&app, &unique("billing")).await;
    for (env, k, v) in [
        ("production", "DATABASE_URL", "postgres://prod"),
        ("production", "API_TOKEN", "tok-prod"),
        ("staging", "DATABASE_URL", "postgres://staging"),
    ] {
        let a = put_secret(&app, &p, env, k, v).await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert!(!a.text.contains(v), "a write never echoes the value");
    }
    let a = fetch(&app, &p.signer(), "production").await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        a.body,
        json!({"DATABASE_URL": "postgres://prod", "API_TOKEN": "tok-prod"})
    );

    // Overwrite: same key, new value.
    assert_eq!(
        put_secret(&app, &p, "production", "API_TOKEN", "tok-2").await.status,
        200
    );
    let a = fetch(&app, &p.signer(), "production").await;
    assert_eq!(a.body["API_TOKEN"], "tok-2");
    assert!(!captured_logs().contains("tok-prod"), "values never reach the log");
}

#[tokio::test]
async fn environment_names_that_need_url_encoding_work() {
    let app = spawn_app().await;
    let p = create_project(&app, &unique("web")).await;
    let env = "prod/eu west & more?=ü";
    assert_eq!(put_secret(&app, &p, env, "REGION", "eu").await.status, 200);
    let a = fetch(&app, &p.signer(), env).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body, json!({"REGION": "eu"}));
    // Percent-encoding the space instead of `+` is another valid spelling; the signature covers
    // the bytes as sent.
    let url = Url::parse(&app.url("/v1/secrets?env=prod%2Feu%20west%20%26%20more%3F%3D%C3%BC")).unwrap();
    let a = send_signed(&app, &p.signer(), "GET", &url, &url, now(), None).await;
    assert_eq!(a.body, json!({"REGION": "eu"}), "{}", a.text);
}

#[tokio::test]
async fn listings_show_metadata_and_never_values() {
    let app = spawn_app().await;
    let p = create_project(&app, &unique("svc")).await;
    put_secret(&app, &p, "production", "SECRET_ONE", "value-one-xyz").await;
    put_secret(&app, &p, "staging", "SECRET_TWO", "value-two-xyz").await;
    let all = app.admin("GET", &format!("/v1/projects/{}/secrets", p.id), None).await;
    assert_eq!(all.status, 200, "{}", all.text);
    assert_eq!(all.body["secrets"].as_array().unwrap().len(), 2);
    assert!(!all.text.contains("value-"), "{}", all.text);
    let one = app
        .admin("GET", &format!("/v1/projects/{}/secrets?env=staging", p.id), None)
        .await;
    let secrets = one.body["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0]["key"], "SECRET_TWO");
    assert_eq!(secrets[0]["env"], "staging");
    assert!(secrets[0]["id"].is_string() && secrets[0]["updated_at"].is_string());

    let projects = app.admin("GET", "/v1/projects", None).await;
    let listed = &projects.body["projects"].as_array().unwrap()[0];
    assert_eq!(listed["name"], p.name.as_str());
    assert!(
        listed.get("private_key").is_none(),
        "the private key is shown once only"
    );

    // Delete one secret; another id or garbage is 404.
    let id = secrets[0]["id"].as_str().unwrap();
    assert_eq!(
        app.admin("DELETE", &format!("/v1/secrets/{id}"), None).await.status,
        204
    );
    app.admin("DELETE", &format!("/v1/secrets/{id}"), None)
        .await
        .assert_error(404, "not_found");
    app.admin("DELETE", "/v1/secrets/not-an-id", None)
        .await
        .assert_error(404, "not_found");
    let a = fetch(&app, &p.signer(), "staging").await;
    assert_eq!(a.body, json!({}));
}

#[tokio::test]
async fn project_administration_needs_admin_and_validates_input() {
    let app = spawn_app().await;
    let (_, _, writer) = app.key_with(&["read", "write", "delete"], &["*"]).await;
    app.call("POST", "/v1/projects", Some(&writer), Some(json!({"name": "x"})))
        .await
        .assert_error(403, "forbidden");
    app.call("GET", "/v1/projects", Some(&writer), None)
        .await
        .assert_error(403, "forbidden");
    for bad in [
        json!({"name": "Bad Name"}),
        json!({"name": "ok", "public_key": "abcd"}),
        json!({}),
    ] {
        app.admin("POST", "/v1/projects", Some(bad))
            .await
            .assert_error(400, "invalid_request");
    }
    let p = create_project(&app, &unique("dup")).await;
    app.admin("POST", "/v1/projects", Some(json!({"name": p.name})))
        .await
        .assert_error(409, "conflict");
    for bad in [
        json!({"key": "1BAD", "value": "v", "env": "e"}),
        json!({"key": "OK", "value": "v", "env": ""}),
        json!({"key": "OK", "value": "a\u{0}b", "env": "e"}),
    ] {
        app.admin("PUT", &format!("/v1/projects/{}/secrets", p.id), Some(bad))
            .await
            .assert_error(400, "invalid_request");
    }
    let ghost = uuid::Uuid::new_v4();
    app.admin("PUT", &format!("/v1/projects/{ghost}/rotate"), None)
        .await
        .assert_error(404, "not_found");
    app.admin(
        "PUT",
        &format!("/v1/projects/{ghost}/secrets"),
        Some(json!({"key": "K", "value": "v", "env": "e"})),
    )
    .await
    .assert_error(404, "not_found");
    app.admin("DELETE", "/v1/projects/nope", None)
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn supplied_hex_and_jwk_public_keys_both_verify() {
    let app = spawn_app().await;
    for form in ["hex", "jwk"] {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let public = key.verifying_key().to_bytes();
        let public_key = match form {
            "hex" => json!(hex::encode(public)),
            _ => json!({"kty": "OKP", "crv": "Ed25519",
                "x": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public)}),
        };
        let name = unique(form);
        let a = app
            .admin(
                "POST",
                "/v1/projects",
                Some(json!({"name": name, "public_key": public_key})),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
        assert!(
            a.body.get("private_key").is_none(),
            "nothing generated, nothing returned"
        );
        assert_eq!(a.body["public_key"], hex::encode(public));
        assert_eq!(a.body["keyid"], format!("{name}.agents.keystile.local"));
        let signer = Signer::new(ProjectName::parse(&name).unwrap(), key);
        let r = fetch(&app, &signer, "production").await;
        assert_eq!(r.status, 200, "{form}: {}", r.text);
    }
}

#[tokio::test]
async fn refused_signatures_get_the_right_401_codes() {
    let app = spawn_app().await;
    let p = create_project(&app, &unique("codes")).await;
    put_secret(&app, &p, "production", "K", "v").await;
    let url = secrets_url(&app.url(""), "production");

    let plain = app.http.get(url.as_str()).send().await.unwrap();
    answer(plain).await.assert_error(401, "missing_signature");

    let ghost = Signer::new(ProjectName::parse("ghost-project").unwrap(), p.key());
    fetch(&app, &ghost, "production")
        .await
        .assert_error(401, "unknown_project");

    let wrong_key = Signer::new(
        ProjectName::parse(&p.name).unwrap(),
        SigningKey::generate(&mut rand::rngs::OsRng),
    );
    fetch(&app, &wrong_key, "production")
        .await
        .assert_error(401, "invalid_signature");

    let nonce = "00112233445566778899aabbccddeeff";
    let first = send_signed(&app, &p.signer(), "GET", &url, &url, now(), Some(nonce)).await;
    assert_eq!(first.status, 200, "{}", first.text);
    send_signed(&app, &p.signer(), "GET", &url, &url, now(), Some(nonce))
        .await
        .assert_error(401, "replayed_nonce");

    send_signed(&app, &p.signer(), "GET", &url, &url, now() - 400, None)
        .await
        .assert_error(401, "expired");

    // Tampering: method, authority, target URI.
    let for_post = p.signer().sign("POST", &url, None, now()).unwrap();
    let mut req = app.http.get(url.as_str());
    for (k, v) in for_post.pairs() {
        req = req.header(k, v);
    }
    answer(req.send().await.unwrap())
        .await
        .assert_error(401, "invalid_signature");
    let mut other_host = url.clone();
    other_host.set_host(Some("localhost")).unwrap();
    send_signed(&app, &p.signer(), "GET", &other_host, &url, now(), None)
        .await
        .assert_error(401, "invalid_signature");
    let staging = secrets_url(&app.url(""), "staging");
    send_signed(&app, &p.signer(), "GET", &url, &staging, now(), None)
        .await
        .assert_error(401, "invalid_signature");

    // Garbage headers are a clean 401, not a 500.
    let garbage = app
        .http
        .get(url.as_str())
        .header("signature-input", "sig1=(\"@method\"")
        .header("signature", "sig1=:AA==:")
        .send()
        .await
        .unwrap();
    answer(garbage).await.assert_error(401, "invalid_signature");
    let huge = app
        .http
        .get(url.as_str())
        .header("signature-input", format!("sig1=(\"{}\")", "a".repeat(20_000)))
        .header("signature", "sig1=:AA==:")
        .send()
        .await
        .unwrap();
    answer(huge).await.assert_error(401, "invalid_signature");
}

#[tokio::test]
async fn a_project_writes_its_own_secret_with_the_body_bound_by_content_digest() {
    let app = spawn_app().await;
    let p = create_project(&app, &unique("writer")).await;
    let url = Url::parse(&app.url("/v1/secrets")).unwrap();
    let body = json!({"key": "FROM_APP", "value": "written-by-app", "env": "production"}).to_string();
    let send = |headers: keystile::crypto::httpsig::SignedHeaders, body: String| {
        let mut req = app.http.put(url.as_str()).body(body);
        for (k, v) in headers.pairs() {
            req = req.header(k, v);
        }
        async move { answer(req.send().await.unwrap()).await }
    };

    let signed = p.signer().sign("PUT", &url, Some(body.as_bytes()), now()).unwrap();
    let swapped = json!({"key": "FROM_APP", "value": "attacker", "env": "production"}).to_string();
    send(signed.clone(), swapped)
        .await
        .assert_error(401, "invalid_signature");
    let ok = send(signed, body.clone()).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.body["key"], "FROM_APP");

    // A signature without Content-Digest cannot carry a body.
    let undigested = p.signer().sign("PUT", &url, None, now()).unwrap();
    send(undigested, body.clone())
        .await
        .assert_error(401, "invalid_signature");
    // A digest header that matches a swapped body is not enough: it is covered by the signature.
    let mut forged = p.signer().sign("PUT", &url, Some(body.as_bytes()), now()).unwrap();
    let other = json!({"key": "FROM_APP", "value": "x", "env": "production"}).to_string();
    forged.content_digest = Some(keystile::crypto::httpsig::digest::content_digest(other.as_bytes()));
    send(forged, other).await.assert_error(401, "invalid_signature");

    let a = fetch(&app, &p.signer(), "production").await;
    assert_eq!(a.body, json!({"FROM_APP": "written-by-app"}));
}

#[tokio::test]
async fn after_rotation_both_keys_verify_and_the_new_private_key_is_returned_once() {
    let app = spawn_app().await;
    let old = create_project(&app, &unique("rot")).await;
    put_secret(&app, &old, "production", "K", "v").await;
    let r = app.admin("PUT", &format!("/v1/projects/{}/rotate", old.id), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let until: chrono::DateTime<chrono::Utc> = r.body["previous_key_valid_until"].as_str().unwrap().parse().unwrap();
    let overlap = until - chrono::Utc::now();
    assert!(overlap > chrono::Duration::minutes(9) && overlap <= chrono::Duration::minutes(10));
    let new = Project {
        id: old.id.clone(),
        name: old.name.clone(),
        private_hex: r.body["private_key"].as_str().unwrap().to_owned(),
    };
    assert_eq!(fetch(&app, &new.signer(), "production").await.status, 200, "new key");
    assert_eq!(
        fetch(&app, &old.signer(), "production").await.status,
        200,
        "old key, in the overlap"
    );
    // (The old key's end after 10 minutes is tested with injected time in the store suite and
    // the verifier's unit tests.)
    let listed = app.admin("GET", "/v1/projects", None).await;
    assert_eq!(
        listed.body["projects"][0]["public_key"],
        hex::encode(new.key().verifying_key().to_bytes())
    );
    assert!(listed.body["projects"][0].get("private_key").is_none());
}

#[tokio::test]
async fn deleting_a_project_deletes_its_secrets_and_its_keys() {
    let app = spawn_app().await;
    let p = create_project(&app, &unique("gone")).await;
    put_secret(&app, &p, "production", "K", "v").await;
    assert_eq!(
        app.admin("DELETE", &format!("/v1/projects/{}", p.id), None)
            .await
            .status,
        204
    );
    fetch(&app, &p.signer(), "production")
        .await
        .assert_error(401, "unknown_project");
    app.admin("GET", &format!("/v1/projects/{}/secrets", p.id), None)
        .await
        .assert_error(404, "not_found");
    // Re-created with the same name: a new key, none of the old secrets.
    let again = create_project(&app, &p.name).await;
    fetch(&app, &p.signer(), "production")
        .await
        .assert_error(401, "invalid_signature");
    assert_eq!(fetch(&app, &again.signer(), "production").await.body, json!({}));
}

async fn app_behind(public: PublicAddress) -> TestApp {
    spawn_app_with(AppOptions {
        public: Some(public),
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn behind_a_tls_proxy_a_configured_public_url_rebuilds_the_target_uri() {
    let app = app_behind(PublicAddress {
        public_url: Some("https://keystile.example.com/base".parse().unwrap()),
        trusted_proxies: Vec::new(),
    })
    .await;
    let p = create_project(&app, &unique("pub")).await;
    put_secret(&app, &p, "production", "K", "v").await;
    // The client signed what it sent to the proxy; the proxy stripped `/base`.
    let public = secrets_url("https://keystile.example.com/base", "production");
    let actual = secrets_url(&app.url(""), "production");
    let a = send_signed(&app, &p.signer(), "GET", &public, &actual, now(), None).await;
    assert_eq!(a.status, 200, "{}", a.text);
    // A signature for the internal address does not match what clients are told to use.
    send_signed(&app, &p.signer(), "GET", &actual, &actual, now(), None)
        .await
        .assert_error(401, "invalid_signature");
}

async fn forwarded_fetch(app: &TestApp, p: &Project) -> Answer {
    let public = secrets_url("https://keystile.example.com", "production");
    let actual = secrets_url(&app.url(""), "production");
    let headers = p.signer().sign("GET", &public, None, now()).unwrap();
    let mut req = app
        .http
        .get(actual.as_str())
        .header("forwarded", "for=203.0.113.9;proto=https;host=keystile.example.com");
    for (k, v) in headers.pairs() {
        req = req.header(k, v);
    }
    answer(req.send().await.unwrap()).await
}

#[tokio::test]
async fn forwarded_host_and_proto_count_only_from_a_trusted_proxy() {
    let loopback: ipnet::IpNet = "127.0.0.1/32".parse().unwrap();
    let trusted = app_behind(PublicAddress {
        public_url: None,
        trusted_proxies: vec![loopback],
    })
    .await;
    let p = create_project(&trusted, &unique("fwd")).await;
    let a = forwarded_fetch(&trusted, &p).await;
    assert_eq!(a.status, 200, "{}", a.text);

    let untrusted = app_behind(PublicAddress {
        public_url: None,
        trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
    })
    .await;
    let p = create_project(&untrusted, &unique("fwd")).await;
    forwarded_fetch(&untrusted, &p)
        .await
        .assert_error(401, "invalid_signature");
}

#[tokio::test]
async fn the_openapi_document_lists_the_project_endpoints() {
    let app = spawn_app().await;
    let doc = app.call("GET", "/openapi.json", None, None).await;
    for path in [
        "/v1/projects",
        "/v1/projects/{id}",
        "/v1/projects/{id}/rotate",
        "/v1/projects/{id}/secrets",
        "/v1/secrets",
        "/v1/secrets/{id}",
    ] {
        assert!(doc.body["paths"][path].is_object(), "{path} missing");
    }
}

/// The Python interpreter with `cryptography`: the SDK venv `.ci/run` prepares, else `python3`.
fn python_with_cryptography() -> Option<std::path::PathBuf> {
    let venv = std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cache/keystile-sdk-venv/bin/python"));
    let candidates = venv.into_iter().chain([std::path::PathBuf::from("python3")]);
    candidates.into_iter().find(|py| {
        std::process::Command::new(py)
            .args(["-c", "import cryptography.hazmat.primitives.asymmetric.ed25519"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[tokio::test]
async fn a_signature_made_by_an_independent_python_signer_verifies() {
    let Some(python) = python_with_cryptography() else {
        let reason = "no Python with the `cryptography` package (run .ci/run to create the venv)";
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "cannot run on CI: {reason}"
        );
        eprintln!("skipping the independent signer test: {reason}");
        return;
    };
    let app = spawn_app().await;
    let p = create_project(&app, &unique("py")).await;
    put_secret(&app, &p, "prod/eu west", "FROM_PY", "hello").await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/httpsig_sign.py");
    let url = app.url("/v1/secrets?env=prod%2Feu%20west");
    let out = std::process::Command::new(&python)
        .args([script, &p.name, &p.private_hex, "GET", &url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let headers: Value = serde_json::from_slice(&out.stdout).unwrap();
    let send = |headers: &Value| {
        let mut req = app.http.get(&url);
        for (k, v) in headers.as_object().unwrap() {
            req = req.header(k.as_str(), v.as_str().unwrap());
        }
        async move { answer(req.send().await.unwrap()).await }
    };
    let a = send(&headers).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body, json!({"FROM_PY": "hello"}));
    send(&headers).await.assert_error(401, "replayed_nonce");
}

// Multi-threaded: the CLI child is waited for synchronously while the gateway in this process
// answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keystile_run_gives_the_command_its_secrets_and_passes_its_exit_code_through() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("runner.key");
    let name = unique("runner");
    let cli = |args: &[&str], stdin: &str| {
        use std::io::Write as _;
        let mut child = std::process::Command::new(BIN)
            .args(args)
            .env("KEYSTILE_URL", app.url(""))
            .env("KEYSTILE_TOKEN", &app.admin_key)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = cli(
        &["project", "register", &name, "--key-file", key_file.to_str().unwrap()],
        "",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the private key file is private");
    }
    let out = cli(
        &["secret", "set", "GREETING", "--project", &name, "--env", "prod eu"],
        "hello from keystile\n",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed = cli(&["secret", "list", "--project", &name], "");
    assert!(!String::from_utf8_lossy(&listed.stdout).contains("hello from keystile"));

    let run = cli(
        &[
            "run",
            "--project",
            &name,
            "--env",
            "prod eu",
            "--key-file",
            key_file.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "printf '%s|%s' \"$GREETING\" \"$1\"; exit 7",
            "child",
            "arg one",
        ],
        "",
    );
    assert_eq!(String::from_utf8_lossy(&run.stdout), "hello from keystile|arg one");
    assert_eq!(run.status.code(), Some(7), "{}", String::from_utf8_lossy(&run.stderr));

    // A wrong key: `run` fails before starting anything.
    std::fs::write(dir.path().join("wrong.key"), hex::encode([7u8; 32])).unwrap();
    let wrong = cli(
        &[
            "run",
            "--project",
            &name,
            "--env",
            "prod eu",
            "--key-file",
            dir.path().join("wrong.key").to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "echo started",
        ],
        "",
    );
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("invalid_signature"));
    assert!(!String::from_utf8_lossy(&wrong.stdout).contains("started"));

    // Registering again refuses to overwrite the key file.
    let again = cli(
        &["project", "register", &name, "--key-file", key_file.to_str().unwrap()],
        "",
    );
    assert!(!again.status.success());
}

#[tokio::test]
async fn valid_signed_requests_are_rate_limited_per_project() {
    let app = spawn_app_with(AppOptions {
        limits: Some(keystile::config::LimitsConfig {
            management_per_minute: 3,
            ..Default::default()
        }),
        ..Default::default()
    })
    .await;
    let a = create_project(&app, &unique("busy")).await;
    let b = create_project(&app, &unique("quiet")).await;
    // Fixed windows on Unix minutes: start at the beginning of one.
    let clock = app.limiter.clock();
    clock.advance(std::time::Duration::from_millis(60_000 - clock.now_ms() % 60_000 + 1));
    for _ in 0..3 {
        assert_eq!(fetch(&app, &a.signer(), "production").await.status, 200);
    }
    let refused = fetch(&app, &a.signer(), "production").await;
    refused.assert_error(429, "rate_limited");
    assert!(refused.text.contains("project"), "{}", refused.text);
    assert_eq!(
        fetch(&app, &b.signer(), "production").await.status,
        200,
        "another project has its own budget"
    );
    clock.advance(std::time::Duration::from_secs(60));
    assert_eq!(
        fetch(&app, &a.signer(), "production").await.status,
        200,
        "the next minute"
    );
}

#[tokio::test]
async fn failed_signatures_count_against_the_client_address_and_are_audited() {
    let app = spawn_app_with(AppOptions {
        limits: Some(keystile::config::LimitsConfig {
            auth_failures_per_minute: 3,
            ..Default::default()
        }),
        ..Default::default()
    })
    .await;
    let p = create_project(&app, &unique("limited")).await;
    let stranger = Project {
        id: String::new(),
        name: p.name.clone(),
        private_hex: hex::encode([7u8; 32]),
    };
    for _ in 0..3 {
        fetch(&app, &stranger.signer(), "production")
            .await
            .assert_error(401, "invalid_signature");
    }
    // The address is now refused before any verification, even with the right key.
    let blocked = fetch(&app, &p.signer(), "production").await;
    blocked.assert_error(429, "rate_limited");
    // Each refusal is an `auth.failure` event (in the system chain: no tenant is proven).
    let db = crate::audit::database(&app).await;
    let events = db
        .list_audit(
            &keystile::audit::system_tenant(),
            &keystile::audit::AuditFilter {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let failures = events
        .iter()
        .filter(|e| e.event.action == "auth.failure" && e.event.outcome == "invalid_signature")
        .count();
    assert_eq!(failures, 3, "{events:?}");
}

#[tokio::test]
async fn a_secret_fetch_and_a_signed_write_are_audited_with_the_project_as_actor() {
    let app = spawn_app().await;
    let p = create_project(&app, &unique("audited")).await;
    assert_eq!(put_secret(&app, &p, "prod", "TOKEN", "audited-value").await.status, 200);
    assert_eq!(fetch(&app, &p.signer(), "prod").await.status, 200);
    let url = Url::parse(&app.url("/v1/secrets")).unwrap();
    let body = json!({"key": "OWN", "value": "own-value", "env": "prod"}).to_string();
    let signed = p.signer().sign("PUT", &url, Some(body.as_bytes()), now()).unwrap();
    let mut req = app.http.put(url.as_str()).body(body);
    for (k, v) in signed.pairs() {
        req = req.header(k, v);
    }
    assert_eq!(req.send().await.unwrap().status(), 200);

    let events = app.admin("GET", &format!("/v1/audit?project={}", p.id), None).await;
    assert_eq!(events.status, 200, "{}", events.text);
    let list = events.body["events"].as_array().unwrap();
    let fetch_event = list.iter().find(|e| e["action"] == "secret.fetch").expect(&events.text);
    assert_eq!(fetch_event["actor"], json!({"kind": "project", "id": p.id}));
    assert_eq!(
        fetch_event["target_path"], "/v1/secrets?env=prod",
        "the environment is a name, not a secret"
    );
    assert_eq!(fetch_event["outcome"], "ok");
    let write_event = list
        .iter()
        .find(|e| e["action"] == "PUT /v1/secrets")
        .expect(&events.text);
    assert_eq!(write_event["actor"], json!({"kind": "project", "id": p.id}));
    assert!(!events.text.contains("audited-value") && !events.text.contains("own-value"));
    let verify = app.admin("GET", "/v1/audit/verify", None).await;
    assert_eq!(verify.body["ok"], true, "{}", verify.text);
}
