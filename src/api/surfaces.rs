//! The proxy surfaces (SPEC S5): each turns its input into a [`ProxyRequest`] and hands it to
//! the one pipeline, [`proxy::forward`].

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::{Json, extract::FromRequestParts as _};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use http_body_util::{BodyExt as _, Limited};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{ApiJson, AppState};
use crate::auth::Caller;
use crate::domain::Alias;
use crate::error::ApiError;
use crate::metrics::UpstreamTime;
use crate::proxy::{self, ProxyMode, ProxyRequest, RouteRules};

/// The path proxy: `{METHOD} /{absolute-target-url}` with `X-Keystile-Credential`.
pub async fn path(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    parts.extensions.insert(crate::limits::ProxyCall);
    let caller = Caller::from_request_parts(&mut parts, &state).await?;
    let target = (|| {
        let raw = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let url = proxy::parse_target(raw.strip_prefix('/').unwrap_or(raw))?;
        let credential = proxy::credential_header(&parts.headers)?.ok_or(ApiError::MissingCredential)?;
        Ok((url, credential))
    })();
    let (url, credential) = match target {
        Ok(t) => t,
        Err(e) => return Err(refused(&state, &caller, ProxyMode::Path, &parts, e).await),
    };
    let request = ProxyRequest::new(
        ProxyMode::Path,
        Some(credential),
        parts.method,
        url,
        parts.headers,
        body,
    );
    Ok(proxy::forward(&state, &caller, request).await?.into_response())
}

/// The ephemeral proxy: `{METHOD} /v1/proxy` with `X-Keystile-Target`; the credential is
/// optional and the request's query string is appended to the target's.
pub async fn ephemeral(State(state): State<AppState>, caller: Caller, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let (url, credential) = match ephemeral_target(&parts) {
        Ok(t) => t,
        Err(e) => return Err(refused(&state, &caller, ProxyMode::Ephemeral, &parts, e).await),
    };
    let request = ProxyRequest::new(ProxyMode::Ephemeral, credential, parts.method, url, parts.headers, body);
    Ok(proxy::forward(&state, &caller, request).await?.into_response())
}

/// The ephemeral surface's target (with the request's query appended) and optional credential.
fn ephemeral_target(parts: &http::request::Parts) -> Result<(url::Url, Option<Alias>), ApiError> {
    let target = parts
        .headers
        .get("x-keystile-target")
        .ok_or_else(|| ApiError::InvalidRequest("X-Keystile-Target header is required".into()))?
        .to_str()
        .map_err(|_| ApiError::InvalidRequest("X-Keystile-Target is not valid text".into()))?;
    let mut url = proxy::parse_target(target.trim())?;
    if let Some(q) = parts.uri.query() {
        let merged = match url.query() {
            Some(existing) if !existing.is_empty() => format!("{existing}&{q}"),
            _ => q.to_owned(),
        };
        url.set_query(Some(&merged));
    }
    Ok((url, proxy::credential_header(&parts.headers)?))
}

/// Records a call its surface refused before the pipeline; returns the error to answer with.
async fn refused(
    state: &AppState,
    caller: &Caller,
    mode: ProxyMode,
    parts: &http::request::Parts,
    error: ApiError,
) -> ApiError {
    crate::audit::hooks::refused_by_surface(state, caller, mode, &parts.method, &parts.uri, error).await
}

/// `POST /v1/execute` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteRequest {
    #[schema(value_type = String, example = "github")]
    credential: Alias,
    /// Only `http.request` exists.
    action: String,
    params: ExecuteParams,
}

/// What to send.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteParams {
    method: String,
    url: String,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
    /// A string is sent as is; any other JSON value is sent as JSON.
    #[schema(value_type = Option<Object>)]
    body: Option<Value>,
}

/// Execute: one HTTP request described as JSON; the answer comes back as
/// `{"status", "headers", "body"}` (body as JSON when the upstream sent JSON, else text).
#[utoipa::path(post, path = "/v1/execute", request_body = ExecuteRequest,
    responses((status = 200, description = "{status, headers, body}"), (status = 400), (status = 403)))]
