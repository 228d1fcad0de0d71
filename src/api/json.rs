//! A JSON extractor whose rejections use the S13 error body.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;

use crate::error::ApiError;

/// Like `axum::Json`, but malformed input becomes `400 invalid_request` (or `413`).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(rejection_to_error(rejection)),
        }
    }
}

fn rejection_to_error(r: JsonRejection) -> ApiError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::PayloadTooLarge("request body is too large".into());
    }
    match r {
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::InvalidRequest("expected Content-Type: application/json".into())
        }
        JsonRejection::JsonDataError(e) => {
            ApiError::InvalidRequest(format!("invalid request body: {}", scrub_quoted(&e.body_text())))
        }
        _ => ApiError::InvalidRequest("request body is not valid JSON".into()),
    }
}

/// serde's messages quote the offending input (`invalid type: string "sk-…"`), which could be a
/// secret sent in the wrong place. Keep the field path and the expectation; drop every quoted
/// value (field names, in backticks, stay).
fn scrub_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut open: Option<char> = None;
    for c in text.chars() {
        match open {
            Some(q) if c == q => {
                out.push('…');
                out.push(c);
                open = None;
            }
            Some(_) => {}
            None if c == '"' => {
                out.push(c);
                open = Some(c);
            }
            None => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_input_never_reaches_the_message() {
        let m = scrub_quoted("data: invalid type: string \"sk-live-123\", expected struct `Raw`");
        assert!(!m.contains("sk-live-123"));
        assert!(m.starts_with("data: invalid type: string"));
    }
}
