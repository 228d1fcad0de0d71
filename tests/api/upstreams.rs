//! Upstreams for the streaming tests, all on 127.0.0.1:0: a TLS upstream (rustls, ALPN `h2` +
//! `http/1.1`, hyper-util's auto builder) with a certificate from a test CA, and a plain-HTTP
//! upstream that streams (server-sent events, a stalling body) and sinks large request bodies.
//! Plus a client-side reader that timestamps each event as it arrives.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Query, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::stream;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::helpers::Received;

/// Fails the test instead of hanging when `fut` takes longer than `secs`.
pub async fn bounded<T>(secs: u64, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .unwrap_or_else(|_| panic!("test did not finish within {secs} s"))
}

/// A throwaway CA and a server certificate it signed for `127.0.0.1` and `localhost`.
pub struct TestCa {
    /// The CA certificate as PEM, for `proxy.extra_ca_file`.
    pub ca_pem: PathBuf,
    server: Arc<rustls::ServerConfig>,
    _dir: tempfile::TempDir,
}

impl TestCa {
    pub fn new() -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
            KeyUsagePurpose, SanType,
        };
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "keystile test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            SanType::DnsName("localhost".try_into().unwrap()),
        ];
        params.distinguished_name.push(DnType::CommonName, "localhost");
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = params.signed_by(&server_key, &issuer).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let ca_pem = dir.path().join("ca.pem");
        std::fs::write(&ca_pem, ca_cert.pem()).unwrap();

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
        let chain: Vec<CertificateDer<'static>> = vec![server_cert.der().clone()];
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Self {
            ca_pem,
            server: Arc::new(server),
            _dir: dir,
        }
    }
}

/// An HTTPS upstream: HTTP/2 or HTTP/1.1 by ALPN. Records every request with its HTTP version
/// and answers 200 JSON.
pub struct TlsUpstream {
    pub addr: SocketAddr,
    /// TCP connections accepted (a refused TLS handshake still counts here).
    pub connections: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<(http::Version, Received)>>>,
}

impl TlsUpstream {
    pub async fn start(ca: &TestCa) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(ca.server.clone());
        let connections = Arc::new(AtomicUsize::new(0));
        let received: Arc<Mutex<Vec<(http::Version, Received)>>> = Arc::default();
        let (count, log) = (connections.clone(), received.clone());
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                count.fetch_add(1, Ordering::SeqCst);
                let (acceptor, log) = (acceptor.clone(), log.clone());
                tokio::spawn(async move {
                    // A client that refuses our certificate ends here.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req| record_tls(log.clone(), req));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            connections,
            received,
        }
    }

    /// `https://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// What the handler has seen so far, with the HTTP version of each request.
    pub fn requests(&self) -> Vec<(http::Version, Received)> {
        self.received.lock().unwrap().clone()
    }
}

