//! The SDK endpoints of SPEC S7, authenticated by a project's RFC 9421 signature:
//! `GET /v1/secrets?env=` (the project reads its secrets) and `PUT /v1/secrets` (the project
//! writes one of its own, the body bound by a signed `Content-Digest`).
//!
//! Every refused signature goes through [`reject`]: it is counted against the client address
//! (the TCP peer; past the limit the address gets 429 before any verification) and audited.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use axum::Json;
use axum::extract::{Request, State};
use http_body_util::BodyExt as _;
use utoipa::ToSchema;

use super::AppState;
use super::projects::{MAX_SECRET_VALUE, PutSecret, SecretView, env_param, secret_aad, store_secret};
use crate::audit::Actor;
use crate::audit::hooks::{self, SecretFetch};
use crate::auth::signature::{client_address, verify_request};
use crate::crypto::httpsig::SigError;
use crate::error::ApiError;
use crate::store::{ProjectRecord, TenantStatus, now};

/// Largest signed `PUT /v1/secrets` body.
const MAX_BODY: usize = MAX_SECRET_VALUE + 4096;

/// `GET /v1/secrets` answer: every secret of the environment, by name.
#[derive(serde::Serialize, ToSchema)]
#[schema(example = json!({"DATABASE_URL": "postgres://…"}))]
pub struct SecretValues(BTreeMap<String, String>);

/// Turns a refused signature into the API error. Every signature failure of this module passes
/// here: it counts against the client address and is an `auth.failure` audit event (in the
/// system chain: a failed signature proves no tenant). `client` is the address limits count (the
/// TCP peer, or what a trusted proxy forwarded: [`client_address`]); the event records the TCP
/// peer, like every other event.
pub async fn reject(
    state: &AppState,
    peer: IpAddr,
    client: IpAddr,
    parts: &http::request::Parts,
    err: SigError,
) -> ApiError {
    tracing::info!(%peer, %client, code = err.code(), reason = %err, "signed request refused");
    if !client.is_unspecified() {
        state.limiter().record_auth_failure(client).await;
    }
    let error = ApiError::Signature(err);
    if let Err(e) = hooks::auth_failure(state, &parts.method, &parts.uri, Some(peer), None, &error).await {
        return e;
    }
    error
}

/// The TCP peer (set by the server's `ConnectInfo`); unspecified when absent, which no
/// trusted-proxy list should contain.
fn peer_of(req: &Request) -> IpAddr {
    crate::auth::peer_ip(req.extensions()).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

async fn authenticated(
    state: &AppState,
    peer: IpAddr,
    parts: &http::request::Parts,
    body: Option<&[u8]>,
) -> Result<ProjectRecord, ApiError> {
    // Limits count the client (behind a trusted proxy, the address it forwarded); verification
    // decides on the TCP peer whether `Forwarded` is believed at all.
    let client = client_address(state.public_address(), peer, &parts.headers);
    if !client.is_unspecified() {
        state.limiter().check_client_ip(client).await?;
    }
    let project = match verify_request(state, peer, parts, body, now()).await {
        Ok(p) => p,
        Err(e) => return Err(reject(state, peer, client, parts, e).await),
    };
    // A terminated account's projects are refused like its API keys (its data is kept).
    if state.store().tenant(&project.tenant_id).await?.status == TenantStatus::Terminated {
        return Err(ApiError::AccountTerminated);
    }
    // A valid signature is rate limited like an API key's management calls (SPEC S7: 429).
    state.limiter().charge_project(&project.id).await?;
    // A signed change (PUT) is recorded by the management-change middleware with the project
    // as its actor.
    if let Some(slot) = parts.extensions.get::<hooks::ActorSlot>() {
        slot.set(project.tenant_id.clone(), Actor::Project(project.id.clone()));
    }
    Ok(project)
}

/// Returns the secrets of one environment to the project that signed the request.
#[utoipa::path(get, path = "/v1/secrets", params(super::projects::EnvQuery),
    responses((status = 200, body = SecretValues), (status = 401), (status = 400)))]
pub async fn fetch(State(state): State<AppState>, req: Request) -> Result<Json<SecretValues>, ApiError> {
    let peer = peer_of(&req);
    let (parts, _body) = req.into_parts();
    let project = authenticated(&state, peer, &parts, None).await?;
    let env = env_param(parts.uri.query())?.ok_or_else(|| ApiError::InvalidRequest("env is required".into()))?;
    let records = state
        .store()
        .list_secrets(&project.tenant_id, &project.id, Some(&env))
        .await?;
    let mut values = BTreeMap::new();
    for r in &records {
        let plain = r
            .sealed
            .open(state.master_key(), secret_aad(&r.tenant_id, &r.id, r.version))
            .map_err(|_| ApiError::internal(anyhow::anyhow!("secret {} does not decrypt", r.id)))?;
        let text = String::from_utf8(plain.to_vec())
            .map_err(|_| ApiError::internal(anyhow::anyhow!("secret {} is not UTF-8", r.id)))?;
        values.insert(r.name.to_string(), text);
    }
    // The fetch is audited (project, environment, peer — never names or values) before the
    // values are released; if it cannot be recorded nothing is released.
    hooks::record_secret_fetch(
        &state,
        SecretFetch {
            tenant: &project.tenant_id,
            project_id: &project.id,
            env: env.as_str(),
            status: 200,
            outcome: "ok",
            client_ip: Some(peer),
        },
    )
    .await?;
    tracing::info!(project = %project.id, env = %env, count = values.len(), %peer, "secrets fetched");
    Ok(Json(SecretValues(values)))
}

/// Writes one secret of the signing project; the body must be covered by `Content-Digest`.
#[utoipa::path(put, path = "/v1/secrets", request_body = PutSecret,
    responses((status = 200, body = SecretView), (status = 401), (status = 400), (status = 413)))]
pub async fn write(State(state): State<AppState>, req: Request) -> Result<Json<SecretView>, ApiError> {
    let peer = peer_of(&req);
    let (parts, body) = req.into_parts();
    let limited = http_body_util::Limited::new(body, MAX_BODY);
    let bytes = limited
        .collect()
        .await
        .map_err(|_| ApiError::PayloadTooLarge(format!("body must be at most {MAX_BODY} bytes")))?
        .to_bytes();
    let project = authenticated(&state, peer, &parts, Some(&bytes)).await?;
    let body: PutSecret = serde_json::from_slice(&bytes)
        .map_err(|_| ApiError::InvalidRequest("body must be {\"key\", \"value\", \"env\"} with valid names".into()))?;
    let secret = store_secret(&state, &project, &body).await?;
    tracing::info!(project = %project.id, secret = %secret.id, version = secret.version, "secret written by project");
    Ok(Json(SecretView::from(&secret)))
}
