//! The one hardened outbound client (STYLE §15).
//!
//! - No environment proxies, no automatic redirects (hyper-util's legacy client does neither).
//! - A connector that resolves the target once, checks **every** resolved address with the SSRF
//!   guard and dials only checked addresses — IP-literal hosts included — so DNS rebinding
//!   cannot slip a second answer in between check and connect.
//! - One pooled client per private-network setting: a pooled connection is only ever reused
//!   by requests whose policy would have allowed the very address it is connected to.
//! - TLS by rustls with the system roots plus an optional extra CA bundle; HTTP/1.1 and HTTP/2.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use axum::body::Body;
use http::Uri;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use tokio::net::TcpStream;

use super::ssrf::check_addresses;
use crate::domain::policy::PrivateNetwork;

/// A boxed future, as the resolver returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Name resolution, behind a seam so tests (and `dns.nameservers`) can supply their own.
pub trait Resolve: Send + Sync + 'static {
    /// Every address `host` resolves to.
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> BoxFuture<'a, io::Result<Vec<IpAddr>>>;
}

/// The operating system's resolver.
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.map(|a| a.ip()).collect()) })
    }
}

/// The outbound resolver for `dns.nameservers`: those name servers, or (when empty) the
/// operating system's resolver.
pub fn resolver(nameservers: &[SocketAddr]) -> anyhow::Result<Arc<dyn Resolve>> {
    Ok(if nameservers.is_empty() {
        Arc::new(SystemResolver)
    } else {
        Arc::new(DnsResolver::new(nameservers)?)
    })
}

/// A stub resolver asking exactly the configured name servers (`dns.nameservers`): UDP, with
/// TCP when an answer is truncated or UDP fails; A and AAAA; no hosts file, no search domains.
/// (`localhost` names are answered by hickory itself with loopback, which the guard refuses.)
pub struct DnsResolver {
    inner: hickory_resolver::TokioResolver,
}

impl DnsResolver {
    /// A resolver for these name servers (at least one).
    pub fn new(nameservers: &[SocketAddr]) -> anyhow::Result<Self> {
        use hickory_resolver::config::{
            LookupIpStrategy, NameServerConfig, NameServerConfigGroup, ResolveHosts, ResolverConfig,
        };
        use hickory_resolver::proto::xfer::Protocol;

        anyhow::ensure!(!nameservers.is_empty(), "dns.nameservers is empty");
        let mut group = NameServerConfigGroup::with_capacity(nameservers.len() * 2);
        for addr in nameservers {
            group.push(NameServerConfig::new(*addr, Protocol::Udp));
            group.push(NameServerConfig::new(*addr, Protocol::Tcp));
        }
        let config = ResolverConfig::from_parts(None, Vec::new(), group);
        let mut builder = hickory_resolver::Resolver::builder_with_config(
            config,
            hickory_resolver::name_server::TokioConnectionProvider::default(),
        );
        let opts = builder.options_mut();
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        opts.use_hosts_file = ResolveHosts::Never;
        opts.try_tcp_on_error = true;
        Ok(Self { inner: builder.build() })
    }
}

impl Resolve for DnsResolver {
    fn resolve<'a>(&'a self, host: &'a str, _port: u16) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            // Fully qualified: no search domains are configured, and ndots must not matter.
            let name = if host.ends_with('.') {
                host.to_owned()
            } else {
                format!("{host}.")
            };
            let lookup = self.inner.lookup_ip(name).await.map_err(|e| {
                let kind = if e.is_no_records_found() {
                    io::ErrorKind::NotFound
                } else {
                    io::ErrorKind::Other
                };
                io::Error::new(kind, e)
            })?;
            Ok(lookup.iter().collect())
        })
    }
}

/// Why the connector refused or failed; found again by [`ConnectError::find`] in the error
/// chain the HTTP client returns.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    Blocked(String),
    #[error("connect timed out")]
    Timeout,
    #[error("cannot resolve host")]
    Resolve(#[source] io::Error),
    #[error("connection failed")]
    Io(#[source] io::Error),
}

impl ConnectError {
    /// Finds a `ConnectError` in an error's source chain.
    pub fn find<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a ConnectError> {
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = current {
            if let Some(found) = e.downcast_ref::<ConnectError>() {
                return Some(found);
            }
            current = e.source();
        }
        None
    }
}

/// What every connector shares.
struct Guard {
    resolver: Arc<dyn Resolve>,
    /// The gateway's own listening addresses, always refused (no request loops).
    own_addrs: RwLock<Vec<SocketAddr>>,
    connect_timeout: Duration,
}

impl Guard {
    /// Applies [`check_addresses`] with the gateway's current listening addresses.
    fn check(&self, addrs: &[IpAddr], port: u16, allow: &PrivateNetwork) -> Result<(), ConnectError> {
        let own = self.own_addrs.read().unwrap_or_else(|e| e.into_inner());
        check_addresses(addrs, port, allow, &own).map_err(ConnectError::Blocked)
    }
}

/// Where the connector is asked to dial: an IP literal (used as is, never resolved) or a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialHost {
    Ip(IpAddr),
    Name(String),
}

/// The host and port the connector dials for `uri` (the default port of its scheme when none
/// is given). Pure: nothing is resolved.
pub fn dial_target(uri: &Uri) -> Result<(DialHost, u16), String> {
    let host = uri.host().ok_or("target has no host")?;
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let host = match bare.parse::<IpAddr>() {
        Ok(ip) => DialHost::Ip(ip),
        Err(_) => DialHost::Name(bare.to_owned()),
    };
    Ok((host, port))
}

