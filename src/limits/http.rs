//! The HTTP side of limits: the middleware that writes `X-RateLimit-*` headers on every
//! response to an authenticated caller, and the marker telling the `Caller` extractor that a
//! route is a proxy surface.

use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderMap, HeaderName, HeaderValue};

use super::RateStatus;

/// Marks a route as a proxy surface: its calls draw on the key's proxy budget instead of the
/// management budget. Set as a request extension (`Extension(ProxyCall)`).
#[derive(Debug, Clone, Copy)]
pub struct ProxyCall;

/// Where the `Caller` extractor leaves the caller's rate-limit status for the middleware.
#[derive(Debug, Clone, Default)]
pub struct RateSlot(Arc<Mutex<Option<RateStatus>>>);

impl RateSlot {
    /// Records the status to report.
    pub fn set(&self, status: RateStatus) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(status);
    }

    /// The recorded status, if any.
    pub fn get(&self) -> Option<RateStatus> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// Middleware: gives every request a [`RateSlot`] and writes what the extractor put there as
/// `X-RateLimit-Limit`, `-Remaining` and `-Reset` (Unix seconds). An upstream's own headers of
/// these names are kept as `X-Upstream-RateLimit-*`.
pub async fn rate_limit_headers(mut req: Request, next: Next) -> Response {
    let slot = RateSlot::default();
    req.extensions_mut().insert(slot.clone());
    let mut response = next.run(req).await;
    if let Some(status) = slot.get() {
        write_headers(response.headers_mut(), status);
    }
    response
}

fn write_headers(headers: &mut HeaderMap, status: RateStatus) {
    for (ours, theirs) in [
        (LIMIT, "x-upstream-ratelimit-limit"),
        (REMAINING, "x-upstream-ratelimit-remaining"),
        (RESET, "x-upstream-ratelimit-reset"),
    ] {
        // Usually absent: one lookup then, instead of a collect and a removal.
        if !headers.contains_key(&ours) {
            continue;
        }
        let upstream: Vec<HeaderValue> = headers.get_all(&ours).iter().cloned().collect();
        headers.remove(&ours);
        for v in upstream {
            headers.append(HeaderName::from_static(theirs), v);
        }
    }
    headers.insert(LIMIT, HeaderValue::from(status.limit));
    headers.insert(REMAINING, HeaderValue::from(status.remaining));
    headers.insert(RESET, HeaderValue::from(status.reset_unix));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_headers_replace_an_upstreams_which_are_kept_under_upstream_names() {
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-limit", HeaderValue::from_static("5000"));
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("4999"));
        h.insert("content-type", HeaderValue::from_static("application/json"));
        write_headers(
            &mut h,
            RateStatus {
                limit: 10,
                remaining: 3,
                reset_unix: 1_800_000_060,
            },
        );
        assert_eq!(h["x-ratelimit-limit"], "10");
        assert_eq!(h["x-ratelimit-remaining"], "3");
        assert_eq!(h["x-ratelimit-reset"], "1800000060");
        assert_eq!(h["x-upstream-ratelimit-limit"], "5000");
        assert_eq!(h["x-upstream-ratelimit-remaining"], "4999");
        assert!(h.get("x-upstream-ratelimit-reset").is_none());
        assert_eq!(h.get_all("x-ratelimit-limit").iter().count(), 1);
        assert_eq!(h["content-type"], "application/json");
    }
}
