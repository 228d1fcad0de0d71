//! Header hygiene for both directions of the proxy (SPEC S5): hop-by-hop headers removed,
//! the caller's Keystile credentials never forwarded.

use http::HeaderMap;
use http::header::{self, HeaderName};
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
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in HOP_BY_HOP.iter().chain(named.iter()) {
        headers.remove(name);
    }
    for legacy in ["keep-alive", "proxy-connection"] {
        headers.remove(legacy);
    }
}

/// Prepares the caller's headers for the upstream: hop-by-hop gone, `Host` gone (it is set
/// from the target), the caller's `Authorization`, every `X-Keystile-*` header and an
/// `x-api-key` carrying a Keystile key removed.
pub fn strip_for_upstream(headers: &mut HeaderMap, caller_token: &SecretString) {
    strip_hop_by_hop(headers);
    headers.remove(header::HOST);
    headers.remove(header::AUTHORIZATION);
    let keystile: Vec<HeaderName> = headers
        .keys()
        .filter(|n| n.as_str().starts_with("x-keystile-"))
        .cloned()
        .collect();
    for name in keystile {
        headers.remove(name);
    }
    // Headers that make some servers act on a different method or path than the one the
    // egress policy checked.
    for name in OVERRIDES {
        headers.remove(*name);
    }
    // The caller's key never leaves, whatever header an SDK put it in (`x-api-key`,
    // `api-key`, `x-goog-api-key`, …).
    let token = caller_token.expose_secret();
    let carrying: Vec<HeaderName> = headers
        .iter()
        .filter(|(_, v)| {
            let text = String::from_utf8_lossy(v.as_bytes());
            let bare = text.trim().rsplit(' ').next().unwrap_or("");
            text.contains(token) || bare.starts_with("kst_")
        })
        .map(|(n, _)| n.clone())
        .collect();
    for name in carrying {
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
    fn a_non_keystile_x_api_key_passes() {
        let mut h = HeaderMap::new();
        h.insert("x-api-key", "their-own".parse().unwrap());
        strip_for_upstream(&mut h, &SecretString::from("kst_abc"));
        assert!(h.contains_key("x-api-key"));
    }
}
