//! Prometheus metrics (`GET /metrics`) and the per-response gateway overhead header.
//!
//! One middleware observes every request: its surface and status, and, for proxied calls, how
//! long the upstream took (the pipeline leaves an [`UpstreamTime`] in the response extensions)
//! and how long the gateway itself took (the rest). Refusals are counted from the error code
//! that `error.rs` leaves in the response extensions. Labels are fixed sets (surface, status
//! code, error code), never tenant data, credential names or paths.

use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::api::AppState;
use crate::error::ErrorCode;

/// The header that carries the time spent in the gateway, excluding upstream time.
pub const OVERHEAD_HEADER: &str = "x-keystile-overhead-ms";

/// [`OVERHEAD_HEADER`] as a header name, parsed once rather than on every response.
const OVERHEAD_NAME: HeaderName = HeaderName::from_static(OVERHEAD_HEADER);

/// How long the upstream took to answer (until its response headers), set by the pipeline.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamTime(pub Duration);

/// Where a request arrived: one of the proxy surfaces or the management API.
pub fn surface_of(path: &str) -> &'static str {
    if path.starts_with("/r/") {
        "route"
    } else if path == "/v1/proxy" {
        "ephemeral"
    } else if path == "/v1/execute" {
        "execute"
    } else if crate::api::is_path_proxy(path) {
        "path"
    } else if path.starts_with("/v1/") {
        "management"
    } else {
        "other"
    }
}

fn is_proxy_surface(surface: &str) -> bool {
    matches!(surface, "route" | "ephemeral" | "execute" | "path")
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    surface: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SurfaceLabels {
    surface: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: &'static str,
}

fn latency_histogram() -> Histogram {
    // 50 µs … ~26 s, doubling.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 20))
}

/// The gateway's metric families and their registry.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    upstream_latency: Family<SurfaceLabels, Histogram>,
    overhead: Family<SurfaceLabels, Histogram>,
    limit_rejections: Family<CodeLabels, Counter>,
    ssrf_refusals: Counter,
    audit_queue_depth: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every family.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("keystile");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "Requests handled, by surface and HTTP status",
            requests.clone(),
        );
        let upstream_latency = Family::<SurfaceLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        registry.register(
            "upstream_latency_seconds",
            "Time until the upstream's response headers, per proxy surface",
            upstream_latency.clone(),
        );
        let overhead = Family::<SurfaceLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        registry.register(
            "gateway_overhead_seconds",
            "Time spent in the gateway for a proxied call, excluding upstream time",
            overhead.clone(),
        );
        let limit_rejections = Family::<CodeLabels, Counter>::default();
        registry.register(
            "rate_limit_rejections",
            "Requests refused by a rate limit or quota, by error code",
            limit_rejections.clone(),
        );
        let ssrf_refusals = Counter::default();
        registry.register(
            "ssrf_refusals",
            "Outbound requests refused by the SSRF guard",
            ssrf_refusals.clone(),
        );
        let audit_queue_depth = Gauge::default();
        registry.register(
            "audit_queue_depth",
            "Audit events waiting to be written",
            audit_queue_depth.clone(),
        );
        Self {
            registry,
            requests,
            upstream_latency,
            overhead,
            limit_rejections,
            ssrf_refusals,
            audit_queue_depth,
        }
    }

    /// Registers the count of audit journal segments found damaged and set aside (owned by
    /// the audit writer, which exists before the metrics).
    pub fn with_audit_journal_damage(mut self, damaged_segments: Counter) -> Self {
        self.registry.register(
            "audit_journal_damaged_segments",
            "Audit journal segments found damaged: copied into the quarantine, readable events indexed",
            damaged_segments,
        );
        self
    }

    /// Records one finished request (its response headers are about to leave).
    fn observe(&self, surface: &'static str, status: u16, code: Option<&'static str>, upstream: Option<Duration>) {
        self.requests.get_or_create(&RequestLabels { surface, status }).inc();
        if let Some(up) = upstream {
            self.upstream_latency
                .get_or_create(&SurfaceLabels { surface })
                .observe(up.as_secs_f64());
        }
        match code {
            Some(code @ ("rate_limited" | "quota_exceeded")) => {
                self.limit_rejections.get_or_create(&CodeLabels { code }).inc();
            }
            Some("ssrf_blocked") => {
                self.ssrf_refusals.inc();
            }
            _ => {}
        }
    }

    fn observe_overhead(&self, surface: &'static str, overhead: Duration) {
        self.overhead
            .get_or_create(&SurfaceLabels { surface })
            .observe(overhead.as_secs_f64());
    }

    /// Sets the audit queue depth (read just before each scrape).
    pub fn set_audit_queue_depth(&self, depth: usize) {
        self.audit_queue_depth.set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// The Prometheus text exposition of every family.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Middleware: counts every request and stamps proxied responses with the gateway overhead.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let surface = surface_of(req.uri().path());
    let mut response = next.run(req).await;
    let elapsed = started.elapsed();
    let upstream = response.extensions().get::<UpstreamTime>().map(|u| u.0);
    let code = response.extensions().get::<ErrorCode>().map(|c| c.0);
    let metrics = state.metrics();
    metrics.observe(surface, response.status().as_u16(), code, upstream);
    if is_proxy_surface(surface) {
        let overhead = elapsed.saturating_sub(upstream.unwrap_or_default());
        metrics.observe_overhead(surface, overhead);
        let ms = format!("{:.3}", overhead.as_secs_f64() * 1000.0);
        if let Ok(value) = HeaderValue::from_str(&ms) {
            response.headers_mut().insert(OVERHEAD_NAME, value);
        }
    }
    response
}

/// `GET /metrics`: Prometheus text format, no authentication (aggregate counts only; no label
/// carries tenant data).
pub async fn serve(State(state): State<AppState>) -> Response {
    state.metrics().set_audit_queue_depth(state.audit().queue_depth());
    let body = state.metrics().render();
    (
        [(
            http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surfaces_are_classified_by_path() {
        assert_eq!(surface_of("/r/openai/v1/chat"), "route");
        assert_eq!(surface_of("/v1/proxy"), "ephemeral");
        assert_eq!(surface_of("/v1/execute"), "execute");
        assert_eq!(surface_of("/https://api.example.com/x"), "path");
        assert_eq!(surface_of("/v1/credentials"), "management");
        assert_eq!(surface_of("/health"), "other");
    }

    #[test]
    fn render_lists_observed_series() {
        let m = Metrics::new();
        m.observe("route", 200, None, Some(Duration::from_millis(3)));
        m.observe("path", 403, Some("ssrf_blocked"), None);
        m.observe("management", 429, Some("rate_limited"), None);
        m.observe_overhead("route", Duration::from_micros(120));
        let text = m.render();
        assert!(
            text.contains(r#"keystile_http_requests_total{surface="route",status="200"} 1"#),
            "{text}"
        );
        assert!(text.contains("keystile_ssrf_refusals_total 1"), "{text}");
        assert!(
            text.contains(r#"keystile_rate_limit_rejections_total{code="rate_limited"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"keystile_upstream_latency_seconds_count{surface="route"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"keystile_gateway_overhead_seconds_count{surface="route"} 1"#),
            "{text}"
        );
    }
}
