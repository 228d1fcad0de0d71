//! The SSRF guard end to end (SPEC S6, shared/SSRF_CASES.md): names served by a DNS server on
//! loopback, DNS rebinding, encoded loopback literals, the gateway's own address, environment
//! proxies.
//!
//! Safety: every target here is on 127.0.0.0/8 or ::1, or resolves there through the test DNS
//! server, so even a guard that let everything through could send nothing elsewhere. The
//! non-loopback cases are classification tests in `src/proxy/ssrf.rs`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use crate::dns::DnsServer;
use crate::helpers::*;

const TWO: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const THREE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

/// A TCP listener that counts the connections it accepts and answers each with a small HTTP
/// 200 and `Connection: close` (so no connection is pooled for a later request).
struct Listener {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

impl Listener {
    async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65_536 {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let body = format!("{{\"reached\":\"{addr}\"}}");
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                         connection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(reply.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Ok(Self { addr, accepted })
    }

    fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Listeners on `a:P` and `b:P`, the same free port P.
async fn same_port_pair(a: Ipv4Addr, b: Ipv4Addr) -> (Listener, Listener) {
    for _ in 0..50 {
        let first = Listener::bind(SocketAddr::from((a, 0))).await.unwrap();
        if let Ok(second) = Listener::bind(SocketAddr::from((b, first.addr.port()))).await {
            return (first, second);
        }
    }
    panic!("no port free on both {a} and {b}");
}

/// A gateway resolving names with a fresh test DNS server.
async fn app_with_dns() -> (TestApp, DnsServer) {
    let dns = DnsServer::start().await;
    let app = spawn_app_with_dns(AppOptions::default(), dns.nameservers()).await;
    (app, dns)
}

/// A credential for plain-http `hosts` with this `allow_private_network` setting.
async fn credential(app: &TestApp, alias: &str, hosts: &[&str], private: Value) {
    app.create_credential(json!({
        "alias": alias,
        "type": "api_key",
        "data": {"key": "ssrf-test-secret"},
        "policy": {"allowed_hosts": hosts, "allow_http": true, "allow_private_network": private}
    }))
    .await;
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_with_nothing_sent() {
    let (app, dns) = app_with_dns().await;
    let upstream = Listener::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let port = upstream.addr.port();
    dns.add("loop.test", &[Ipv4Addr::LOCALHOST]);
    let hosts = ["loop.test", "localhost"];
    credential(&app, "public-only", &hosts, json!(false)).await;
    for target in [
        format!("http://loop.test:{port}/x"),
        format!("http://LOOP.test:{port}/x"),
        format!("http://loop.test.:{port}/x"),
        format!("http://localhost:{port}/x"),
        format!("http://LOCALHOST:{port}/x"),
    ] {
        let a = app.proxy(&app.admin_key, "public-only", "GET", &target).await;
        a.assert_error(403, "ssrf_blocked");
    }
    assert!(
        dns.a_queries("loop.test") >= 1,
        "resolved by the configured name server"
    );
    assert_eq!(upstream.connections(), 0, "nothing reached the upstream");

    // The same name reaches the upstream once the policy allows private addresses.
    credential(&app, "local", &hosts, json!(true)).await;
    let a = app
        .proxy(&app.admin_key, "local", "GET", &format!("http://loop.test:{port}/x"))
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(upstream.connections(), 1);
}

#[tokio::test]
async fn an_unknown_name_is_an_upstream_error_not_a_system_lookup() {
    let (app, dns) = app_with_dns().await;
    credential(&app, "svc", &["missing.test"], json!(true)).await;
    let a = app.proxy(&app.admin_key, "svc", "GET", "http://missing.test:1/x").await;
    a.assert_error(502, "upstream_error");
    assert!(dns.a_queries("missing.test") >= 1);
}

#[tokio::test]
async fn a_name_with_any_refused_record_is_refused_whole() {
    let (app, dns) = app_with_dns().await;
    let (two, three) = same_port_pair(TWO, THREE).await;
    let port = two.addr.port();
    dns.add("mixed.test", &[TWO, THREE]);
    dns.add("mixed-reversed.test", &[THREE, TWO]);
    dns.add("two.test", &[TWO]);
    let hosts = ["mixed.test", "mixed-reversed.test", "two.test"];
    credential(&app, "only-two", &hosts, json!(["127.0.0.2/32"])).await;
    for name in ["mixed.test", "mixed-reversed.test"] {
        let a = app
            .proxy(&app.admin_key, "only-two", "GET", &format!("http://{name}:{port}/x"))
            .await;
        a.assert_error(403, "ssrf_blocked");
    }
    assert_eq!((two.connections(), three.connections()), (0, 0), "nothing sent");

    let a = app
        .proxy(&app.admin_key, "only-two", "GET", &format!("http://two.test:{port}/x"))
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!((two.connections(), three.connections()), (1, 0));
}

#[tokio::test]
async fn dns_rebinding_cannot_switch_the_address_after_the_check() {
    let (app, dns) = app_with_dns().await;
    let (two, three) = same_port_pair(TWO, THREE).await;
    let port = two.addr.port();
    dns.add_rebinding("rebind.test", TWO, THREE);
    credential(&app, "only-two", &["rebind.test"], json!(["127.0.0.2/32"])).await;
    let target = format!("http://rebind.test:{port}/x");

    // First lookup: 127.0.0.2, checked and dialled; 127.0.0.3 never sees a connection.
    let a = app.proxy(&app.admin_key, "only-two", "GET", &target).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["reached"], two.addr.to_string());
    assert_eq!((two.connections(), three.connections()), (1, 0));
    assert_eq!(dns.a_queries("rebind.test"), 1, "one lookup per connection");

    // The name now answers 127.0.0.3: refused, still nothing on 127.0.0.3.
    let a = app.proxy(&app.admin_key, "only-two", "GET", &target).await;
    a.assert_error(403, "ssrf_blocked");
    assert!(dns.a_queries("rebind.test") >= 2);
    assert_eq!((two.connections(), three.connections()), (1, 0));
}

/// Loopback written every other way (the plain ones are in `proxy.rs`).
#[tokio::test]
async fn encoded_loopback_literals_are_refused_with_nothing_sent() {
    let app = spawn_app().await;
    let upstream = Listener::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let port = upstream.addr.port();
    // Catch anything dialled at the other loopback spellings too, where they can be bound.
    let mut others = Vec::new();
    for ip in ["127.127.127.127", "::1"] {
        if let Ok(l) = Listener::bind(SocketAddr::new(ip.parse::<IpAddr>().unwrap(), port)).await {
            others.push(l);
        }
    }
    let hosts = [
        "127.0.0.1",
        "127.127.127.127",
        "0.0.0.0",
        "::1",
        "::",
        "::ffff:127.0.0.1",
    ];
    credential(&app, "public-only", &hosts, json!(false)).await;
    credential(&app, "only-two", &hosts, json!(["127.0.0.2/32"])).await;
    let targets = [
        format!("http://017700000001:{port}/x"),
        format!("http://0177.0x0.0x0.0x1:{port}/x"),
        format!("http://0x7f.1:{port}/x"),
        format!("http://0X7F000001:{port}/x"),
        format!("http://127.127.127.127:{port}/x"),
        format!("http://[::ffff:127.0.0.1]:{port}/x"),
        format!("http://[::ffff:7f00:1]:{port}/x"),
        format!("http://[0000::1]:{port}/x"),
        format!("http://[::]:{port}/x"),
        format!("http://0.0.0.0:{port}/x"),
        format!("http://0:{port}/x"),
    ];
    for alias in ["public-only", "only-two"] {
        for target in &targets {
            let a = app.proxy(&app.admin_key, alias, "GET", target).await;
            assert_eq!(
                (a.status, a.code()),
                (403, "ssrf_blocked"),
                "{alias} {target}: {}",
                a.text
            );
        }
    }
    assert_eq!(upstream.connections(), 0, "nothing reached 127.0.0.1");
    for l in &others {
        assert_eq!(l.connections(), 0, "nothing reached {}", l.addr);
    }
}

/// The gateway's own address and port, however written, even with every private address
/// allowed (the plain `127.0.0.1:port` is in `proxy.rs`).
#[tokio::test]
async fn the_gateway_itself_is_refused_however_it_is_written() {
    let app = spawn_app().await;
    let port = app.addr.port();
    let hosts = ["127.0.0.1", "0.0.0.0", "::", "::ffff:127.0.0.1"];
    credential(&app, "anything", &hosts, json!(true)).await;
    for target in [
        format!("http://0.0.0.0:{port}/health"),
        format!("http://0:{port}/health"),
        format!("http://2130706433:{port}/health"),
        format!("http://[::ffff:127.0.0.1]:{port}/health"),
        format!("http://[::]:{port}/health"),
    ] {
        let a = app.proxy(&app.admin_key, "anything", "GET", &target).await;
        assert_eq!((a.status, a.code()), (403, "ssrf_blocked"), "{target}: {}", a.text);
    }
}

/// Runs [`env_proxy_child`] in a child process whose environment names a proxy on loopback
/// (upper and lower case, `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`): the gateway must go
/// straight to the upstream, and the proxy must see no connection.
#[tokio::test]
async fn environment_proxy_variables_are_ignored() {
    let proxy = Listener::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let url = format!("http://{}", proxy.addr);
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap());
    child
        .args(["ssrf::env_proxy_child", "--exact", "--ignored", "--test-threads=1"])
        .env("KEYSTILE_TEST_ENV_PROXY_CHILD", "1")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .kill_on_drop(true);
    for var in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
        child.env(var, &url).env(var.to_ascii_lowercase(), &url);
    }
    // Awaited (not blocking), so this runtime keeps accepting on the proxy meanwhile.
    let out = tokio::time::timeout(Duration::from_secs(120), child.output())
        .await
        .expect("child finishes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "the child ran the test:\n{stdout}");
    assert_eq!(proxy.connections(), 0, "the proxy was never used");
}

#[tokio::test]
#[ignore = "run by environment_proxy_variables_are_ignored, in a child process with proxy variables set"]
async fn env_proxy_child() {
    if std::env::var_os("KEYSTILE_TEST_ENV_PROXY_CHILD").is_some() {
        assert!(std::env::var_os("HTTP_PROXY").is_some() && std::env::var_os("all_proxy").is_some());
    }
    let app = spawn_app().await;
    let upstream = Listener::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    credential(&app, "local", &["127.0.0.1"], json!(true)).await;
    let a = app
        .proxy(&app.admin_key, "local", "GET", &format!("http://{}/x", upstream.addr))
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(upstream.connections(), 1, "the gateway dialled the upstream itself");
}
