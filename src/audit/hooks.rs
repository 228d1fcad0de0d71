//! Where events come from: one hook per kind of activity, called from the pipeline (never from
//! individual handlers), so endpoints added later are covered without touching them.
//!
//! - proxied calls: [`proxy_event`] + [`finish_proxy`], wrapped around the pipeline by
//!   `proxy::forward` (every surface, successes and refusals alike);
//! - authentication failures: [`auth_failure`], called by the `Caller` extractor;
//! - administrative changes: the [`admin_changes`] middleware on the management routes;
//! - secret fetches: [`record_secret_fetch`], for the projects SDK endpoint.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use http::{Extensions, HeaderMap, Method, Uri};

use super::event::{CredentialName, Host, Method as RecordedMethod, Outcome, TargetPath, redacted_query};
use super::{Actor, AuditEvent, redact_query, system_tenant};
use crate::api::AppState;
use crate::auth::Caller;
use crate::domain::TenantId;
use crate::error::{ApiError, ErrorCode};
use crate::store::KeyGrant;

/// Management routes that are proxy surfaces: audited by the pipeline, not as changes.
const PROXY_SURFACE_ROUTES: &[&str] = &["/v1/execute", "/v1/proxy"];

/// Filled by the `Caller` extractor so that an outer middleware learns who acted.
#[derive(Clone, Default)]
pub struct ActorSlot(Arc<Mutex<Option<(TenantId, Actor)>>>);

impl ActorSlot {
    /// Records the authenticated actor.
    pub fn set(&self, tenant: TenantId, actor: Actor) {
        // A poisoned lock only means a panic elsewhere mid-write; the value is still usable.
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((tenant, actor));
    }

    fn take(&self) -> Option<(TenantId, Actor)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// The peer address of the connection (forwarding headers are not trusted).
pub fn client_ip(extensions: &Extensions) -> Option<std::net::IpAddr> {
    crate::auth::peer_ip(extensions)
}

/// A request URI's path with query values redacted, cut to what a recorded path holds.
fn redacted_uri(uri: &Uri) -> TargetPath {
    let mut path = without_userinfo(uri.path());
    if let Some(query) = uri.query() {
        path.push_str(&redacted_query(query));
    }
    TargetPath::cut(path)
}

/// A path-proxy path (`/https://user:pass@host/…`) without the user information a caller may
/// have put in the target (such a request is refused, but the path is still recorded).
fn without_userinfo(path: &str) -> String {
    if let Some(i) = path.find("://") {
        let rest = &path[i + 3..];
        let authority_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            return format!("{}{}", &path[..i + 3], &rest[at + 1..]);
        }
    }
    path.to_owned()
}

/// The event for a proxied call, before the pipeline runs.
pub fn proxy_event(
    caller: &Caller,
    mode: crate::domain::Surface,
    credential: Option<&str>,
    method: &Method,
    url: &url::Url,
) -> AuditEvent {
    let mut e = AuditEvent::new(
        caller.tenant_id.clone(),
        Actor::Key(caller.key_id.clone()),
        "proxy.request",
    );
    e.proxy_mode = Some(mode);
    e.credential = credential.map(CredentialName::from);
    e.method = Some(RecordedMethod::from(method));
    e.target_host = url.host_str().map(Host::from);
    e.target_path = Some(redact_query(url));
    e.client_ip = caller.client_ip;
    e
}

/// The `Content-Length` of a response, if it declares one.
pub fn content_length(headers: &HeaderMap) -> Option<i64> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
}

/// Completes and commits a proxied call's event, then releases the outcome. If the event
/// cannot be made durable the call fails closed: nothing of the upstream's answer is released.
pub async fn finish_proxy(
    state: &AppState,
    mut event: AuditEvent,
    started: Instant,
    result: Result<http::Response<axum::body::Body>, ApiError>,
) -> Result<http::Response<axum::body::Body>, ApiError> {
    event.latency_ms = Some(i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX));
    match &result {
        Ok(response) => event.status = Some(response.status().as_u16()),
        Err(e) => {
            let (status, code) = e.status_and_code();
            event.status = Some(status.as_u16());
            event.outcome = Outcome::error(code);
        }
    }
    state.audit().record(event).await?;
    result
}

/// Records a proxy call refused by its surface before it reached the pipeline (an unparsable
/// target, a missing credential header, an unknown route, …) and returns the error to answer
/// with (a 500 instead when the event cannot be written). The target is the request as
/// received, query values redacted.
pub async fn refused_by_surface(
    state: &AppState,
    caller: &Caller,
    mode: crate::domain::Surface,
    method: &Method,
    uri: &Uri,
    error: ApiError,
) -> ApiError {
    let mut e = AuditEvent::new(
        caller.tenant_id.clone(),
        Actor::Key(caller.key_id.clone()),
        "proxy.request",
    );
    let (status, code) = error.status_and_code();
    e.proxy_mode = Some(mode);
    e.method = Some(RecordedMethod::from(method));
    e.target_path = Some(redacted_uri(uri));
    e.status = Some(status.as_u16());
    e.outcome = Outcome::error(code);
    e.client_ip = caller.client_ip;
    match state.audit().record(e).await {
        Ok(()) => error,
        Err(audit_error) => audit_error.into(),
    }
}

