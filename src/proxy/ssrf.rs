//! SSRF address classification (SPEC S6): is an address one a credential may reach without
//! `allow_private_network`?
//!
//! Decisions are made on parsed addresses, never on strings, with explicit prefix tables
//! (`Ipv4Addr::is_private` misses 100.64/10; `Ipv6Addr::is_loopback` is false for
//! `::ffff:127.0.0.1`). IPv6 forms that embed an IPv4 address (mapped, compatible, NAT64,
//! 6to4, Teredo) are judged by the address they embed or refused outright.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::{Ipv4Net, Ipv6Net};

use crate::domain::policy::PrivateNetwork;

/// Non-public IPv4 ranges and why each is refused.
const V4_DENY: &[(&str, &str)] = &[
    ("0.0.0.0/8", "'this network' (0.0.0.0/8)"),
    ("10.0.0.0/8", "private network (RFC 1918)"),
    ("100.64.0.0/10", "carrier-grade NAT (100.64.0.0/10)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (incl. cloud metadata)"),
    ("172.16.0.0/12", "private network (RFC 1918)"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation range"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private network (RFC 1918)"),
    ("198.18.0.0/15", "benchmarking range"),
    ("198.51.100.0/24", "documentation range"),
    ("203.0.113.0/24", "documentation range"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved (incl. broadcast)"),
];

/// Non-public IPv6 ranges inside 2000::/3 (everything outside 2000::/3 but NAT64 is refused).
const V6_DENY: &[(&str, &str)] = &[
    ("2001:db8::/32", "documentation range"),
    ("2001:2::/48", "benchmarking range"),
    ("2001::/23", "IETF protocol assignments"),
    ("3fff::/20", "documentation range"),
    ("5f00::/16", "segment routing (SRv6) SIDs"),
];

/// Why an address may not be reached without `allow_private_network`, or `None` if public.
pub fn non_public_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

/// The guard's whole decision on the addresses a target resolved to (or its literal address),
/// before anything is dialled: every address must pass, or the target is refused whole.
///
/// `own` are the gateway's listening addresses, refused whatever `allow` says. The error is
/// the reason shown to the caller.
pub fn check_addresses(addrs: &[IpAddr], port: u16, allow: &PrivateNetwork, own: &[SocketAddr]) -> Result<(), String> {
    if addrs.is_empty() {
        return Err("target host has no addresses".into());
    }
    addrs.iter().try_for_each(|ip| check_address(*ip, port, allow, own))
}

/// [`check_addresses`] for one address.
pub fn check_address(ip: IpAddr, port: u16, allow: &PrivateNetwork, own: &[SocketAddr]) -> Result<(), String> {
    // `::ffff:a.b.c.d` is dialled as a.b.c.d: judge it (and match it against `own`) as such.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    if own.iter().any(|a| a.port() == port && is_same_host(a.ip(), ip)) {
        return Err("target is the gateway itself".into());
    }
    match non_public_reason(ip) {
        Some(why) if !allow.permits(ip) => Err(format!("target address is not public: {why}")),
        _ => Ok(()),
    }
}

