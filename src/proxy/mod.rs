//! The proxy pipeline (SPEC S5). Each phase is one function; read top to bottom:
//!
//! authenticate (the `Caller` extractor) → resolve the credential and check the caller's
//! permission and scope → build the upstream request → egress policy → inject the credential
//! → send through the guarded client (SSRF check at connect) → stream the response back.
//!
//! Must not buffer bodies, log secret values, or let a caller's Keystile key reach upstream.

pub mod client;
pub mod headers;
pub mod ssrf;

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderMap, Method};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};

use crate::api::AppState;
use crate::auth::Caller;
use crate::crypto::Aad;
use crate::domain::credential::Injected;
use crate::domain::{Alias, CredentialSecret, Permission};
use crate::error::ApiError;
use crate::store::{CredentialRecord, CredentialStatus};
use client::ConnectError;

/// A request on its way upstream, before injection.
pub struct Outgoing {
    pub method: Method,
    pub url: url::Url,
    pub headers: HeaderMap,
    pub body: Body,
}

/// The path proxy: `{METHOD} /{absolute-target-url}` with `X-Keystile-Credential`.
pub async fn path_proxy(State(state): State<AppState>, caller: Caller, req: Request) -> Result<Response, ApiError> {
    let target = target_from_path(req.uri())?;
    let alias = credential_alias(req.headers())?;
    let credential = resolve_credential(&state, &caller, &alias).await?;
    let outgoing = build_request(&state, &caller, req, target)?;
    check_egress(&credential, &outgoing)?;
    let injected = decrypt_and_inject(&state, &credential)?;
    let upstream = apply_injection(outgoing, injected)?;
    send(&state, &credential, upstream).await
}

/// Parses the target URL written after the gateway's own `/`.
fn target_from_path(uri: &http::Uri) -> Result<url::Url, ApiError> {
    let raw = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    parse_target(raw.strip_prefix('/').unwrap_or(raw))
}

/// Parses and sanity-checks an absolute target URL (scheme, host, no userinfo).
pub fn parse_target(raw: &str) -> Result<url::Url, ApiError> {
    let url =
        url::Url::parse(raw).map_err(|_| ApiError::InvalidRequest("target is not a valid absolute URL".into()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ApiError::InvalidRequest("target scheme must be http or https".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ApiError::InvalidRequest(
            "target URL must not contain user information".into(),
        ));
    }
    if url.host().is_none() {
        return Err(ApiError::InvalidRequest("target URL has no host".into()));
    }
    Ok(url)
}

/// Reads `X-Keystile-Credential`.
fn credential_alias(headers: &HeaderMap) -> Result<Alias, ApiError> {
    let raw = headers
        .get("x-keystile-credential")
        .ok_or(ApiError::MissingCredential)?
        .to_str()
        .map_err(|_| ApiError::InvalidRequest("X-Keystile-Credential is not valid text".into()))?;
    Ok(Alias::parse(raw.trim())?)
}

/// Finds the credential and checks that the caller may use it.
async fn resolve_credential(state: &AppState, caller: &Caller, alias: &Alias) -> Result<CredentialRecord, ApiError> {
    caller.require(Permission::Execute)?;
    caller.require_scope(alias.as_str())?;
    let credential = state.store().credential(&caller.tenant_id, alias).await?;
    if credential.status == CredentialStatus::Frozen {
        return Err(ApiError::CredentialFrozen);
    }
    Ok(credential)
}

/// Builds the upstream request from the caller's: headers cleaned, body size-limited.
fn build_request(state: &AppState, caller: &Caller, req: Request, url: url::Url) -> Result<Outgoing, ApiError> {
    let (parts, body) = req.into_parts();
    let limit = state.limits().max_request_body_bytes;
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(ApiError::PayloadTooLarge(format!("request body exceeds {limit} bytes")));
    }
    let mut headers = parts.headers;
    headers::strip_for_upstream(&mut headers, &caller.token);
    let limited = Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(Outgoing {
        method: parts.method,
        url,
        headers,
        body: Body::new(limited),
    })
}

