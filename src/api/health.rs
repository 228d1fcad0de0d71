//! `/health` (liveness, no auth) and `/ready` (the store answers).

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;
use crate::error::ApiError;

/// Liveness.
#[utoipa::path(get, path = "/health", responses((status = 200, description = "Alive")))]
pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}

/// Readiness: the store answers.
#[utoipa::path(get, path = "/ready", responses((status = 200, description = "Ready"), (status = 500, description = "Store unreachable")))]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.store().ping().await?;
    Ok(Json(json!({"status": "ready"})))
}
