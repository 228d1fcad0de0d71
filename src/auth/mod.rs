//! Who is calling: API-key authentication, project request signatures ([`signature`]), the verification cache and the [`Caller`]
//! extractor. A handler that takes a `Caller` cannot run unauthenticated.
//!
//! Must not decide what a caller may do with a resource beyond permissions and scopes; that
//! belongs to the handlers and the proxy pipeline.

mod cache;
pub mod signature;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use secrecy::{ExposeSecret as _, SecretString};

pub use cache::KeyCache;

use crate::api::AppState;
use crate::audit::{Actor, hooks};
use crate::domain::{ApiKeyId, Permission, TenantId};
use crate::error::ApiError;
use crate::limits::{Bucket, ProxyCall, RateSlot};
use crate::store::KeyGrant;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: ApiKeyId,
    pub tenant_id: TenantId,
    /// The key's grant (role, tenant status) as verified.
    pub grant: Arc<KeyGrant>,
    /// The token as presented, kept to recognise (and strip) it in forwarded headers.
    pub token: Arc<SecretString>,
    /// The connection's peer address (for the audit trail).
    pub client_ip: Option<IpAddr>,
}

impl Caller {
    /// Requires a permission (403 `Missing required permission: <p>` otherwise).
    pub fn require(&self, p: Permission) -> Result<(), ApiError> {
        if self.grant.role.permissions.grants(p) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "Missing required permission: {}",
                p.as_str()
            )))
        }
    }

    /// Requires a credential alias to be within the caller's `credential_scopes`.
    pub fn require_scope(&self, alias: &str) -> Result<(), ApiError> {
        if self.grant.role.credential_scopes.allows(alias) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "credential is outside this API key's credential_scopes".into(),
            ))
        }
    }

    /// Whether the caller may see a credential at all (for filtering lists).
    pub fn sees(&self, alias: &str) -> bool {
        self.grant.role.credential_scopes.allows(alias)
    }
}

/// Extracts the presented token: `Authorization: Bearer …` or `X-Keystile-Token: …`.
pub fn presented_token(headers: &HeaderMap) -> Option<SecretString> {
    if let Some(v) = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok())
        && let Some((scheme, rest)) = v.split_once(' ')
        && scheme.eq_ignore_ascii_case("bearer")
        && !rest.trim().is_empty()
    {
        return Some(SecretString::from(rest.trim().to_owned()));
    }
    headers
        .get("x-keystile-token")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
        .map(|v| SecretString::from(v.trim().to_owned()))
}

/// A Keystile key sent as `x-api-key` (accepted on routes only).
fn route_api_key(headers: &HeaderMap) -> Option<SecretString> {
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| v.starts_with(crate::crypto::token::KEY_PREFIX))
        .map(|v| SecretString::from(v.to_owned()))
}

/// The client's address: the TCP peer as axum's `ConnectInfo` saw it, never a header (any
/// client can write `X-Forwarded-For`). `None` when the server runs without connect info.
pub fn client_ip(parts: &Parts) -> Option<IpAddr> {
    peer_ip(&parts.extensions)
}

/// The connection's peer address (the server's `ConnectInfo`), never a header.
pub fn peer_ip(extensions: &http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// An address as text, exactly as `IpAddr`'s `Display` writes it. IPv4 is written by hand: it
/// runs on every request, where the formatting machinery cost more than the rest of the work.
pub fn ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let mut out = String::with_capacity(15);
            push_ipv4(&mut out, v4);
            out
        }
        IpAddr::V6(v6) => v6.to_string(),
    }
}

/// Appends an IPv4 address in dotted-decimal form (as its `Display` writes it).
pub fn push_ipv4(out: &mut String, ip: Ipv4Addr) {
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        if octet >= 100 {
            out.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            out.push(char::from(b'0' + octet / 10 % 10));
        }
        out.push(char::from(b'0' + octet % 10));
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    /// Authenticates, in order: the client address must not be blocked for failed
    /// authentications; the key must verify (a failure counts against the address); the key's
    /// proxy or management budget is charged, and its status left for the headers.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let limiter = state.limiter();
        let ip = client_ip(parts).map(|peer| signature::client_address(state.public_address(), peer, &parts.headers));
        if let Some(ip) = ip {
            limiter.check_client_ip(ip).await?;
        }
        // On routes an unmodified SDK may send its API key as `x-api-key` (Anthropic's do).
        let on_route = parts.uri.path().starts_with("/r/");
        let client_ip = hooks::client_ip(&parts.extensions);
        let presented =
            presented_token(&parts.headers).or_else(|| on_route.then(|| route_api_key(&parts.headers)).flatten());
        let verified = match presented {
            None => Err((
                ApiError::Unauthorized("missing API key: send Authorization: Bearer kst_…".into()),
                None,
            )),
            Some(token) => state
                .keys()
                .verify_detailed(token.expose_secret())
                .await
                .map(|grant| (grant, token)),
        };
        let (grant, token) = match verified {
            Ok(ok) => ok,
            Err((error, grant)) => {
                // A key that is missing, unknown, revoked or expired counts against the address:
                // a guess, a leak being tried, or a flood of anonymous calls (each of which would
                // otherwise cost an audit commit).
                if matches!(error, ApiError::Unauthorized(_))
                    && let Some(ip) = ip
                {
                    limiter.record_auth_failure(ip).await;
                }
                // Every failed authentication is an audit event; if it cannot be written the
                // answer is a 500 rather than an unrecorded refusal.
                hooks::auth_failure(state, &parts.method, &parts.uri, client_ip, grant.as_deref(), &error).await?;
                return Err(error);
            }
        };
        if let Some(slot) = parts.extensions.get::<hooks::ActorSlot>() {
            slot.set(grant.key.tenant_id.clone(), Actor::Key(grant.key.id.clone()));
        }
        let bucket = if parts.extensions.get::<ProxyCall>().is_some() {
            Bucket::Proxy
        } else {
            Bucket::Management
        };
        if let Some((status, verdict)) = limiter.charge_key(&grant.key.id, bucket).await {
            if let Some(slot) = parts.extensions.get::<RateSlot>() {
                slot.set(status);
            }
            verdict?;
        }
        Ok(Caller {
            key_id: grant.key.id.clone(),
            tenant_id: grant.key.tenant_id.clone(),
            grant,
            token: Arc::new(token),
            client_ip,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_written_as_their_display_writes_them() {
        let mut samples: Vec<IpAddr> = (0..=255u8)
            .flat_map(|b| [IpAddr::from([b, 0, 9, 255]), IpAddr::from([10, b, 100, 99])])
            .collect();
        samples.push("::1".parse().unwrap());
        samples.push("::ffff:1.2.3.4".parse().unwrap());
        samples.push("2001:db8::8a2e:370:7334".parse().unwrap());
        for ip in samples {
            assert_eq!(ip_text(ip), ip.to_string());
        }
    }
}
