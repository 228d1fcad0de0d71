//! The proxy pipeline (SPEC S5), shared by every surface. Each phase is one function; read
//! [`forward`] top to bottom:
//!
//! authenticate (the `Caller` extractor, before we get here; it also charges the key's rate
//! limit) → resolve the credential and check the caller's permission and scope → the tenant
//! plan's limits (requests per second, operations per month) → build the upstream request → egress policy → inject the
//! credential → send through the guarded client (SSRF check at connect) → stream the response
//! back through the redactor. [`forward`] wraps it all with the call's audit event.
//!
//! Must not buffer bodies, log secret values, or let a caller's Keystile key reach upstream.

pub mod body;
pub mod client;
pub mod headers;
pub mod lookup;
pub mod redact;
pub mod ssrf;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body::Body as _;
use http_body_util::{LengthLimitError, Limited};

use crate::api::AppState;
use crate::audit::{AuditEvent, hooks};
use crate::auth::Caller;
use crate::crypto::Aad;
use crate::domain::credential::Injected;
use crate::domain::glob::Glob;
use crate::domain::policy::PrivateNetwork;
use crate::domain::{Alias, CredentialSecret, Permission};
use crate::error::ApiError;
use crate::metrics::UpstreamTime;
use crate::store::{CredentialRecord, CredentialStatus};
use client::ConnectError;
use lookup::{CachedCredential, Decrypted};
use redact::Redactor;

/// How many redirects a route that follows them may take.
const MAX_REDIRECTS: usize = 5;

/// Which surface a request came through (recorded as `proxy_mode`).
pub use crate::domain::Surface as ProxyMode;

/// Extra rules a route adds on top of its credential's policy.
#[derive(Debug, Clone, Default)]
pub struct RouteRules {
    pub allowed_methods: Option<BTreeSet<Method>>,
    pub allowed_paths: Option<Vec<Glob>>,
    pub follow_redirects: bool,
    pub timeout: Option<Duration>,
}

/// A request as a surface hands it to the pipeline.
pub struct ProxyRequest {
    pub mode: ProxyMode,
    /// The credential to inject; only the ephemeral surface may go without one.
    pub credential: Option<Alias>,
    pub method: Method,
    pub url: url::Url,
    /// The caller's headers, as received (cleaned by the pipeline).
    pub headers: HeaderMap,
    pub body: Body,
    pub rules: RouteRules,
}

impl ProxyRequest {
    /// A request for `mode` with no route rules (the route surface adds its own).
    pub fn new(
        mode: ProxyMode,
        credential: Option<Alias>,
        method: Method,
        url: url::Url,
        headers: HeaderMap,
        body: Body,
    ) -> Self {
        Self {
            mode,
            credential,
            method,
            url,
            headers,
            body,
            rules: RouteRules::default(),
        }
    }
}

/// A request on its way upstream, before injection.
struct Outgoing {
    method: Method,
    url: url::Url,
    headers: HeaderMap,
    body: Body,
    body_is_empty: bool,
}

/// Runs a request through the whole pipeline and returns the caller's (streaming) response,
/// once the call's audit event is durable — for refusals and failures too. The event is
/// written when the upstream's status and headers are known, before any of its body is
/// released; if it cannot be written the call fails closed (500).
pub async fn forward(state: &AppState, caller: &Caller, req: ProxyRequest) -> Result<http::Response<Body>, ApiError> {
    let started = std::time::Instant::now();
    let mut event = hooks::proxy_event(
        caller,
        req.mode,
        req.credential.as_ref().map(Alias::as_str),
        &req.method,
        &req.url,
    );
    // The call and its audit event run as a task of their own: a caller that disconnects
    // drops this future, but not the task, so a request that reached the upstream is recorded.
    let (state, caller) = (state.clone(), caller.clone());
    tokio::spawn(async move {
        let result = pipeline(&state, &caller, req, &mut event).await;
        hooks::finish_proxy(&state, event, started, result).await
    })
    .await
    .map_err(|e| ApiError::internal(anyhow::anyhow!("proxy task failed: {e}")))?
}

