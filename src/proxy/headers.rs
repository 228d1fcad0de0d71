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
    let token = caller_token.expose_secret();
    let is_keystile_key = headers
        .get_all("x-api-key")
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.starts_with("kst_") || v == token));
    if is_keystile_key {
        headers.remove("x-api-key");
    }
}

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
    fn a_non_keystile_x_api_key_passes() {
        let mut h = HeaderMap::new();
        h.insert("x-api-key", "their-own".parse().unwrap());
        strip_for_upstream(&mut h, &SecretString::from("kst_abc"));
        assert!(h.contains_key("x-api-key"));
    }
}