/// A connector that dials only addresses the guard approved under one private-network setting.
#[derive(Clone)]
pub struct GuardedConnector {
    guard: Arc<Guard>,
    allow: PrivateNetwork,
}

impl tower::Service<Uri> for GuardedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = ConnectError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let guard = self.guard.clone();
        let allow = self.allow.clone();
        Box::pin(async move {
            let (host, port) = dial_target(&uri).map_err(ConnectError::Blocked)?;
            // Resolved once; the addresses checked here are the very ones dialled below.
            let addrs = match host {
                DialHost::Ip(ip) => vec![ip],
                DialHost::Name(name) => guard
                    .resolver
                    .resolve(&name, port)
                    .await
                    .map_err(ConnectError::Resolve)?,
            };
            if addrs.is_empty() {
                return Err(ConnectError::Resolve(io::Error::new(
                    io::ErrorKind::NotFound,
                    "no addresses",
                )));
            }
            // A name whose records include any refused address is refused whole.
            guard.check(&addrs, port, &allow)?;
            let mut last = None;
            for ip in addrs {
                let attempt = tokio::time::timeout(guard.connect_timeout, TcpStream::connect((ip, port))).await;
                match attempt {
                    Ok(Ok(stream)) => {
                        let _ = stream.set_nodelay(true);
                        return Ok(TokioIo::new(stream));
                    }
                    Ok(Err(e)) => last = Some(ConnectError::Io(e)),
                    Err(_) => last = Some(ConnectError::Timeout),
                }
            }
            Err(last.unwrap_or(ConnectError::Timeout))
        })
    }
}

/// Bounds the whole connect — resolution, TCP and the TLS handshake — by the connect
/// timeout, so an upstream that accepts TCP but stalls the handshake cannot hold a request
/// until the first-byte timeout.
#[derive(Clone)]
pub struct TimedConnector {
    inner: HttpsConnector<GuardedConnector>,
    timeout: Duration,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower::Service<Uri> for TimedConnector {
    type Response = <HttpsConnector<GuardedConnector> as tower::Service<Uri>>::Response;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(result) => result,
                Err(_) => Err(Box::new(ConnectError::Timeout) as BoxError),
            }
        })
    }
}

/// The pooled HTTP client type.
pub type HttpClient = Client<TimedConnector, Body>;

/// The outbound side of the gateway.
pub struct Outbound {
    guard: Arc<Guard>,
    tls: Arc<rustls::ClientConfig>,
    clients: RwLock<HashMap<PrivateNetwork, HttpClient>>,
}

impl Outbound {
    /// Builds the outbound client: system roots plus `extra_ca` (PEM), the given resolver.
    pub fn new(resolver: Arc<dyn Resolve>, connect_timeout: Duration, extra_ca: Option<&Path>) -> anyhow::Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        if let Some(path) = extra_ca {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .with_context(|| format!("cannot read CA bundle {}", path.display()))?
                .collect::<Result<_, _>>()
                .with_context(|| format!("invalid PEM in CA bundle {}", path.display()))?;
            for cert in certs {
                roots
                    .add(cert)
                    .with_context(|| format!("invalid certificate in {}", path.display()))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS configuration")?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            guard: Arc::new(Guard {
                resolver,
                own_addrs: RwLock::new(Vec::new()),
                connect_timeout,
            }),
            tls: Arc::new(tls),
            clients: RwLock::new(HashMap::new()),
        })
    }

    /// Records the gateway's own listening address, which is always refused as a target.
    pub fn add_own_address(&self, addr: SocketAddr) {
        self.guard
            .own_addrs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(addr);
    }

    /// The pooled client for a private-network setting.
    pub fn client(&self, allow: &PrivateNetwork) -> HttpClient {
        if let Some(c) = self.clients.read().unwrap_or_else(|e| e.into_inner()).get(allow) {
            return c.clone();
        }
        let connector = GuardedConnector {
            guard: self.guard.clone(),
            allow: allow.clone(),
        };
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*self.tls).clone())
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(connector);
        let timed = TimedConnector {
            inner: https,
            timeout: self.guard.connect_timeout,
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .build(timed);
        self.clients
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(allow.clone())
            .or_insert(client)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `localhost` names are answered with loopback (which the guard refuses) by hickory
    /// itself: the configured name server is not even asked.
    #[tokio::test]
    async fn the_dns_resolver_answers_localhost_without_a_query() {
        let server = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let resolver = DnsResolver::new(&[server.local_addr().unwrap()]).unwrap();
        for name in ["localhost", "LOCALHOST", "localhost.", "a.localhost"] {
            let addrs = resolver.resolve(name, 80).await.unwrap();
            assert!(!addrs.is_empty(), "{name}");
            assert!(addrs.iter().all(IpAddr::is_loopback), "{name}: {addrs:?}");
            let decision = check_addresses(&addrs, 80, &PrivateNetwork::Deny, &[]);
            assert!(decision.is_err(), "{name}");
        }
        let mut buf = [0u8; 512];
        let got = tokio::time::timeout(Duration::from_millis(100), server.recv_from(&mut buf)).await;
        assert!(got.is_err(), "no query was sent");
    }

    #[test]
    fn a_dns_resolver_needs_a_name_server() {
        assert!(DnsResolver::new(&[]).is_err());
        let _system = resolver(&[]).unwrap();
    }
}