/// Checks the target against the credential's egress policy; nothing is sent on failure.
fn check_egress(credential: &CredentialRecord, outgoing: &Outgoing) -> Result<(), ApiError> {
    credential
        .policy
        .check(&outgoing.method, &outgoing.url)
        .map_err(|e| ApiError::EgressDenied(e.0))
}

/// Decrypts the credential just in time and computes what to inject.
fn decrypt_and_inject(state: &AppState, credential: &CredentialRecord) -> Result<Injected, ApiError> {
    let aad = Aad {
        kind: "credential",
        tenant: credential.tenant_id.as_str(),
        object_id: credential.id.as_str(),
        version: credential.version,
    };
    let plaintext = credential
        .sealed
        .open(state.master_key(), aad)
        .map_err(|e| ApiError::internal(anyhow::Error::new(e).context(format!("credential {}", credential.id))))?;
    let secret = CredentialSecret::from_plaintext(credential.kind, &plaintext)
        .map_err(|e| ApiError::internal(anyhow::anyhow!("credential {}: {e}", credential.id)))?;
    secret
        .inject(credential.inject.as_ref())
        .map_err(|e| ApiError::internal(anyhow::anyhow!("credential {}: {e}", credential.id)))
}

/// Places the injected headers / query parameter; the caller cannot override them.
fn apply_injection(mut outgoing: Outgoing, injected: Injected) -> Result<http::Request<Body>, ApiError> {
    for (name, value) in injected.headers {
        outgoing.headers.remove(&name);
        outgoing.headers.insert(name, value);
    }
    if let Some((name, value)) = injected.query {
        let kept: Vec<(String, String)> = outgoing
            .url
            .query_pairs()
            .filter(|(k, _)| k != name.as_str())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut pairs = outgoing.url.query_pairs_mut();
        pairs.clear();
        for (k, v) in &kept {
            pairs.append_pair(k, v);
        }
        pairs.append_pair(&name, value.as_str());
    }
    let uri: http::Uri = outgoing
        .url
        .as_str()
        .parse()
        .map_err(|_| ApiError::InvalidRequest("target URL cannot be sent".into()))?;
    let mut req = http::Request::builder()
        .method(outgoing.method)
        .uri(uri)
        .body(outgoing.body)
        .map_err(|_| ApiError::InvalidRequest("request cannot be built".into()))?;
    *req.headers_mut() = outgoing.headers;
    Ok(req)
}

/// Sends through the guarded client and streams the response back.
async fn send(state: &AppState, credential: &CredentialRecord, req: http::Request<Body>) -> Result<Response, ApiError> {
    let client = state.outbound().client(&credential.policy.allow_private_network);
    let first_byte = Duration::from_millis(state.limits().first_byte_timeout_ms);
    let response = match tokio::time::timeout(first_byte, client.request(req)).await {
        Err(_) => return Err(ApiError::UpstreamTimeout),
        Ok(Err(e)) => return Err(upstream_error(&e)),
        Ok(Ok(r)) => r,
    };
    let (mut parts, body) = response.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers);
    let body = body.map_err(axum::Error::new);
    Ok(Response::from_parts(parts, Body::new(body)))
}

/// Classifies a client error by where it came from.
fn upstream_error(e: &hyper_util::client::legacy::Error) -> ApiError {
    if let Some(c) = ConnectError::find(e) {
        return match c {
            ConnectError::Blocked(why) => ApiError::SsrfBlocked(why.clone()),
            ConnectError::Timeout => ApiError::UpstreamTimeout,
            ConnectError::Resolve(_) => ApiError::UpstreamError("cannot resolve the target host".into()),
            ConnectError::Io(_) => ApiError::UpstreamError("cannot connect to the upstream".into()),
        };
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<LengthLimitError>() {
            return ApiError::PayloadTooLarge("request body is too large".into());
        }
        source = err.source();
    }
    tracing::debug!(error = %e, "upstream request failed");
    ApiError::UpstreamError("the upstream failed to answer".into())
}