/// The pipeline proper; fills in what only it learns (credential version, upstream length).
async fn pipeline(
    state: &AppState,
    caller: &Caller,
    req: ProxyRequest,
    event: &mut AuditEvent,
) -> Result<http::Response<Body>, ApiError> {
    caller.require(Permission::Execute)?;
    if !caller.grant.tenant_plan.allows(req.mode) {
        return Err(ApiError::Forbidden(format!(
            "the {} surface is not enabled for this account",
            req.mode.as_str()
        )));
    }
    let credential = match &req.credential {
        Some(alias) => Some(resolve_credential(state, caller, alias).await?),
        None => None,
    };
    let record = credential.as_ref().map(|c| &c.record);
    event.credential_version = record.map(|c| c.version);
    state
        .limiter()
        .charge_operation(&caller.tenant_id, &caller.grant.tenant_plan)
        .await?;
    let mut req = req;
    let rules = std::mem::take(&mut req.rules);
    let outgoing = build_request(state, caller, req)?;
    check_egress(record, &rules, &outgoing.method, &outgoing.url)?;
    let decrypted = match &credential {
        Some(c) => Some(c.decrypted(|r| decrypt(state, r))?),
        None => None,
    };
    let (injected, redactor) = match &decrypted {
        Some(d) => (Some(&d.injected), d.redactor.clone()),
        None => (None, Redactor::new(&[])),
    };
    let allow = record
        .map(|c| c.policy.allow_private_network.clone())
        .unwrap_or_default();
    let sent = std::time::Instant::now();
    let response = send_following_redirects(state, record, &rules, &allow, outgoing, injected, &redactor).await?;
    let upstream = UpstreamTime(sent.elapsed());
    event.bytes = hooks::content_length(response.headers());
    let idle = Duration::from_millis(state.limits().idle_timeout_ms);
    let mut response = body::into_caller_response(response, redactor, idle)?;
    response.extensions_mut().insert(upstream);
    Ok(response)
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

/// Reads the credential alias from `X-Keystile-Credential`, if present.
pub fn credential_header(headers: &HeaderMap) -> Result<Option<Alias>, ApiError> {
    let Some(raw) = headers.get("x-keystile-credential") else {
        return Ok(None);
    };
    let text = raw
        .to_str()
        .map_err(|_| ApiError::InvalidRequest("X-Keystile-Credential is not valid text".into()))?;
    Ok(Some(Alias::parse(text.trim())?))
}

/// Finds the credential and checks that the caller may use it.
async fn resolve_credential(
    state: &AppState,
    caller: &Caller,
    alias: &Alias,
) -> Result<Arc<CachedCredential>, ApiError> {
    caller.require_scope(alias.as_str())?;
    let credential = state.lookups().credential(&caller.tenant_id, alias).await?;
    if credential.record.status == CredentialStatus::Frozen {
        return Err(ApiError::CredentialFrozen);
    }
    Ok(credential)
}

/// Builds the upstream request from the caller's: headers cleaned, body size-limited.
fn build_request(state: &AppState, caller: &Caller, req: ProxyRequest) -> Result<Outgoing, ApiError> {
    let limit = state.limits().max_request_body_bytes;
    let declared = req
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) || req.body.size_hint().lower() > limit {
        return Err(ApiError::PayloadTooLarge(format!("request body exceeds {limit} bytes")));
    }
    let mut headers = req.headers;
    headers::strip_for_upstream(&mut headers, &caller.token);
    let body_is_empty = req.body.size_hint().exact() == Some(0);
    let limited = Limited::new(req.body, usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(Outgoing {
        method: req.method,
        url: req.url,
        headers,
        body: Body::new(limited),
        body_is_empty,
    })
}

/// Checks the target against the credential's egress policy and the route's rules; nothing is
/// sent on failure. Without a credential only HTTPS is allowed (and public addresses, by the
/// client).
fn check_egress(
    credential: Option<&CredentialRecord>,
    rules: &RouteRules,
    method: &Method,
    url: &url::Url,
) -> Result<(), ApiError> {
    match credential {
        Some(c) => c.policy.check(method, url).map_err(|e| ApiError::EgressDenied(e.0))?,
        None if url.scheme() != "https" => {
            return Err(ApiError::EgressDenied(
                "without a credential only https targets are allowed".into(),
            ));
        }
        None => {}
    }
    if rules.allowed_methods.as_ref().is_some_and(|m| !m.contains(method)) {
        return Err(ApiError::EgressDenied(format!(
            "method {method} is not allowed by the route"
        )));
    }
    if rules.allowed_paths.is_some() && crate::domain::policy::has_hidden_dot_segments(url.path()) {
        return Err(ApiError::EgressDenied("path contains encoded dot segments".into()));
    }
    if rules
        .allowed_paths
        .as_ref()
        .is_some_and(|p| !p.iter().any(|g| g.matches(url.path())))
    {
        return Err(ApiError::EgressDenied("path is not allowed by the route".into()));
    }
    Ok(())
}

/// Decrypts the credential: what to inject, and what to redact from the answer. Runs once per
/// cached record (see [`lookup`]), not once per request.
fn decrypt(state: &AppState, credential: &CredentialRecord) -> Result<Decrypted, ApiError> {
    let aad = Aad {
        kind: "credential",
        tenant: credential.tenant_id.as_str(),
        object_id: credential.id.as_str(),
        version: credential.version,
    };
    let internal = |what: &str| ApiError::internal(anyhow::anyhow!("credential {}: {what}", credential.id));
    let plaintext = credential
        .sealed
        .open(state.master_key(), aad)
        .map_err(|_| internal("cannot decrypt"))?;
    let secret = CredentialSecret::from_plaintext(credential.kind, &plaintext).map_err(|e| internal(&e.0))?;
    let injected = secret.inject(credential.inject.as_ref()).map_err(|e| internal(&e.0))?;
    let forms: Vec<_> = secret
        .secret_values()
        .iter()
        .flat_map(|v| redact::encoded_forms(v))
        .collect();
    Ok(Decrypted {
        injected,
        redactor: Redactor::new(&forms),
    })
}

/// Builds the wire request: the injected headers / query parameter placed last, so the caller
/// cannot override them.
fn wire_request(
    method: Method,
    mut url: url::Url,
    mut headers: HeaderMap,
    body: Body,
    injected: Option<&Injected>,
    redactor: &Redactor,
) -> Result<http::Request<Body>, ApiError> {
    if let Some(injected) = injected {
        for (name, value) in &injected.headers {
            headers.remove(name);
            headers.insert(name.clone(), value.clone());
        }
        if let Some((name, value)) = &injected.query {
            let kept: Vec<(String, String)> = url
                .query_pairs()
                .filter(|(k, _)| k != name.as_str())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            let mut pairs = url.query_pairs_mut();
            pairs.clear();
            for (k, v) in &kept {
                pairs.append_pair(k, v);
            }
            pairs.append_pair(name, value.as_str());
        }
    }
    if redactor.is_active() {
        // A compressed answer could not be searched for echoed secrets, and a partial one could
        // carry a fragment of a secret too short to recognise.
        headers.insert(http::header::ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        headers.remove(http::header::RANGE);
        headers.remove(http::header::IF_RANGE);
    }
    let uri: http::Uri = url
        .as_str()
        .parse()
        .map_err(|_| ApiError::InvalidRequest("target URL cannot be sent".into()))?;
    let mut req = http::Request::builder()
        .method(method)
        .uri(uri)
        .body(body)
        .map_err(|_| ApiError::InvalidRequest("request cannot be built".into()))?;
    *req.headers_mut() = headers;
    Ok(req)
}

/// Sends the request; when the route follows redirects (and the request has no body to
/// replay), each hop is checked against the egress policy again, dialled through the SSRF
/// guard, and gets the credential only if it stays on the original origin.
async fn send_following_redirects(
    state: &AppState,
    credential: Option<&CredentialRecord>,
    rules: &RouteRules,
    allow: &PrivateNetwork,
    outgoing: Outgoing,
    injected: Option<&Injected>,
    redactor: &Redactor,
) -> Result<http::Response<hyper::body::Incoming>, ApiError> {
    let origin = outgoing.url.origin();
    let follow = rules.follow_redirects && outgoing.body_is_empty;
    let base_headers = if follow {
        outgoing.headers.clone()
    } else {
        HeaderMap::new()
    };
    let (mut method, mut url) = (outgoing.method.clone(), outgoing.url.clone());
    let req = wire_request(
        outgoing.method,
        outgoing.url,
        outgoing.headers,
        outgoing.body,
        injected,
        redactor,
    )?;
    let mut response = send(state, rules, allow, req).await?;
    for _ in 0..MAX_REDIRECTS {
        if !follow || !response.status().is_redirection() || response.status() == StatusCode::NOT_MODIFIED {
            break;
        }
        let Some(next) = redirect_target(&response, &url)? else {
            break;
        };
        if response.status() == StatusCode::SEE_OTHER
            || (matches!(response.status(), StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND)
                && method == Method::POST)
        {
            method = Method::GET;
        }
        check_egress(credential, rules, &method, &next)?;
        let same_origin = next.origin() == origin;
        let hop_injected = if same_origin { injected } else { None };
        // A redirect may echo the request's query, injected key included, to the other origin.
        let next = match (same_origin, injected.and_then(|i| i.query.as_ref())) {
            (false, Some((name, _))) => without_query_param(next, name),
            _ => next,
        };
        let req = wire_request(
            method.clone(),
            next.clone(),
            base_headers.clone(),
            Body::empty(),
            hop_injected,
            redactor,
        )?;
        url = next;
        response = send(state, rules, allow, req).await?;
    }
    Ok(response)
}

/// `url` without any `name=` query parameter.
fn without_query_param(mut url: url::Url, name: &str) -> url::Url {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    url
}

/// The absolute URL a redirect points to, if it has a usable `Location`.
fn redirect_target<B>(response: &http::Response<B>, current: &url::Url) -> Result<Option<url::Url>, ApiError> {
    let Some(location) = response
        .headers()
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(None);
    };
    let next = current
        .join(location)
        .map_err(|_| ApiError::UpstreamError("the upstream redirected to an invalid URL".into()))?;
    parse_target(next.as_str())
        .map(Some)
        .map_err(|_| ApiError::EgressDenied("redirect target is not allowed".into()))
}

/// Sends one request through the guarded client for this private-network setting.
async fn send(
    state: &AppState,
    rules: &RouteRules,
    allow: &PrivateNetwork,
    req: http::Request<Body>,
) -> Result<http::Response<hyper::body::Incoming>, ApiError> {
    let client = state.outbound().client(allow);
    let first_byte = rules
        .timeout
        .unwrap_or(Duration::from_millis(state.limits().first_byte_timeout_ms));
    match tokio::time::timeout(first_byte, client.request(req)).await {
        Err(_) => Err(ApiError::UpstreamTimeout),
        Ok(Err(e)) => Err(upstream_error(&e)),
        Ok(Ok(r)) => Ok(r),
    }
}

/// Classifies a client error by where it came from: refused by us (403), the caller's body
/// (413), a timeout (504) or the upstream (502).
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
