//! The one place where errors become HTTP responses (SPEC S13).
//!
//! Every error body is `{"error": code, "message": text, "details": {…}}`. Client faults get a
//! stable 4xx; our own faults a generic 500 whose cause is logged, never sent.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The S13 code of an error response, left in the response's extensions so that middleware
/// (the audit trail, metrics) can tell why a call was refused without reading the body.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

/// An error as the API reports it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("X-Keystile-Credential header is required")]
    MissingCredential,
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("this account has been terminated")]
    AccountTerminated,
    #[error("{0}")]
    EgressDenied(String),
    #[error("{0}")]
    SsrfBlocked(String),
    #[error("{0}")]
    NotFound(String),
    #[error("credential is frozen")]
    CredentialFrozen,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Too many requests in the current window; retry after the given seconds.
    #[error("{message}")]
    RateLimited { message: String, retry_after_secs: u64 },
    /// The tenant's monthly operations are used up; retry after the given seconds.
    #[error("this account's monthly operations quota is exhausted")]
    QuotaExceeded { retry_after_secs: u64 },
    #[error("{0}")]
    UpstreamError(String),
    #[error("upstream did not answer in time")]
    UpstreamTimeout,
    /// A project's signed request was refused (SPEC S7); always 401 with the variant's code.
    #[error("{0}")]
    Signature(#[from] crate::crypto::httpsig::SigError),
    /// Our fault. The inner error is logged, never sent.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// Wraps any internal failure.
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Self::Internal(e.into())
    }

    /// The HTTP status and S13 code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            Self::MissingCredential => (StatusCode::BAD_REQUEST, "missing_credential"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::AccountTerminated => (StatusCode::FORBIDDEN, "account_terminated"),
            Self::EgressDenied(_) => (StatusCode::FORBIDDEN, "egress_denied"),
            Self::SsrfBlocked(_) => (StatusCode::FORBIDDEN, "ssrf_blocked"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::CredentialFrozen => (StatusCode::NOT_FOUND, "credential_frozen"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::QuotaExceeded { .. } => (StatusCode::TOO_MANY_REQUESTS, "quota_exceeded"),
            Self::UpstreamError(_) => (StatusCode::BAD_GATEWAY, "upstream_error"),
            Self::UpstreamTimeout => (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout"),
            Self::Signature(e) => (StatusCode::UNAUTHORIZED, e.code()),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }
}

impl From<crate::domain::DomainError> for ApiError {
    fn from(e: crate::domain::DomainError) -> Self {
        Self::InvalidRequest(e.0)
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            StoreError::NotFound(what) => Self::NotFound(format!("{what} not found")),
            StoreError::Conflict(what) => Self::Conflict(what),
            StoreError::Database(inner) => Self::Internal(inner),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let Self::Internal(cause) = &self {
            // The cause goes to the log (it may name a table or a file), never to the client.
            tracing::error!(error = format!("{cause:#}"), "internal error");
        }
        let retry_after = match &self {
            Self::RateLimited { retry_after_secs, .. } | Self::QuotaExceeded { retry_after_secs } => {
                Some(*retry_after_secs)
            }
            _ => None,
        };
        let details = match retry_after {
            Some(secs) => json!({"retry_after_seconds": secs}),
            None => json!({}),
        };
        let body = Json(json!({"error": code, "message": self.to_string(), "details": details}));
        let mut response = (status, body).into_response();
        response.extensions_mut().insert(ErrorCode(code));
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
        }
        response
    }
}
