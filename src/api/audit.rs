//! `GET /v1/audit` (filtered, cursor-paged, newest first) and `GET /v1/audit/verify`, both
//! scoped to the caller's tenant and requiring the `audit` permission.

use axum::Json;
use axum::extract::{RawQuery, State};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::audit::{AuditFilter, AuditView, Verification};
use crate::auth::Caller;
use crate::domain::Permission;
use crate::error::ApiError;

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1_000;

/// A page of events, newest first.
#[derive(Serialize, ToSchema)]
pub struct AuditList {
    events: Vec<AuditView>,
    /// Pass as `cursor` for the next (older) page; `null` at the end.
    next_cursor: Option<String>,
}

/// Query parameters of `GET /v1/audit` (documentation only; parsed by [`parse_filter`]).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct AuditQuery {
    /// Credential alias.
    credential: Option<String>,
    /// API key id (the actor).
    key: Option<String>,
    /// Project id (the actor).
    project: Option<String>,
    /// e.g. `proxy.request`, `auth.failure`, `secret.fetch`, `POST /v1/credentials`.
    action: Option<String>,
    /// Proxy surface: `path`, `execute`, `ephemeral`, `route`, `mcp`.
    mode: Option<String>,
    /// RFC 3339, inclusive.
    since: Option<String>,
    /// RFC 3339, exclusive.
    until: Option<String>,
    /// 1–1000, default 100.
    limit: Option<u32>,
    cursor: Option<String>,
}

fn parse_time(name: &str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ApiError::InvalidRequest(format!("{name} must be an RFC 3339 time")))
}

/// Parses the query string into a filter (S13 errors, never a panic).
fn parse_filter(raw: Option<&str>) -> Result<AuditFilter, ApiError> {
    let mut f = AuditFilter {
        limit: DEFAULT_PAGE,
        ..AuditFilter::default()
    };
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        let v = v.into_owned();
        match k.as_ref() {
            "credential" => f.credential = Some(v),
            "key" => f.key = Some(v),
            "project" => f.project = Some(v),
            "action" => f.action = Some(v),
            "mode" => {
                f.mode = Some(crate::domain::Surface::parse(&v).ok_or_else(|| {
                    ApiError::InvalidRequest("mode must be one of path, execute, ephemeral, route, mcp".into())
                })?);
            }
            "since" => f.since = Some(parse_time("since", &v)?),
            "until" => f.until = Some(parse_time("until", &v)?),
            "limit" => {
                f.limit = v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| ApiError::InvalidRequest(format!("limit must be between 1 and {MAX_PAGE}")))?;
            }
            "cursor" => {
                f.before_seq = Some(
                    v.parse::<i64>()
                        .map_err(|_| ApiError::InvalidRequest("cursor is not valid".into()))?,
                );
            }
            other => return Err(ApiError::InvalidRequest(format!("unknown query parameter {other:?}"))),
        }
    }
    Ok(f)
}

/// Lists audit events of the caller's tenant, newest first.
#[utoipa::path(get, path = "/v1/audit", params(AuditQuery),
    responses((status = 200, body = AuditList), (status = 400), (status = 403)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<AuditList>, ApiError> {
    caller.require(Permission::Audit)?;
    let filter = parse_filter(raw.as_deref())?;
    read_your_writes(&state).await;
    let records = state.store().list_audit(&caller.tenant_id, &filter).await?;
    let next_cursor = match records.last() {
        Some(last) if records.len() == filter.limit as usize => Some(last.seq.to_string()),
        _ => None,
    };
    Ok(Json(AuditList {
        // A key scoped to some credentials sees only their events (and those naming none).
        events: records
            .into_iter()
            .filter(|r| r.event.credential.as_ref().is_none_or(|c| caller.sees(c.as_str())))
            .map(AuditView::from)
            .collect(),
        next_cursor,
    }))
}

/// Verifies the caller's tenant's hash chain (keyed links, and the checkpoint kept outside the
/// database): `{"ok": true, "events": N}` or
/// `{"ok": false, "events": N, "first_bad_event": "<id>", "reason": …}`.
#[utoipa::path(get, path = "/v1/audit/verify",
    responses((status = 200, body = Verification), (status = 403)))]
pub async fn verify(State(state): State<AppState>, caller: Caller) -> Result<Json<Verification>, ApiError> {
    caller.require(Permission::Audit)?;
    read_your_writes(&state).await;
    Ok(Json(
        state.audit().verify(state.store().as_ref(), &caller.tenant_id).await?,
    ))
}

/// How long a read of the trail waits for this gateway's journal to be indexed.
const INDEXING_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Waits until every event this gateway made durable before the read is in the database, so
/// a caller reads what it just did. If the database keeps refusing, the read goes on after
/// [`INDEXING_WAIT`] (the newest events are then missing from it, not lost).
async fn read_your_writes(state: &AppState) {
    if !state.audit().caught_up(INDEXING_WAIT).await {
        tracing::warn!("audit journal indexing is behind; this read may miss the newest events");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_bad_values_are_client_errors() {
        let f = parse_filter(Some(
            "credential=gh&mode=path&limit=5&cursor=42&since=2026-01-01T00:00:00Z",
        ))
        .unwrap();
        assert_eq!(f.credential.as_deref(), Some("gh"));
        assert_eq!(f.mode, Some(crate::domain::Surface::Path));
        assert_eq!(f.limit, 5);
        assert_eq!(f.before_seq, Some(42));
        assert!(f.since.is_some());
        for bad in [
            "limit=0",
            "limit=x",
            "limit=5000",
            "cursor=abc",
            "since=yesterday",
            "colour=red",
            "mode=tunnel",
        ] {
            assert!(
                matches!(parse_filter(Some(bad)), Err(ApiError::InvalidRequest(_))),
                "{bad}"
            );
        }
        assert_eq!(parse_filter(None).unwrap().limit, DEFAULT_PAGE);
    }
}
