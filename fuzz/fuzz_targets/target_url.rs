//! Any bytes as a target URL: parsing never panics, and whatever parses to an IP host is
//! classified consistently with the address itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(url) = keystile::proxy::parse_target(text) else { return };
    assert!(matches!(url.scheme(), "http" | "https"));
    assert!(url.username().is_empty() && url.password().is_none());
    let ip = match url.host() {
        Some(url::Host::Ipv4(a)) => std::net::IpAddr::V4(a),
        Some(url::Host::Ipv6(a)) => std::net::IpAddr::V6(a),
        _ => return,
    };
    let _ = keystile::proxy::ssrf::non_public_reason(ip);
    if ip.is_loopback() || ip.is_unspecified() {
        assert!(keystile::proxy::ssrf::non_public_reason(ip).is_some(), "{text}");
    }
});