async fn record_tls(
    log: Arc<Mutex<Vec<(http::Version, Received)>>>,
    req: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let answer = json!({"ok": true, "path": parts.uri.path(), "version": format!("{:?}", parts.version)});
    log.lock().unwrap().push((
        parts.version,
        Received {
            method: parts.method.to_string(),
            uri: parts.uri.to_string(),
            headers: parts.headers,
            body,
        },
    ));
    let mut resp = http::Response::new(Full::new(Bytes::from(answer.to_string())));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// What `/sink` measured of one request body.
#[derive(Debug, Clone)]
pub struct SinkReport {
    pub len: u64,
    pub sha256: String,
    pub headers: http::HeaderMap,
}

/// A plain-HTTP upstream that streams:
///
/// - `GET /sse?count=N&pause_ms=P` — `data: event K\n\n` for K in 0..N, each its own flushed
///   chunk, P ms apart;
/// - `GET /echo-split?pause_ms=P` — events with the `Authorization` bearer secret echoed in the
///   third one, split across two chunks sent P ms apart;
/// - `GET /stall` — one event, then 3 s of silence, then `data: late\n\n`;
/// - `POST /sink` — reads the body as it comes, counting bytes in `sink_progress`, and answers
///   its length and SHA-256.
///
/// Every chunk sent is recorded in `sent` with the instant it was handed to the server.
pub struct StreamingUpstream {
    pub addr: SocketAddr,
    pub sent: Arc<Mutex<Vec<(String, Instant)>>>,
    pub sink_progress: Arc<AtomicU64>,
    pub sinks: Arc<Mutex<Vec<SinkReport>>>,
}

#[derive(serde::Deserialize)]
struct SseParams {
    #[serde(default = "five")]
    count: usize,
    #[serde(default)]
    pause_ms: u64,
}

fn five() -> usize {
    5
}

impl StreamingUpstream {
    pub async fn start() -> Self {
        let sent: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
        let sink_progress = Arc::new(AtomicU64::new(0));
        let sinks: Arc<Mutex<Vec<SinkReport>>> = Arc::default();
        let (s1, s2, s3) = (sent.clone(), sent.clone(), sent.clone());
        let (progress, reports) = (sink_progress.clone(), sinks.clone());
        let app = axum::Router::new()
            .route(
                "/sse",
                get(move |Query(p): Query<SseParams>| async move {
                    let chunks = (0..p.count)
                        .map(|k| {
                            let text = format!("data: event {k}\n\n");
                            let pause = if k == 0 { 0 } else { p.pause_ms };
                            (Duration::from_millis(pause), format!("event {k}"), text.into_bytes())
                        })
                        .collect();
                    sse(s1.clone(), chunks)
                }),
            )
            .route(
                "/echo-split",
                get(move |Query(p): Query<SseParams>, headers: http::HeaderMap| async move {
                    let secret = headers
                        .get(http::header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.strip_prefix("Bearer "))
                        .unwrap_or("")
                        .as_bytes()
                        .to_vec();
                    let (head, tail) = secret.split_at(secret.len() / 2);
                    let pause = Duration::from_millis(p.pause_ms);
                    let chunks = vec![
                        (Duration::ZERO, "event 0".to_owned(), b"data: event 0\n\n".to_vec()),
                        (
                            pause,
                            "echo head".to_owned(),
                            [b"data: echo=".as_slice(), head].concat(),
                        ),
                        (pause, "echo tail".to_owned(), [tail, b"\n\n".as_slice()].concat()),
                        (pause, "event 3".to_owned(), b"data: event 3\n\n".to_vec()),
                        (pause, "event 4".to_owned(), b"data: event 4\n\n".to_vec()),
                    ];
                    sse(s2.clone(), chunks)
                }),
            )
            .route(
                "/stall",
                get(move || async move {
                    let chunks = vec![
                        (Duration::ZERO, "first".to_owned(), b"data: first\n\n".to_vec()),
                        (Duration::from_secs(3), "late".to_owned(), b"data: late\n\n".to_vec()),
                    ];
                    sse(s3.clone(), chunks)
                }),
            )
            .route(
                "/sink",
                post(move |req: Request| async move {
                    let (parts, mut body) = req.into_parts();
                    let mut hash = Sha256::new();
                    let mut len = 0u64;
                    while let Some(frame) = body.frame().await {
                        let Ok(frame) = frame else {
                            return (http::StatusCode::BAD_REQUEST, "body failed").into_response();
                        };
                        if let Ok(data) = frame.into_data() {
                            hash.update(&data);
                            len += data.len() as u64;
                            progress.fetch_add(data.len() as u64, Ordering::SeqCst);
                        }
                    }
                    let sha256 = hex::encode(hash.finalize());
                    reports.lock().unwrap().push(SinkReport {
                        len,
                        sha256: sha256.clone(),
                        headers: parts.headers,
                    });
                    axum::Json(json!({"len": len, "sha256": sha256})).into_response()
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            addr,
            sent,
            sink_progress,
            sinks,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// When the chunk with this label was sent (the latest such, if several requests sent it).
    pub fn sent_at(&self, label: &str) -> Instant {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|(l, _)| l == label)
            .map(|(_, at)| *at)
            .unwrap_or_else(|| panic!("the upstream never sent {label:?}"))
    }
}

/// A `text/event-stream` response sending each chunk after its pause, as its own frame.
fn sse(sent: Arc<Mutex<Vec<(String, Instant)>>>, chunks: Vec<(Duration, String, Vec<u8>)>) -> Response {
    let body = stream::unfold((chunks.into_iter(), sent), |(mut rest, sent)| async move {
        let (pause, label, bytes) = rest.next()?;
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        sent.lock().unwrap().push((label, Instant::now()));
        Some((Ok::<_, Infallible>(Bytes::from(bytes)), (rest, sent)))
    });
    (
        [
            (http::header::CONTENT_TYPE, "text/event-stream"),
            (http::header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// A response body read chunk by chunk: each complete server-sent event with the instant its
/// last byte arrived, and every byte received.
#[derive(Debug, Default)]
pub struct Arrivals {
    pub events: Vec<(String, Instant)>,
    pub body: Vec<u8>,
    /// How many chunks the body came in.
    pub chunks: usize,
}

impl Arrivals {
    /// When the event with this exact `data:` text arrived.
    #[track_caller]
    pub fn at(&self, data: &str) -> Instant {
        self.events
            .iter()
            .find(|(d, _)| d == data)
            .map(|(_, at)| *at)
            .unwrap_or_else(|| panic!("event {data:?} never arrived; got {:?}", self.texts()))
    }

    /// The events' `data:` texts in order.
    pub fn texts(&self) -> Vec<&str> {
        self.events.iter().map(|(d, _)| d.as_str()).collect()
    }
}

/// Reads the whole body, timestamping each `data: …\n\n` event as soon as it is complete.
pub async fn read_events(mut resp: reqwest::Response) -> Arrivals {
    let mut out = Arrivals::default();
    let mut pending = Vec::new();
    while let Some(chunk) = resp.chunk().await.expect("body streams without error") {
        let now = Instant::now();
        out.chunks += 1;
        out.body.extend_from_slice(&chunk);
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = pending.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&event[..end]).into_owned();
            let data = text.strip_prefix("data: ").unwrap_or(&text).to_owned();
            out.events.push((data, now));
        }
    }
    out
}

/// The median of some durations.
pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}