/// Whether dialling `target` reaches a socket listening on `listening`: the same address, or
/// either side unspecified (a wildcard listener takes loopback connections, and dialling
/// 0.0.0.0 or `::` reaches the local host).
fn is_same_host(listening: IpAddr, target: IpAddr) -> bool {
    let local = |ip: IpAddr| ip.is_loopback() || ip.is_unspecified();
    listening == target
        || (listening.is_unspecified() && local(target))
        || (target.is_unspecified() && local(listening))
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    V4_DENY.iter().find_map(|(net, why)| {
        // The table is a constant of valid CIDRs; a parse failure would be a typo caught by tests.
        let net: Ipv4Net = net.parse().ok()?;
        net.contains(&ip).then_some(*why)
    })
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    let bits = u128::from(ip);
    // IPv4-mapped ::ffff:0:0/96 and IPv4-compatible ::/96 (which also holds :: and ::1).
    if bits >> 32 == 0xffff || bits >> 32 == 0 {
        return Some("IPv4-mapped or IPv4-compatible IPv6 address");
    }
    // NAT64 well-known prefix 64:ff9b::/96: judged by the embedded IPv4 address.
    if bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        return v4_reason(Ipv4Addr::from(bits as u32)).map(|_| "NAT64 address embedding a non-public IPv4 address");
    }
    // Outside global unicast 2000::/3: link-local, unique-local, site-local, multicast,
    // discard-only 100::/64, local-use NAT64 64:ff9b:1::/48 and every reserved block.
    if seg[0] & 0xe000 != 0x2000 {
        return Some(match seg[0] {
            0xfe80..=0xfebf => "IPv6 link-local",
            0xfc00..=0xfdff => "IPv6 unique-local (fc00::/7)",
            0xff00..=0xffff => "IPv6 multicast",
            _ => "reserved IPv6 range",
        });
    }
    // 6to4 2002::/16 embeds an IPv4 address in bits 16..48.
    if seg[0] == 0x2002 {
        let embedded = Ipv4Addr::from((bits >> 80) as u32);
        return v4_reason(embedded).map(|_| "6to4 address embedding a non-public IPv4 address");
    }
    // Teredo 2001::/32: server IPv4 in bits 32..64, client IPv4 inverted in the low 32 bits.
    if seg[0] == 0x2001 && seg[1] == 0 {
        let server = Ipv4Addr::from((bits >> 64) as u32);
        let client = Ipv4Addr::from(!(bits as u32));
        return (v4_reason(server).is_some() || v4_reason(client).is_some())
            .then_some("Teredo address embedding a non-public IPv4 address");
    }
    V6_DENY.iter().find_map(|(net, why)| {
        let net: Ipv6Net = net.parse().ok()?;
        net.contains(&ip).then_some(*why)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::client::{DialHost, dial_target};
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| ip(s)).collect()
    }

    fn only(nets: &[&str]) -> PrivateNetwork {
        PrivateNetwork::Only(nets.iter().map(|n| n.parse().unwrap()).collect())
    }

    /// What the gateway does with a target URL, decided without a socket.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Verdict {
        /// `parse_target` refuses it: 400 `invalid_request`.
        Reject,
        /// The guard refuses the address it would dial: 403 `ssrf_blocked`.
        Deny,
        /// Dialled (under the default policy: public addresses only).
        Allow,
        /// A name: the verdict depends on what it resolves to.
        Name,
    }

    /// `parse_target` → the URI the client is handed → the connector's dial target →
    /// `check_addresses` under `allow`, with the gateway listening on `own`.
    fn verdict_with(raw: &str, allow: &PrivateNetwork, own: &[SocketAddr]) -> Verdict {
        let Ok(url) = crate::proxy::parse_target(raw) else {
            return Verdict::Reject;
        };
        let uri: http::Uri = url.as_str().parse().expect("a parsed target is a valid URI");
        match dial_target(&uri).expect("a parsed target has a host") {
            (DialHost::Ip(ip), port) => match check_addresses(&[ip], port, allow, own) {
                Ok(()) => Verdict::Allow,
                Err(_) => Verdict::Deny,
            },
            (DialHost::Name(_), _) => Verdict::Name,
        }
    }

    fn verdict(raw: &str) -> Verdict {
        verdict_with(raw, &PrivateNetwork::Deny, &[])
    }

    /// Every URL line of SSRF_CASES.md. Where it says DENY for a URL with user information,
    /// the URL is rejected as malformed (400) before any address is looked at.
    #[test]
    fn ssrf_cases_urls() {
        use Verdict::*;
        let cases: &[(&str, Verdict)] = &[
            // Literal and encoded IPv4.
            ("http://127.0.0.1/", Deny),
            ("http://127.127.127.127/", Deny),
            ("http://127.1/", Deny),
            ("http://2130706433/", Deny),
            ("http://0x7f000001/", Deny),
            ("http://017700000001/", Deny),
            ("http://0177.0x0.0x0.0x1/", Deny),
            ("http://0/", Deny),
            ("http://0.0.0.0:8080/", Deny),
            ("http://192.0x00A80001/", Deny),
            ("http://10.0.0.1/", Deny),
            ("http://172.16.0.1/", Deny),
            ("http://192.168.0.1/", Deny),
            ("http://169.254.169.254/latest/meta-data/", Deny),
            ("http://100.64.0.1/", Deny),
            ("http://100.127.255.254/", Deny),
            ("http://100.63.255.254/", Allow),
            ("http://100.128.0.1/", Allow),
            ("http://255.255.255.255/", Deny),
            ("http://224.0.0.1/", Deny),
            ("http://240.0.0.1/", Deny),
            ("http://192.0.2.1/", Deny),
            ("http://198.18.0.1/", Deny),
            ("http://192.0.0.1/", Deny),
            ("http://192.88.99.1/", Deny),
            ("http://8.8.8.8/", Allow),
            ("https://8.8.8.8:8443/", Allow),
            // IPv6.
            ("http://[::1]/", Deny),
            ("http://[0000::1]:80/", Deny),
            ("http://[::]/", Deny),
            ("http://[::ffff:127.0.0.1]/", Deny),
            ("http://[::ffff:7f00:1]/", Deny),
            ("http://[::ffff:169.254.169.254]/", Deny),
            ("http://[::127.0.0.1]/", Deny),
            ("http://[64:ff9b::7f00:1]/", Deny),
            ("http://[64:ff9b::a9fe:a9fe]/", Deny),
            ("http://[64:ff9b:1::a00:1]/", Deny),
            ("http://[2002:7f00:1::]/", Deny),
            ("http://[2002:a00:1::1]/", Deny),
            ("http://[2001:0:4136:e378:8000:63bf:3f57:fdf2]/", Deny),
            ("http://[fe80::1]/", Deny),
            ("http://[fc00::1]/", Deny),
            ("http://[fd00:ec2::254]/", Deny),
            ("http://[fec0::1]/", Deny),
            ("http://[ff02::2]/", Deny),
            ("http://[2001:db8::1]/", Deny),
            ("http://[2001:10::1]/", Deny),
            ("http://[100::1]/", Deny),
            ("http://[fe80::1%25eth0]/", Reject),
            ("http://[fe80::1%eth0]/", Reject),
            ("http://[2606:4700:4700::1111]/", Allow),
            // Names: resolved by the connector (see tests/api/ssrf.rs); NUL is refused.
            ("http://localhost/", Name),
            ("http://LOCALHOST/", Name),
            ("http://foo.example.com\0.evil.com/", Reject),
            ("http://foo.example.com%00.evil.com/", Reject),
            // URL confusion.
            ("http://user:pw@evil.com@127.0.0.1/", Reject),
            ("http://127.0.0.1:80@evil.com/", Reject),
            ("http://user@127.0.0.1/", Reject),
            ("http://:pw@127.0.0.1/", Reject),
            ("http://127.0.0.1\\@evil.com/", Deny),
            ("http:\\\\127.0.0.1\\x", Deny),
            ("http://127.0.0.1#@evil.com/", Deny),
            ("http://127.0.0.1?@evil.com/", Deny),
            ("file:///etc/passwd", Reject),
            ("gopher://127.0.0.1:70/_x", Reject),
            ("ftp://127.0.0.1/", Reject),
            ("dict://127.0.0.1:11211/stat", Reject),
            ("ws://127.0.0.1/", Reject),
            ("//127.0.0.1/", Reject),
            ("127.0.0.1", Reject),
        ];
        for (raw, expected) in cases {
            assert_eq!(verdict(raw), *expected, "{raw:?}");
        }
    }

    /// The backslash form is dialled at the address before it, never at the name after it.
    #[test]
    fn backslash_is_a_path_separator() {
        let url = crate::proxy::parse_target("http://127.0.0.1\\@evil.com/").unwrap();
        assert_eq!(url.host_str(), Some("127.0.0.1"));
        assert_eq!(url.path(), "/@evil.com/");
    }

    #[test]
    fn private_network_settings_and_the_gateway_itself() {
        let own: &[SocketAddr] = &["127.0.0.1:7400".parse().unwrap()];
        let any = PrivateNetwork::Any;
        assert_eq!(verdict_with("http://127.0.0.1:7401/", &any, own), Verdict::Allow);
        for raw in [
            "http://127.0.0.1:7400/",
            "http://2130706433:7400/",
            "http://[::ffff:127.0.0.1]:7400/",
            "http://0.0.0.0:7400/",
            "http://0:7400/",
        ] {
            assert_eq!(verdict_with(raw, &any, own), Verdict::Deny, "{raw}");
        }
        let wildcard: &[SocketAddr] = &["0.0.0.0:7400".parse().unwrap(), "[::]:7400".parse().unwrap()];
        for raw in [
            "http://127.0.0.1:7400/",
            "http://127.0.0.2:7400/",
            "http://[::1]:7400/",
            "http://[::]:7400/",
            "http://0.0.0.0:7400/",
        ] {
            assert_eq!(verdict_with(raw, &any, wildcard), Verdict::Deny, "{raw}");
        }
        assert_eq!(verdict_with("http://8.8.8.8:7400/", &any, wildcard), Verdict::Allow);
        let only2 = only(&["127.0.0.2/32"]);
        assert_eq!(verdict_with("http://127.0.0.2/", &only2, &[]), Verdict::Allow);
        assert_eq!(verdict_with("http://127.0.0.3/", &only2, &[]), Verdict::Deny);
        assert_eq!(verdict_with("http://[::ffff:127.0.0.2]/", &only2, &[]), Verdict::Allow);
        assert_eq!(verdict_with("http://127.0.0.1/", &only2, &[]), Verdict::Deny);
    }

    #[test]
    fn address_lists_are_refused_whole() {
        let deny = PrivateNetwork::Deny;
        let any = PrivateNetwork::Any;
        let only2 = only(&["127.0.0.2/32"]);
        let own: Vec<SocketAddr> = vec!["127.0.0.1:7400".parse().unwrap(), "[::1]:7400".parse().unwrap()];
        // (addresses, port, setting, own addresses, allowed?)
        type Case<'a> = (&'a [&'a str], u16, &'a PrivateNetwork, &'a [SocketAddr], bool);
        let cases: &[Case] = &[
            (&["8.8.8.8"], 443, &deny, &[], true),
            (&["8.8.8.8", "2606:4700:4700::1111"], 443, &deny, &[], true),
            (&["8.8.8.8", "10.0.0.1"], 443, &deny, &[], false),
            (&["10.0.0.1", "8.8.8.8"], 443, &deny, &[], false),
            (&["8.8.8.8", "169.254.169.254"], 80, &deny, &[], false),
            (&["8.8.8.8", "::1"], 80, &deny, &[], false),
            (&["2606:4700:4700::1111", "fd00:ec2::254"], 80, &deny, &[], false),
            (&["127.0.0.1"], 80, &deny, &[], false),
            (&["127.0.0.2"], 80, &only2, &[], true),
            (&["127.0.0.2", "127.0.0.3"], 80, &only2, &[], false),
            (&["127.0.0.3", "127.0.0.2"], 80, &only2, &[], false),
            (&["127.0.0.2", "8.8.8.8"], 80, &only2, &[], true),
            // IPv4-mapped answers are judged as the IPv4 address they carry.
            (&["::ffff:127.0.0.1"], 80, &deny, &[], false),
            (&["8.8.8.8", "::ffff:10.0.0.1"], 80, &deny, &[], false),
            (&["::ffff:169.254.169.254"], 80, &deny, &[], false),
            (&["::ffff:127.0.0.2"], 80, &only2, &[], true),
            (&["::ffff:127.0.0.3"], 80, &only2, &[], false),
            (&["::127.0.0.1"], 80, &deny, &[], false),
            (&["64:ff9b::7f00:1"], 80, &deny, &[], false),
            // The gateway itself, even where every private address is allowed.
            (&["127.0.0.1"], 7400, &any, &own, false),
            (&["::ffff:127.0.0.1"], 7400, &any, &own, false),
            (&["::1"], 7400, &any, &own, false),
            (&["0.0.0.0"], 7400, &any, &own, false),
            (&["8.8.8.8", "127.0.0.1"], 7400, &any, &own, false),
            (&["127.0.0.1"], 7401, &any, &own, true),
            (&["127.0.0.2"], 7400, &any, &own, true),
            (&["10.0.0.1", "127.0.0.1", "::1"], 80, &any, &own, true),
        ];
        for (list, port, allow, own, ok) in cases {
            let got = check_addresses(&ips(list), *port, allow, own);
            assert_eq!(
                got.is_ok(),
                *ok,
                "{list:?}:{port} under {allow:?}, own {own:?}: {got:?}"
            );
        }
        assert!(
            check_addresses(&[], 80, &any, &[]).is_err(),
            "no address is no connection"
        );
        let why = check_addresses(&ips(&["8.8.8.8", "10.0.0.1"]), 80, &deny, &[]).unwrap_err();
        assert!(why.contains("RFC 1918"), "{why}");
        let why = check_addresses(&ips(&["127.0.0.1"]), 7400, &any, &own).unwrap_err();
        assert!(why.contains("gateway itself"), "{why}");
    }

    fn denied(s: &str) -> bool {
        non_public_reason(s.parse().unwrap()).is_some()
    }

    #[test]
    fn tables_parse() {
        for (net, _) in V4_DENY {
            net.parse::<Ipv4Net>().unwrap();
        }
        for (net, _) in V6_DENY {
            net.parse::<Ipv6Net>().unwrap();
        }
    }

    #[test]
    fn ssrf_cases_ipv4() {
        for d in [
            "127.0.0.1",
            "127.127.127.127",
            "0.0.0.0",
            "192.168.0.1",
            "10.0.0.1",
            "172.16.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "192.0.0.1",
            "192.88.99.1",
        ] {
            assert!(denied(d), "{d} must be denied");
        }
        for a in ["100.63.255.254", "100.128.0.1", "8.8.8.8", "1.1.1.1"] {
            assert!(!denied(a), "{a} must be allowed");
        }
    }

    #[test]
    fn ssrf_cases_ipv6() {
        for d in [
            "::1",
            "::",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::a00:1",
            "2002:7f00:1::",
            "2002:a00:1::1",
            "2001:0:4136:e378:8000:63bf:3f57:fdf2",
            "fe80::1",
            "fc00::1",
            "fd00:ec2::254",
            "fec0::1",
            "ff02::2",
            "2001:db8::1",
            "2001:10::1",
            "100::1",
        ] {
            assert!(denied(d), "{d} must be denied");
        }
        for a in [
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(!denied(a), "{a} must be allowed");
        }
    }

    proptest! {
        #[test]
        fn every_mapped_or_compatible_form_is_denied(v4 in any::<u32>()) {
            let mapped = Ipv4Addr::from(v4).to_ipv6_mapped();
            let compatible = Ipv4Addr::from(v4).to_ipv6_compatible();
            prop_assert!(non_public_reason(IpAddr::V6(mapped)).is_some());
            prop_assert!(non_public_reason(IpAddr::V6(compatible)).is_some());
        }

        #[test]
        fn embedded_forms_follow_the_embedded_address(v4 in any::<u32>()) {
            let inner = non_public_reason(IpAddr::V4(Ipv4Addr::from(v4))).is_some();
            let nat64 = Ipv6Addr::from((0x0064_ff9b_u128 << 96) | u128::from(v4));
            let six_to_four = Ipv6Addr::from((0x2002_u128 << 112) | (u128::from(v4) << 80) | 1);
            prop_assert_eq!(non_public_reason(IpAddr::V6(nat64)).is_some(), inner);
            prop_assert_eq!(non_public_reason(IpAddr::V6(six_to_four)).is_some(), inner);
        }

        /// Decimal, hex, octal and dotted spellings of an IPv4 address all parse to that
        /// address, and the guard judges the parsed address exactly as `non_public_reason`.
        #[test]
        fn encoded_ipv4_urls_are_judged_by_their_address(v4 in any::<u32>(), port in 1u16..) {
            let addr = Ipv4Addr::from(v4);
            let [a, b, c, d] = addr.octets();
            let forms = [
                format!("{v4}"),
                format!("0x{v4:x}"),
                format!("0X{v4:X}"),
                format!("0{v4:o}"),
                format!("{a}.{b}.{c}.{d}"),
                format!("0x{a:x}.0{b:o}.{c}.0x{d:02x}"),
                format!("{a}.{}", (u32::from(b) << 16) | (u32::from(c) << 8) | u32::from(d)),
            ];
            let public = non_public_reason(IpAddr::V4(addr)).is_none();
            for form in forms {
                let raw = format!("http://{form}:{port}/");
                let url = crate::proxy::parse_target(&raw).unwrap();
                prop_assert_eq!(url.host(), Some(url::Host::Ipv4(addr)), "{}", raw);
                let uri: http::Uri = url.as_str().parse().unwrap();
                prop_assert_eq!(dial_target(&uri).unwrap(), (DialHost::Ip(IpAddr::V4(addr)), port));
                let expected = if public { Verdict::Allow } else { Verdict::Deny };
                prop_assert_eq!(verdict(&raw), expected, "{}", raw);
            }
        }

        /// The same through IPv6 spellings of the address.
        #[test]
        fn ipv6_forms_of_ipv4_urls_are_never_more_permissive(v4 in any::<u32>()) {
            let addr = Ipv4Addr::from(v4);
            let public = non_public_reason(IpAddr::V4(addr)).is_none();
            let mapped = format!("http://[{}]/", addr.to_ipv6_mapped());
            let mapped_hex = format!("http://[::ffff:{:x}:{:x}]/", v4 >> 16, v4 & 0xffff);
            let expected = if public { Verdict::Allow } else { Verdict::Deny };
            prop_assert_eq!(verdict(&mapped), expected, "{}", mapped);
            prop_assert_eq!(verdict(&mapped_hex), expected, "{}", mapped_hex);
            let compatible = format!("http://[::{addr}]/");
            prop_assert_eq!(verdict(&compatible), Verdict::Deny, "{}", compatible);
        }

        #[test]
        fn loopback_block_is_always_denied(a in any::<u8>(), b in any::<u8>(), c in any::<u8>()) {
            prop_assert!(non_public_reason(IpAddr::V4(Ipv4Addr::new(127, a, b, c))).is_some());
        }
    }
}
