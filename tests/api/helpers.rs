//! `spawn_app()`, a recording upstream, typed request helpers and log capture.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt as _;
use keystile::config::{Config, LimitsConfig, LogFormat, ProxyConfig};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

/// Everything the gateway logged during this test process.
static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_logs() -> Arc<Mutex<Vec<u8>>> {
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("keystile=debug,info")
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .try_init();
        buf
    })
    .clone()
}

/// All log output captured so far.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&init_logs().lock().unwrap()).into_owned()
}

/// One request as the upstream received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub uri: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Received {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap().to_owned())
    }

    /// Every header and the URI as one string, to search for things that must be absent.
    pub fn everything(&self) -> String {
        let mut s = format!("{} {}\n", self.method, self.uri);
        for (k, v) in &self.headers {
            s.push_str(&format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())));
        }
        s.push_str(&String::from_utf8_lossy(&self.body));
        s
    }
}

/// A real HTTP server on 127.0.0.1:0 that records what it receives.
/// `/status/{code}` answers that status; `/echo` echoes the request (headers in the body, the
/// `Authorization` value in `x-echo-auth`); `/redirect/{code}?to=URL` redirects; `/slow` waits
/// 3 s; anything else answers 200 JSON.
pub struct Upstream {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
}

impl Upstream {
    pub async fn start() -> Self {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let log = received.clone();
        let app = axum::Router::new().fallback(move |req: Request| {
            let log = log.clone();
            async move { record_and_answer(log, req).await }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, received }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What has been received so far.
    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

async fn record_and_answer(log: Arc<Mutex<Vec<Received>>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let uri_query = parts.uri.query().unwrap_or("").to_owned();
    log.lock().unwrap().push(Received {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers: parts.headers,
        body,
    });
    if let Some(code) = path.strip_prefix("/status/") {
        let status = http::StatusCode::from_u16(code.parse().unwrap_or(500)).unwrap();
        return (status, axum::Json(json!({"status": status.as_u16()}))).into_response();
    }
    if path == "/echo" {
        // Echoes what it received — including any injected secret — in a header and the body.
        let received = log.lock().unwrap().last().cloned().unwrap();
        let auth = received.header("authorization").unwrap_or_default();
        let headers: std::collections::BTreeMap<String, String> = received
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect();
        let mut resp = axum::Json(json!({"headers": headers, "query": received.uri})).into_response();
        resp.headers_mut().insert("x-echo-auth", auth.parse().unwrap());
        return resp;
    }
    if let Some(rest) = path.strip_prefix("/redirect/") {
        // /redirect/{code}?to=URL
        let to = url::form_urlencoded::parse(uri_query.as_bytes())
            .find(|(k, _)| k == "to")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        let status = http::StatusCode::from_u16(rest.parse().unwrap_or(302)).unwrap();
        return (status, [(http::header::LOCATION, to)]).into_response();
    }
    if path == "/gzip" {
        // Ignores `Accept-Encoding: identity`, as a misbehaving upstream might.
        return ([(http::header::CONTENT_ENCODING, "gzip")], vec![0x1f_u8, 0x8b, 8, 0]).into_response();
    }
    if path == "/slow" {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    axum::Json(json!({"ok": true, "path": path})).into_response()
}

/// A running gateway.
pub struct TestApp {
    pub addr: SocketAddr,
    pub admin_key: String,
    pub data_dir: PathBuf,
    pub http: reqwest::Client,
    /// The gateway's limiter (its clock can be advanced to reach the next window).
    pub limiter: std::sync::Arc<keystile::limits::Limiter>,
    /// The gateway's audit writer (to wait until its journal is indexed).
    pub audit: keystile::audit::AuditLog,
    /// Owned by the first gateway on a data directory; replicas share it.
    _dir: Option<tempfile::TempDir>,
}

/// Options for [`spawn_app_with`].
#[derive(Default)]
pub struct AppOptions {
    pub proxy: Option<ProxyConfig>,
    pub limits: Option<LimitsConfig>,
    /// `public_url` / `trusted_proxies` for signed requests.
    pub public: Option<keystile::config::PublicAddress>,
    /// Audit durability (default: the journal, as on the embedded default).
    pub audit: Option<keystile::config::AuditConfig>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(AppOptions::default()).await
}

pub async fn spawn_app_with(options: AppOptions) -> TestApp {
    spawn_app_with_dns(options, Vec::new()).await
}

/// [`spawn_app_with`], resolving target names with these name servers (`dns.nameservers`;
/// empty: the system resolver).
pub async fn spawn_app_with_dns(options: AppOptions, dns_nameservers: Vec<SocketAddr>) -> TestApp {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let config = test_config(data_dir.clone(), options, dns_nameservers);
    let prepared = keystile::server::prepare(&config).await.expect("gateway prepares");
    let admin_key = prepared
        .new_admin_key
        .expect("fresh store prints an admin key")
        .expose_secret()
        .to_owned();
    let limiter = prepared.state.limiter().clone();
    let audit = prepared.state.audit().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(keystile::server::run(listener, prepared.state, std::future::pending()));
    TestApp {
        addr,
        admin_key,
        data_dir,
        http: test_client(),
        limiter,
        audit,
        _dir: Some(dir),
    }
}

/// A test HTTP client: no environment proxies, no redirects.
pub fn test_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The configuration of a test gateway on `data_dir` (embedded SQLite, listening on port 0).
pub fn test_config(data_dir: PathBuf, options: AppOptions, dns_nameservers: Vec<SocketAddr>) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_path_buf(),
        database_url: None,
        master_key: None,
        master_key_file: None,
        admin_token: None,
        log_format: LogFormat::Text,
        log_level: "debug".into(),
        proxy: options.proxy.unwrap_or_default(),
        public: options.public.unwrap_or_default(),
        dns: keystile::config::DnsConfig {
            nameservers: dns_nameservers,
        },
        limits: options.limits.unwrap_or_default(),
        audit: options.audit.unwrap_or_default(),
        redis_url: None,
    }
}

/// A response reduced to what tests look at.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Answer {
    /// The S13 error code.
    pub fn code(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }

    /// Asserts an S13 error with this status and code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "body: {}", self.text);
        assert_eq!(self.code(), code, "body: {}", self.text);
        assert!(
            self.body["message"].is_string(),
            "S13 body has a message: {}",
            self.text
        );
        assert!(self.body["details"].is_object(), "S13 body has details: {}", self.text);
    }
}

