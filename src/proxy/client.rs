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

use super::ssrf::non_public_reason;
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
    fn check(&self, ip: IpAddr, port: u16, allow: &PrivateNetwork) -> Result<(), ConnectError> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        let own = self.own_addrs.read().unwrap_or_else(|e| e.into_inner());
        let is_self = own.iter().any(|a| {
            a.port() == port && (a.ip() == ip || (a.ip().is_unspecified() && (ip.is_loopback() || ip.is_unspecified())))
        });
        if is_self {
            return Err(ConnectError::Blocked("target is the gateway itself".into()));
        }
        match non_public_reason(ip) {
            Some(why) if !allow.permits(ip) => {
                Err(ConnectError::Blocked(format!("target address is not public: {why}")))
            }
            _ => Ok(()),
        }
    }
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
            let host = uri
                .host()
                .ok_or_else(|| ConnectError::Blocked("target has no host".into()))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let port = uri
                .port_u16()
                .unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
            let addrs = match host.parse::<IpAddr>() {
                Ok(ip) => vec![ip],
                Err(_) => guard
                    .resolver
                    .resolve(host, port)
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
            for ip in &addrs {
                guard.check(*ip, port, &allow)?;
            }
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

/// The pooled HTTP client type.
pub type HttpClient = Client<HttpsConnector<GuardedConnector>, Body>;

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
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .build(https);
        self.clients
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(allow.clone())
            .or_insert(client)
            .clone()
    }
}
