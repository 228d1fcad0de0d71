//! Header hygiene for both directions of the proxy (SPEC S5): hop-by-hop headers removed,
//! the caller's Keystile credentials never forwarded.

use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue};
use secrecy::{ExposeSecret as _, SecretString};

/// Hop-by-hop headers (RFC 9110 §7.6.1) plus legacy proxy headers.
const HOP_BY_HOP: &[HeaderName] = &[
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
];

/// Removes hop-by-hop headers, including any named by `Connection`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named = connection_named(headers);
    remove_matching(headers, |name, _| is_hop_by_hop(name, &named));
}

/// Prepares the caller's headers for the upstream: hop-by-hop gone, `Host` gone (it is set
/// from the target), the caller's `Authorization`, every `X-Keystile-*` header and an
/// `x-api-key` carrying a Keystile key removed.
pub fn strip_for_upstream(headers: &mut HeaderMap, caller_token: &SecretString) {
    let named = connection_named(headers);
    let token = caller_token.expose_secret();
    remove_matching(headers, |name, value| {
        is_hop_by_hop(name, &named)
            || name == header::HOST
            || name == header::AUTHORIZATION
            || name.as_str().starts_with("x-keystile-")
            // Headers that make some servers act on a different method or path than the one
            // the egress policy checked.
            || OVERRIDES.contains(&name.as_str())
            // The caller's key never leaves, whatever header an SDK put it in (`x-api-key`,
            // `api-key`, `x-goog-api-key`, …).
            || carries_key(value, token)
    });
}

/// The headers a `Connection` header names (to be removed with it).
fn connection_named(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect()
}

/// Whether a header is hop-by-hop: a fixed one, a legacy one, or one `Connection` named.
fn is_hop_by_hop(name: &HeaderName, named: &[HeaderName]) -> bool {
    HOP_BY_HOP.contains(name) || matches!(name.as_str(), "keep-alive" | "proxy-connection") || named.contains(name)
}

/// Whether a header value carries the caller's Keystile key (or any Keystile key).
fn carries_key(value: &HeaderValue, token: &str) -> bool {
    let text = String::from_utf8_lossy(value.as_bytes());
    let bare = text.trim().rsplit(' ').next().unwrap_or("");
    text.contains(token) || bare.starts_with("kst_")
}

/// Removes every header (all its values) for which `doomed` holds on any of its values. One
/// pass over the headers present instead of one removal per name that might be: this runs
/// twice per proxied call.
fn remove_matching(headers: &mut HeaderMap, mut doomed: impl FnMut(&HeaderName, &HeaderValue) -> bool) {
    let mut names: Vec<HeaderName> = Vec::new();
    for (name, value) in headers.iter() {
        if !names.contains(name) && doomed(name, value) {
            names.push(name.clone());
        }
    }
    for name in names {
        headers.remove(name);
    }
}

/// Method and URL override headers.
const OVERRIDES: &[&str] = &[
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-original-url",
    "x-rewrite-url",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_credentials_and_hop_by_hop_headers_never_go_upstream() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer kst_abc".parse().unwrap());
        h.insert("x-keystile-credential", "github".parse().unwrap());
        h.insert("x-keystile-token", "kst_abc".parse().unwrap());
        h.insert("x-api-key", "kst_abc".parse().unwrap());
        h.insert("connection", "close, x-secret-hop".parse().unwrap());
        h.insert("x-secret-hop", "1".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("host", "gateway".parse().unwrap());
        h.insert("accept", "application/json".parse().unwrap());
        strip_for_upstream(&mut h, &SecretString::from("kst_abc"));
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("accept"));
    }

    #[test]
    fn the_callers_key_is_removed_from_any_header_and_overrides_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert("api-key", "kst_abc".parse().unwrap());
        h.insert("x-goog-api-key", "kst_other".parse().unwrap());
        h.insert("x-custom", "token kst_abc".parse().unwrap());
        h.insert("x-http-method-override", "DELETE".parse().unwrap());
        h.insert("x-original-url", "/admin".parse().unwrap());
        h.insert("x-fine", "value".parse().unwrap());
        strip_for_upstream(&mut h, &SecretString::from("kst_abc"));
        assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["x-fine"]);
    }

    #[test]
    fn hop_by_hop_headers_go_with_every_value_and_others_stay() {
        let mut h = HeaderMap::new();
        h.append("connection", "keep-alive".parse().unwrap());
        h.append("connection", "X-Named, x-other".parse().unwrap());
        h.append("x-named", "1".parse().unwrap());
        h.append("x-named", "2".parse().unwrap());
        h.append("x-other", "3".parse().unwrap());
        h.insert("te", "trailers".parse().unwrap());
        h.insert("transfer-encoding", "chunked".parse().unwrap());
        h.insert("proxy-connection", "keep-alive".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.append("set-cookie", "a=1".parse().unwrap());
        h.append("set-cookie", "b=2".parse().unwrap());
        h.insert("host", "upstream".parse().unwrap());
        strip_hop_by_hop(&mut h);
        let mut left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["host", "set-cookie"]);
        assert_eq!(h.get_all("set-cookie").iter().count(), 2);
    }

    #[test]
    fn a_header_with_one_value_carrying_the_key_goes_whole() {
        let mut h = HeaderMap::new();
        h.append("x-multi", "fine".parse().unwrap());
        h.append("x-multi", "Bearer kst_abc".parse().unwrap());
        h.insert("x-fine", "value".parse().unwrap());
        strip_for_upstream(&mut h, &SecretString::from("kst_abc"));
        assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["x-fine"]);
    }

    #[test]
    fn a_non_keystile_x_api_key_passes() {
        let mut h = HeaderMap::new();
        h.insert("x-api-key", "their-own".parse().unwrap());
        strip_for_upstream(&mut h, &SecretString::from("kst_abc"));
        assert!(h.contains_key("x-api-key"));
    }
}
