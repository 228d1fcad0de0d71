//! Transport through the path proxy: upstream TLS with an extra CA, HTTP/2 to upstreams,
//! responses streamed (and redacted) without buffering, request bodies streamed upstream, and the
//! idle timeout on a stalled upstream body. Everything on 127.0.0.1, every test time-bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use futures_util::stream;
use keystile::config::ProxyConfig;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::helpers::*;
use crate::upstreams::*;

/// A credential for the TLS upstream: HTTPS only (no `allow_http`), loopback allowed.
fn tls_credential(alias: &str, secret: &str) -> Value {
    json!({
        "alias": alias,
        "type": "api_key",
        "data": {"key": secret},
        "policy": {"allowed_hosts": ["127.0.0.1"], "allow_private_network": true}
    })
}

/// A path-proxy request, not yet sent.
fn through(app: &TestApp, key: &str, alias: &str, method: &str, target: &str) -> reqwest::RequestBuilder {
    app.http
        .request(method.parse().unwrap(), app.url(&format!("/{target}")))
        .bearer_auth(key)
        .header("x-keystile-credential", alias)
}

/// A streaming upstream, an `api_key` credential `alias` reaching it, and an execute-only key.
async fn streaming_setup(app: &TestApp, alias: &str, secret: &str) -> (StreamingUpstream, String) {
    let upstream = StreamingUpstream::start().await;
    app.create_credential(local_credential(alias, "api_key", json!({"key": secret})))
        .await;
    let (_, _, key) = app.key_with(&["execute"], &["*"]).await;
    (upstream, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_upstream_signed_by_the_extra_ca_is_reached_over_http2_with_the_credential_injected() {
    bounded(30, async {
        let ca = TestCa::new();
        let upstream = TlsUpstream::start(&ca).await;
        let app = spawn_app_with(AppOptions {
            proxy: Some(ProxyConfig {
                extra_ca_file: Some(ca.ca_pem.clone()),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
        let secret = "tls-secret-0123456789";
        app.create_credential(tls_credential("tls", secret)).await;
        let (_, _, key) = app.key_with(&["execute"], &["*"]).await;

        let a = app
            .proxy(&key, "tls", "GET", &format!("{}/v1/hello?x=1", upstream.url()))
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.body["version"], "HTTP/2.0", "{}", a.text);
        let resp = through(&app, &key, "tls", "POST", &format!("{}/v1/upload", upstream.url()))
            .body("payload-over-h2")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);

        let requests = upstream.requests();
        assert_eq!(requests.len(), 2, "{requests:?}");
        for (version, got) in &requests {
            assert_eq!(*version, http::Version::HTTP_2, "ALPN chose h2");
            assert_eq!(got.header("authorization"), Some(format!("Bearer {secret}")));
            assert!(
                !got.everything().contains("kst_"),
                "a Keystile key reached upstream: {got:?}"
            );
            assert!(!got.everything().to_lowercase().contains("x-keystile"), "{got:?}");
        }
        assert!(requests[0].1.uri.ends_with("/v1/hello?x=1"), "{}", requests[0].1.uri);
        assert_eq!(requests[1].1.method, "POST");
        assert_eq!(&requests[1].1.body[..], b"payload-over-h2");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_extra_ca_a_tls_upstream_is_a_502_and_its_handler_is_never_invoked() {
    bounded(30, async {
        let ca = TestCa::new();
        let upstream = TlsUpstream::start(&ca).await;
        let app = spawn_app().await;
        app.create_credential(tls_credential("tls", "tls-secret-0123456789"))
            .await;
        let a = app
            .proxy(&app.admin_key, "tls", "GET", &format!("{}/v1/hello", upstream.url()))
            .await;
        a.assert_error(502, "upstream_error");
        assert!(
            upstream.connections.load(Ordering::SeqCst) >= 1,
            "the gateway did connect: the refusal is the certificate, not the network"
        );
        assert!(upstream.requests().is_empty(), "the upstream handler was never invoked");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_sent_events_reach_the_caller_one_by_one_as_the_upstream_sends_them() {
    bounded(30, async {
        let app = spawn_app().await;
        let (upstream, key) = streaming_setup(&app, "sse", "sse-secret-0123456789").await;

        let started = Instant::now();
        let resp = through(
            &app,
            &key,
            "sse",
            "GET",
            &format!("{}/sse?count=5&pause_ms=200", upstream.url()),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let got = read_events(resp).await;
        assert_eq!(got.texts(), ["event 0", "event 1", "event 2", "event 3", "event 4"]);
        for k in 0..5 {
            let label = format!("event {k}");
            let (sent, arrived) = (upstream.sent_at(&label), got.at(&label));
            println!(
                "sse {label}: sent at {:?}, arrived at {:?} ({:?} after it was sent)",
                sent - started,
                arrived - started,
                arrived.saturating_duration_since(sent)
            );
            if k < 4 {
                let next = upstream.sent_at(&format!("event {}", k + 1));
                assert!(
                    arrived < next,
                    "{label} arrived {:?} after the upstream sent the next one: the gateway buffers",
                    arrived - next
                );
            }
        }
        assert!(
            got.at("event 0") < upstream.sent_at("event 4"),
            "the first event arrives before the stream is over"
        );
        assert!(got.chunks >= 5, "one chunk per event at least, got {}", got.chunks);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_to_first_byte_direct_and_through_the_gateway_is_measured() {
    bounded(60, async {
        let app = spawn_app().await;
        let (upstream, key) = streaming_setup(&app, "sse", "sse-secret-0123456789").await;
        let direct_client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let target = format!("{}/sse?count=1", upstream.url());

        async fn first_byte(req: reqwest::RequestBuilder) -> Duration {
            let start = Instant::now();
            let mut resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 200);
            let first = resp.chunk().await.unwrap().expect("a first chunk");
            let ttfb = start.elapsed();
            assert!(!first.is_empty());
            while resp.chunk().await.unwrap().is_some() {}
            ttfb
        }

        // Warm both paths (connection pools, the gateway's key cache) before measuring.
        first_byte(direct_client.get(&target)).await;
        first_byte(through(&app, &key, "sse", "GET", &target)).await;
        let (mut direct, mut gateway) = (Vec::new(), Vec::new());
        for _ in 0..20 {
            direct.push(first_byte(direct_client.get(&target)).await);
            gateway.push(first_byte(through(&app, &key, "sse", "GET", &target)).await);
        }
        println!(
            "time to first byte, median of 20: direct {:?}, through the gateway {:?}",
            median(direct),
            median(gateway)
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echoed_secret_split_across_chunks_is_redacted_and_events_still_arrive_incrementally() {
    bounded(30, async {
        let app = spawn_app().await;
        let secret = "sse-secret-0123456789abcdef";
        let (upstream, key) = streaming_setup(&app, "sse", secret).await;

        let resp = through(
            &app,
            &key,
            "sse",
            "GET",
            &format!("{}/echo-split?pause_ms=200", upstream.url()),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(resp.status(), 200);
        let got = read_events(resp).await;
        let body = String::from_utf8_lossy(&got.body).into_owned();
        assert!(!body.contains(secret), "the secret reached the caller: {body}");
        assert!(
            !body.contains(&secret[..secret.len() / 2]),
            "half the secret reached the caller: {body}"
        );
        assert_eq!(
            got.texts(),
            ["event 0", "echo=[REDACTED]", "event 3", "event 4"],
            "{body}"
        );
        // Each event arrives before the upstream sends the chunk after it; the echo is complete
        // once its tail has been sent.
        assert!(got.at("event 0") < upstream.sent_at("echo head"));
        assert!(got.at("echo=[REDACTED]") < upstream.sent_at("event 3"));
        assert!(got.at("event 3") < upstream.sent_at("event 4"));
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_chunked_request_body_streams_to_the_upstream_intact() {
    const CHUNK: usize = 64 * 1024;
    const CHUNKS: usize = 128; // 8 MiB
    const HALF: u64 = (CHUNK * CHUNKS / 2) as u64;
    fn chunk(i: usize) -> Bytes {
        (0..CHUNK).map(|j| ((i * 7919 + j * 31) % 251) as u8).collect()
    }

    bounded(60, async {
        let app = spawn_app_with(AppOptions {
            proxy: Some(ProxyConfig {
                max_request_body_bytes: 16 * 1024 * 1024,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
        let (upstream, key) = streaming_setup(&app, "sink", "sink-secret-0123456789").await;

        let mut hash = Sha256::new();
        for i in 0..CHUNKS {
            hash.update(chunk(i));
        }
        let expected = hex::encode(hash.finalize());

        // Halfway through, the client waits until the upstream has received a good part of
        // what was sent so far: a gateway that buffered the whole body would never let it.
        let progress = upstream.sink_progress.clone();
        let overlapped = Arc::new(AtomicBool::new(false));
        let flag = overlapped.clone();
        let body = stream::unfold(0usize, move |i| {
            let (progress, flag) = (progress.clone(), flag.clone());
            async move {
                if i == CHUNKS {
                    return None;
                }
                if i == CHUNKS / 2 {
                    let deadline = Instant::now() + Duration::from_secs(10);
                    while Instant::now() < deadline {
                        if progress.load(Ordering::SeqCst) >= HALF / 2 {
                            flag.store(true, Ordering::SeqCst);
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                Some((Ok::<_, std::io::Error>(chunk(i)), i + 1))
            }
        });
        let resp = through(&app, &key, "sink", "POST", &format!("{}/sink", upstream.url()))
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await
            .unwrap();
        let a = answer(resp).await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.body["len"], (CHUNK * CHUNKS) as u64);
        assert_eq!(a.body["sha256"], expected);
        let reports = upstream.sinks.lock().unwrap().clone();
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].len, (CHUNK * CHUNKS) as u64);
        assert_eq!(reports[0].sha256, expected);
        assert!(
            reports[0].headers.get("content-length").is_none(),
            "the body was streamed, not measured first"
        );
        assert!(
            overlapped.load(Ordering::SeqCst),
            "the upstream received the first half before the client sent the second"
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_goes_idle_mid_body_ends_the_callers_body_instead_of_hanging() {
    bounded(30, async {
        let app = spawn_app_with(AppOptions {
            proxy: Some(ProxyConfig {
                idle_timeout_ms: 300,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
        let (upstream, key) = streaming_setup(&app, "stall", "stall-secret-0123456789").await;

        let mut resp = through(&app, &key, "stall", "GET", &format!("{}/stall", upstream.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let first = tokio::time::timeout(Duration::from_secs(2), resp.chunk())
            .await
            .expect("the first chunk arrives at once")
            .expect("the first chunk is not an error")
            .expect("there is a first chunk");
        assert_eq!(&first[..], b"data: first\n\n");

        let waiting = Instant::now();
        let rest = tokio::time::timeout(Duration::from_secs(2), async {
            let mut rest = Vec::new();
            loop {
                match resp.chunk().await {
                    Ok(Some(c)) => rest.extend_from_slice(&c),
                    Ok(None) => return (rest, "ended".to_owned()),
                    Err(e) => return (rest, format!("error: {e}")),
                }
            }
        })
        .await;
        let (rest, how) = rest.expect("the caller's body ends within 2 s of the upstream going idle");
        println!(
            "after the idle timeout the caller's body {how} ({:?})",
            waiting.elapsed()
        );
        assert!(
            waiting.elapsed() >= Duration::from_millis(150),
            "the body ended by the idle timeout, not at once"
        );
        assert!(
            rest.is_empty(),
            "nothing after the stall: {:?}",
            String::from_utf8_lossy(&rest)
        );
    })
    .await
}