/// Records a failed authentication: in the key's tenant when the key is known (revoked,
/// expired, terminated tenant), else in the system chain.
pub async fn auth_failure(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    client_ip: Option<std::net::IpAddr>,
    grant: Option<&KeyGrant>,
    error: &ApiError,
) -> Result<(), ApiError> {
    let (tenant, actor) = match grant {
        Some(g) => (g.key.tenant_id.clone(), Actor::Key(g.key.id.clone())),
        None => (system_tenant(), Actor::None),
    };
    let mut e = AuditEvent::new(tenant, actor, "auth.failure");
    let (status, code) = error.status_and_code();
    e.method = Some(RecordedMethod::from(method));
    e.target_path = Some(redacted_uri(uri));
    e.status = Some(status.as_u16());
    e.outcome = Outcome::error(code);
    e.client_ip = client_ip;
    state.audit().record(e).await?;
    Ok(())
}

/// What the projects branch records for `GET /v1/secrets` (SDK secret fetch).
pub struct SecretFetch<'a> {
    pub tenant: &'a TenantId,
    pub project_id: &'a crate::domain::ProjectId,
    /// The environment fetched (a name, not a secret).
    pub env: &'a str,
    /// The HTTP status answered.
    pub status: u16,
    /// `ok` or the S13 error code.
    pub outcome: &'a str,
    pub client_ip: Option<std::net::IpAddr>,
}

/// Records a secret fetch (`action = "secret.fetch"`, actor = the project) and waits until it
/// is durable; call it before releasing the secrets, and fail the request if it errs.
pub async fn record_secret_fetch(state: &AppState, fetch: SecretFetch<'_>) -> Result<(), ApiError> {
    let mut e = AuditEvent::new(
        fetch.tenant.clone(),
        Actor::Project(fetch.project_id.clone()),
        "secret.fetch",
    );
    e.method = Some(RecordedMethod::from(&Method::GET));
    e.target_path = Some(TargetPath::cut(format!(
        "/v1/secrets?env={}",
        url::form_urlencoded::byte_serialize(fetch.env.as_bytes()).collect::<String>()
    )));
    e.status = Some(fetch.status);
    e.outcome = Outcome::error(fetch.outcome);
    e.client_ip = fetch.client_ip;
    state.audit().record(e).await?;
    Ok(())
}

/// Middleware (as a `route_layer`, so the matched route is known): records every mutating
/// management call — POST/PUT/PATCH/DELETE under `/v1/` except the proxy surfaces — whether it
/// succeeded or was refused, with the actor, `"<METHOD> <route template>"` as action and the
/// concrete path as target. Unauthenticated calls are recorded by the `Caller` extractor
/// instead. The response waits for the commit; if it fails the caller gets a 500 (the change
/// itself has already been made).
pub async fn admin_changes(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let mutating = matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    let template = req.extensions().get::<MatchedPath>().map_or("", |m| m.as_str());
    if !mutating || !template.starts_with("/v1/") || PROXY_SURFACE_ROUTES.contains(&template) {
        return next.run(req).await;
    }
    let template = template.to_owned();
    let slot = ActorSlot::default();
    req.extensions_mut().insert(slot.clone());
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let ip = client_ip(req.extensions());
    let started = Instant::now();
    // The change and its event run as a task of their own: a caller that disconnects drops this
    // future, but not the task, so a change that was made is recorded.
    let task = tokio::spawn(async move {
        let response = next.run(req).await;
        record_change(&state, slot, template, method, path, ip, started, response).await
    });
    match task.await {
        Ok(response) => response,
        Err(e) => ApiError::internal(anyhow::anyhow!("management task failed: {e}")).into_response(),
    }
}

/// Records a management change (or refused change) once its response is known.
#[allow(clippy::too_many_arguments)]
async fn record_change(
    state: &AppState,
    slot: ActorSlot,
    template: String,
    method: Method,
    path: String,
    ip: Option<std::net::IpAddr>,
    started: Instant,
    response: Response,
) -> Response {
    let Some((tenant, actor)) = slot.take() else {
        return response;
    };
    let mut e = AuditEvent::new(tenant, actor, format!("{method} {template}"));
    e.method = Some(RecordedMethod::from(&method));
    e.target_path = Some(TargetPath::cut(path));
    e.status = Some(response.status().as_u16());
    e.latency_ms = Some(i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX));
    e.client_ip = ip;
    if let Some(ErrorCode(code)) = response.extensions().get::<ErrorCode>() {
        e.outcome = Outcome::error(code);
    } else if !response.status().is_success() {
        e.outcome = Outcome::error("error");
    }
    match state.audit().record(e).await {
        Ok(()) => response,
        Err(err) => ApiError::from(err).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_paths_never_keep_user_information() {
        let uri: Uri = "/https://user:s3cret@api.example.com/x?token=abc".parse().unwrap();
        assert_eq!(redacted_uri(&uri).as_str(), "/https://api.example.com/x?token=_");
        assert_eq!(without_userinfo("/v1/keys/abc"), "/v1/keys/abc");
        assert_eq!(without_userinfo("/http://h:1/a@b"), "/http://h:1/a@b");
    }
}