impl TestApp {
    /// Another replica: a second gateway on the same database and master key, with its own
    /// caches.
    pub async fn replica(&self) -> TestApp {
        let config = test_config(self.data_dir.clone(), AppOptions::default(), Vec::new());
        let prepared = keystile::server::prepare(&config).await.expect("replica prepares");
        assert!(prepared.new_admin_key.is_none(), "the store already has its admin key");
        let limiter = prepared.state.limiter().clone();
        let audit = prepared.state.audit().clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(keystile::server::run(listener, prepared.state, std::future::pending()));
        TestApp {
            addr,
            admin_key: self.admin_key.clone(),
            data_dir: self.data_dir.clone(),
            http: test_client(),
            limiter,
            audit,
            _dir: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends a request with `key` (or none) and an optional JSON body.
    pub async fn call(&self, method: &str, path: &str, key: Option<&str>, body: Option<Value>) -> Answer {
        let mut req = self.http.request(method.parse().unwrap(), self.url(path));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        answer(req.send().await.unwrap()).await
    }

    /// As the bootstrap admin.
    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        self.call(method, path, Some(&self.admin_key.clone()), body).await
    }

    /// Creates a credential as admin and asserts it was created.
    pub async fn create_credential(&self, body: Value) -> Value {
        let a = self.admin("POST", "/v1/credentials", Some(body)).await;
        assert_eq!(a.status, 201, "{}", a.text);
        a.body
    }

    /// Creates a role and a key for it; returns (role id, key id, key).
    pub async fn key_with(&self, permissions: &[&str], scopes: &[&str]) -> (String, String, String) {
        let name = format!("role-{}", uuid::Uuid::new_v4().simple());
        let role = self
            .admin(
                "POST",
                "/v1/roles",
                Some(json!({"name": name, "permissions": permissions, "credential_scopes": scopes})),
            )
            .await;
        assert_eq!(role.status, 201, "{}", role.text);
        let role_id = role.body["id"].as_str().unwrap().to_owned();
        let key = self
            .admin(
                "POST",
                "/v1/keys",
                Some(json!({"name": "test key", "role_id": role_id})),
            )
            .await;
        assert_eq!(key.status, 201, "{}", key.text);
        (
            role_id,
            key.body["id"].as_str().unwrap().to_owned(),
            key.body["key"].as_str().unwrap().to_owned(),
        )
    }

    /// A path-proxy request: `{method} /{target}` with the credential header.
    pub async fn proxy(&self, key: &str, alias: &str, method: &str, target: &str) -> Answer {
        let req = self
            .http
            .request(method.parse().unwrap(), self.url(&format!("/{target}")))
            .bearer_auth(key)
            .header("x-keystile-credential", alias);
        answer(req.send().await.unwrap()).await
    }
}

pub async fn answer(resp: reqwest::Response) -> Answer {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer { status, body, text }
}

/// A credential body reaching the test upstream (loopback needs `allow_private_network`).
pub fn local_credential(alias: &str, kind: &str, data: Value) -> Value {
    json!({
        "alias": alias,
        "type": kind,
        "data": data,
        "policy": {"allowed_hosts": ["127.0.0.1"], "allow_http": true, "allow_private_network": true}
    })
}

/// Every byte under a directory, file by file.
pub fn files_under(dir: &std::path::Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The `keystile` binary, for tests that run it as a child process.
pub const BIN: &str = env!("CARGO_BIN_EXE_keystile");

/// A gateway child process, killed when dropped.
pub struct Gateway(pub std::process::Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TCP port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
