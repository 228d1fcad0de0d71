//! Routes (SPEC S5.4): a pre-registered upstream an unmodified SDK can use as its base URL.

use std::collections::BTreeSet;

use http::Method;
use serde::{Deserialize, Serialize};

use super::glob::Glob;
use super::{Alias, DomainError};

/// Longest per-route first-byte timeout, so a route cannot pin connections forever.
const MAX_TIMEOUT_MS: u64 = 10 * 60 * 1000;

/// What a route forwards to and under which rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// Scheme, host, optional port and path prefix; no query, fragment or user information.
    pub base_url: url::Url,
    pub credential: Alias,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "super::policy::methods")]
    pub allowed_methods: Option<BTreeSet<Method>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_paths: Option<Vec<Glob>>,
    #[serde(default)]
    pub follow_redirects: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

impl RouteSpec {
    /// Validates what serde cannot.
    pub fn validate(&self) -> Result<(), DomainError> {
        let u = &self.base_url;
        if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
            return Err(DomainError::new("base_url must be an absolute http or https URL"));
        }
        if !u.username().is_empty() || u.password().is_some() || u.query().is_some() || u.fragment().is_some() {
            return Err(DomainError::new(
                "base_url must not contain user information, a query or a fragment",
            ));
        }
        if self.timeout_ms.is_some_and(|t| t == 0 || t > MAX_TIMEOUT_MS) {
            return Err(DomainError::new(format!(
                "timeout_ms must be between 1 and {MAX_TIMEOUT_MS}"
            )));
        }
        Ok(())
    }

    /// The upstream URL for `rest` (the path after `/r/{route}/`) and the caller's query.
    /// Dot segments are resolved first; a result outside the base path is refused, so
    /// `../` (plain or percent-encoded) cannot climb out of the route.
    pub fn target(&self, rest: &str, query: Option<&str>) -> Result<url::Url, DomainError> {
        let base_path = self.base_url.path().trim_end_matches('/');
        let mut url = self.base_url.clone();
        url.set_path(&format!("{base_path}/{}", rest.trim_start_matches('/')));
        url.set_query(query.filter(|q| !q.is_empty()));
        let path = url.path();
        if super::policy::has_hidden_dot_segments(path) {
            return Err(DomainError::new("path contains encoded dot segments"));
        }
        let inside = base_path.is_empty() || path == base_path || path.starts_with(&format!("{base_path}/"));
        if !inside {
            return Err(DomainError::new("path leaves the route's base URL"));
        }
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(base: &str) -> RouteSpec {
        serde_json::from_value(serde_json::json!({"base_url": base, "credential": "openai"})).unwrap()
    }

    #[test]
    fn targets_join_base_path_rest_and_query() {
        let s = spec("https://api.openai.com/v1");
        assert_eq!(
            s.target("chat/completions", Some("a=1")).unwrap().as_str(),
            "https://api.openai.com/v1/chat/completions?a=1"
        );
        assert_eq!(s.target("", None).unwrap().as_str(), "https://api.openai.com/v1/");
        let root = spec("http://127.0.0.1:8080");
        assert_eq!(root.target("x/y", None).unwrap().as_str(), "http://127.0.0.1:8080/x/y");
    }

    #[test]
    fn dot_segments_cannot_leave_the_base_path() {
        let s = spec("https://api.example.com/v1");
        for rest in [
            "../admin",
            "a/../../admin",
            "%2e%2e/admin",
            ".%2E/admin",
            "..%2fadmin/../../x",
            "..%2F..%2Fadmin",
            "..;/admin",
        ] {
            match s.target(rest, None) {
                Err(_) => {}
                Ok(u) => assert!(u.path().starts_with("/v1/"), "{rest} -> {u}"),
            }
        }
    }

    #[test]
    fn invalid_specs_are_refused() {
        for base in [
            "ftp://x.com",
            "https://u:p@x.com",
            "https://x.com/?q=1",
            "https://x.com/#f",
        ] {
            assert!(spec(base).validate().is_err(), "{base}");
        }
        let mut s = spec("https://x.com");
        s.timeout_ms = Some(0);
        assert!(s.validate().is_err());
    }
}
