//! The response side of the pipeline: headers cleaned and redacted, the body streamed through
//! the redactor with an idle timeout, never buffered.

use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use futures_util::stream;
use http_body::Frame;
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Incoming;

use super::headers;
use super::redact::{Redactor, StreamRedactor};
use crate::error::ApiError;

/// The upstream stopped sending for longer than the idle timeout.
#[derive(Debug, thiserror::Error)]
#[error("upstream went idle")]
pub struct IdleTimeout;

struct State {
    body: Incoming,
    redact: StreamRedactor,
    redactor: Redactor,
    idle: Duration,
    done: bool,
}

/// Turns an upstream response into the caller's: hop-by-hop headers removed, echoed secrets
/// redacted in headers, body and trailers. A compressed body cannot be checked for secrets, so
/// when secrets are in play it is refused rather than passed through.
pub fn into_caller_response(
    response: http::Response<Incoming>,
    redactor: Redactor,
    idle: Duration,
) -> Result<http::Response<Body>, ApiError> {
    let (mut parts, body) = response.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers);
    if redactor.is_active() {
        // Every Content-Encoding line and every token in it must be identity.
        let encoded = parts
            .headers
            .get_all(http::header::CONTENT_ENCODING)
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b','))
            .any(|token| !token.trim_ascii().is_empty() && !token.trim_ascii().eq_ignore_ascii_case(b"identity"));
        if encoded {
            return Err(ApiError::UpstreamError(
                "the upstream sent a compressed body although identity was requested; it cannot be checked for secrets"
                    .into(),
            ));
        }
        redactor.redact_headers(&mut parts.headers);
        // Redaction may change the length.
        parts.headers.remove(http::header::CONTENT_LENGTH);
    }
    let state = State {
        body,
        redact: redactor.stream(),
        redactor,
        idle,
        done: false,
    };
    let frames = stream::unfold(state, next_frame);
    Ok(http::Response::from_parts(parts, Body::new(StreamBody::new(frames))))
}

async fn next_frame(mut st: State) -> Option<(Result<Frame<Bytes>, axum::Error>, State)> {
    if st.done {
        return None;
    }
    loop {
        match tokio::time::timeout(st.idle, st.body.frame()).await {
            Err(_) => {
                st.done = true;
                return Some((Err(axum::Error::new(IdleTimeout)), st));
            }
            Ok(None) => {
                st.done = true;
                let tail = st.redact.finish();
                if tail.is_empty() {
                    return None;
                }
                return Some((Ok(Frame::data(tail)), st));
            }
            Ok(Some(Err(e))) => {
                st.done = true;
                return Some((Err(axum::Error::new(e)), st));
            }
            Ok(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => {
                    let out = st.redact.push(&data);
                    if !out.is_empty() {
                        return Some((Ok(Frame::data(out)), st));
                    }
                }
                Err(frame) => {
                    if let Ok(mut trailers) = frame.into_trailers() {
                        st.redactor.redact_headers(&mut trailers);
                        let tail = st.redact.finish();
                        st.done = true;
                        if !tail.is_empty() {
                            // Data must precede trailers; trailers are dropped in that rare case
                            // rather than reordered.
                            return Some((Ok(Frame::data(tail)), st));
                        }
                        return Some((Ok(Frame::trailers(trailers)), st));
                    }
                }
            },
        }
    }
}
