//! SSRF address classification (SPEC S6): is an address one a credential may reach without
//! `allow_private_network`?
//!
//! Decisions are made on parsed addresses, never on strings, with explicit prefix tables
//! (`Ipv4Addr::is_private` misses 100.64/10; `Ipv6Addr::is_loopback` is false for
//! `::ffff:127.0.0.1`). IPv6 forms that embed an IPv4 address (mapped, compatible, NAT64,
//! 6to4, Teredo) are judged by the address they embed or refused outright.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

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
    use proptest::prelude::*;

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

        #[test]
        fn loopback_block_is_always_denied(a in any::<u8>(), b in any::<u8>(), c in any::<u8>()) {
            prop_assert!(non_public_reason(IpAddr::V4(Ipv4Addr::new(127, a, b, c))).is_some());
        }
    }
}