pub async fn execute(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<ExecuteRequest>,
) -> Result<Response, ApiError> {
    let request = match execute_request(req) {
        Ok(r) => r,
        Err(e) => {
            let uri = http::Uri::from_static("/v1/execute");
            return Err(crate::audit::hooks::refused_by_surface(
                &state,
                &caller,
                ProxyMode::Execute,
                &Method::POST,
                &uri,
                e,
            )
            .await);
        }
    };
    let response = proxy::forward(&state, &caller, request).await?;
    let (parts, body) = response.into_parts();
    let reading = std::time::Instant::now();
    let limit = usize::try_from(state.limits().max_execute_response_bytes).unwrap_or(usize::MAX);
    let bytes = Limited::new(body, limit)
        .collect()
        .await
        .map_err(|_| ApiError::UpstreamError(format!("the upstream's answer is unreadable or exceeds {limit} bytes")))?
        .to_bytes();
    let is_json = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json"));
    let body = match is_json.then(|| serde_json::from_slice::<Value>(&bytes)) {
        Some(Ok(v)) => v,
        _ => Value::String(String::from_utf8_lossy(&bytes).into_owned()),
    };
    let mut out = Json(json!({
        "status": parts.status.as_u16(),
        "headers": headers_as_json(&parts.headers),
        "body": body,
    }))
    .into_response();
    // Reading the upstream's body is upstream time too (for the overhead header and metrics).
    if let Some(UpstreamTime(t)) = parts.extensions.get::<UpstreamTime>() {
        out.extensions_mut().insert(UpstreamTime(*t + reading.elapsed()));
    }
    Ok(out)
}

/// Turns an execute body into a pipeline request.
fn execute_request(req: ExecuteRequest) -> Result<ProxyRequest, ApiError> {
    if req.action != "http.request" {
        return Err(ApiError::InvalidRequest("action must be \"http.request\"".into()));
    }
    let p = req.params;
    let method = Method::from_bytes(p.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| ApiError::InvalidRequest("params.method is not a valid HTTP method".into()))?;
    let url = proxy::parse_target(&p.url)?;
    let mut headers = HeaderMap::new();
    for (name, value) in &p.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ApiError::InvalidRequest(format!("params.headers: invalid header name {name:?}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| ApiError::InvalidRequest(format!("params.headers: invalid value for {name}")))?;
        headers.append(name, value);
    }
    let body = match p.body {
        None | Some(Value::Null) => Body::empty(),
        Some(Value::String(s)) => Body::from(s),
        Some(other) => {
            headers
                .entry(http::header::CONTENT_TYPE)
                .or_insert(HeaderValue::from_static("application/json"));
            Body::from(other.to_string())
        }
    };
    Ok(ProxyRequest::new(
        ProxyMode::Execute,
        Some(req.credential),
        method,
        url,
        headers,
        body,
    ))
}

/// Routes: `{METHOD} /r/{route}/{path…}` forwards to the route's base URL + path + query with
/// its credential injected. SDKs may send the Keystile key as `x-api-key`.
pub async fn route(State(state): State<AppState>, caller: Caller, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let resolved = async {
        let path = parts.uri.path();
        let rest = path.strip_prefix("/r/").unwrap_or(path);
        let (name, rest) = rest.split_once('/').unwrap_or((rest, ""));
        let name = Alias::parse(name).map_err(|_| ApiError::NotFound("route not found".into()))?;
        let route = state.lookups().route(&caller.tenant_id, &name).await?;
        let url = route.spec.target(rest, parts.uri.query())?;
        Ok::<_, ApiError>((url, route))
    }
    .await;
    let (url, route) = match resolved {
        Ok(r) => r,
        Err(e) => return Err(refused(&state, &caller, ProxyMode::Route, &parts, e).await),
    };
    let spec = &route.spec;
    let mut request = ProxyRequest::new(
        ProxyMode::Route,
        Some(spec.credential.clone()),
        parts.method,
        url,
        parts.headers,
        body,
    );
    request.rules = RouteRules {
        allowed_methods: spec.allowed_methods.clone(),
        allowed_paths: spec.allowed_paths.clone(),
        follow_redirects: spec.follow_redirects,
        timeout: spec.timeout_ms.map(std::time::Duration::from_millis),
    };
    Ok(proxy::forward(&state, &caller, request).await?.into_response())
}

/// Header map of a response, for callers that need it as JSON (`/v1/execute`).
fn headers_as_json(h: &http::HeaderMap) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    for (name, value) in h {
        let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match out.get_mut(name.as_str()) {
            Some(serde_json::Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&v);
            }
            _ => {
                out.insert(name.as_str().to_owned(), serde_json::Value::String(v));
            }
        }
    }
    out
}
