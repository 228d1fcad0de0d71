//! Egress policy: where a credential may be sent.
//!
//! A secret is injected only into a request whose target matches its credential's policy
//! (SPEC S4). The policy is checked on the parsed URL; the SSRF guard then checks the
//! resolved addresses (see `proxy::ssrf`).

use std::borrow::Cow;
use std::collections::BTreeSet;

use http::Method;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::DomainError;
use super::glob::Glob;

/// An allowed host: an exact name (`api.github.com`), a subdomain glob (`*.example.com`,
/// which matches `a.example.com` and `a.b.example.com` but not `example.com`), or an IP
/// literal. Stored lowercased; compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    Exact(String),
    Subdomains(String),
}

impl HostPattern {
    /// Parses one `allowed_hosts` entry.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let lower = raw.trim().to_ascii_lowercase();
        let (is_glob, name) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest.to_owned()),
            None => (false, lower.clone()),
        };
        let bracketed_v6 = name.starts_with('[') && name.ends_with(']');
        let valid_name = !name.is_empty()
            && name.len() <= 253
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
            && !name.starts_with('.')
            && !name.ends_with('.');
        if !(valid_name || (bracketed_v6 && !is_glob)) {
            return Err(DomainError::new(format!(
                "invalid allowed host {raw:?}: use a host name, '*.domain' or an IP address"
            )));
        }
        Ok(if is_glob {
            Self::Subdomains(name)
        } else {
            Self::Exact(name.trim_matches(|c| c == '[' || c == ']').to_owned())
        })
    }

    /// Whether the (already lowercased, unbracketed) host matches.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            Self::Exact(name) => name == host,
            Self::Subdomains(domain) => host
                .strip_suffix(domain.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        }
    }
}

impl Serialize for HostPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Exact(n) => s.serialize_str(n),
            Self::Subdomains(d) => s.serialize_str(&format!("*.{d}")),
        }
    }
}

impl<'de> Deserialize<'de> for HostPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        HostPattern::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Whether a credential may reach private, loopback or otherwise non-public addresses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum PrivateNetwork {
    /// Public addresses only (the default).
    #[default]
    Deny,
    /// Any address (for credentials of local services).
    Any,
    /// Only these networks, in addition to public addresses.
    Only(Vec<IpNet>),
}

impl PrivateNetwork {
    /// Whether a non-public `addr` is permitted by this setting.
    pub fn permits(&self, addr: std::net::IpAddr) -> bool {
        match self {
            Self::Deny => false,
            Self::Any => true,
            Self::Only(nets) => nets.iter().any(|n| n.contains(&addr)),
        }
    }
}

impl Serialize for PrivateNetwork {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Deny => s.serialize_bool(false),
            Self::Any => s.serialize_bool(true),
            Self::Only(nets) => nets.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for PrivateNetwork {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Flag(bool),
            Nets(Vec<String>),
        }
        match Raw::deserialize(d)
            .map_err(|_| serde::de::Error::custom("allow_private_network must be a boolean or a list of CIDRs"))?
        {
            Raw::Flag(false) => Ok(Self::Deny),
            Raw::Flag(true) => Ok(Self::Any),
            Raw::Nets(list) => {
                let mut nets = Vec::with_capacity(list.len());
                for raw in list {
                    let net = raw
                        .parse::<IpNet>()
                        .or_else(|_| raw.parse::<std::net::IpAddr>().map(IpNet::from))
                        .map_err(|_| serde::de::Error::custom(format!("invalid CIDR {raw:?}")))?;
                    nets.push(net.trunc());
                }
                if nets.is_empty() {
                    Ok(Self::Deny)
                } else {
                    Ok(Self::Only(nets))
                }
            }
        }
    }
}

/// The egress policy of a credential (SPEC S4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressPolicy {
    pub allowed_hosts: Vec<HostPattern>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "methods")]
    pub allowed_methods: Option<BTreeSet<Method>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_paths: Option<Vec<Glob>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_ports: Option<BTreeSet<u16>>,
    #[serde(default)]
    pub allow_http: bool,
    #[serde(default)]
    pub allow_private_network: PrivateNetwork,
}

/// Why a target was refused by a policy; the text names the rule, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EgressDenied(pub String);

impl EgressPolicy {
    /// Validates invariants serde cannot express.
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.allowed_hosts.is_empty() {
            return Err(DomainError::new("policy.allowed_hosts must not be empty"));
        }
        if self.allowed_ports.as_ref().is_some_and(|p| p.contains(&0)) {
            return Err(DomainError::new("policy.allowed_ports must not contain 0"));
        }
        Ok(())
    }

    /// Checks scheme, host, port, method and path of a parsed target URL.
    pub fn check(&self, method: &Method, url: &url::Url) -> Result<(), EgressDenied> {
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => {
                return Err(EgressDenied(
                    "plain http is not allowed by the credential's policy".into(),
                ));
            }
            other => return Err(EgressDenied(format!("scheme {other:?} is not allowed"))),
        }
        let host = host_for_policy(url).ok_or_else(|| EgressDenied("target has no host".into()))?;
        if !self.allowed_hosts.iter().any(|p| p.matches(&host)) {
            return Err(EgressDenied(format!(
                "host {host} is not in the credential's allowed_hosts"
            )));
        }
        let port = url.port_or_known_default().unwrap_or(0);
        if self.allowed_ports.as_ref().is_some_and(|ports| !ports.contains(&port)) {
            return Err(EgressDenied(format!(
                "port {port} is not in the credential's allowed_ports"
            )));
        }
        if self.allowed_methods.as_ref().is_some_and(|m| !m.contains(method)) {
            return Err(EgressDenied(format!(
                "method {method} is not in the credential's allowed_methods"
            )));
        }
        if self.allowed_paths.is_some() && has_hidden_dot_segments(url.path()) {
            return Err(EgressDenied("path contains encoded dot segments".into()));
        }
        if self
            .allowed_paths
            .as_ref()
            .is_some_and(|p| !p.iter().any(|g| g.matches(url.path())))
        {
            return Err(EgressDenied("path is not in the credential's allowed_paths".into()));
        }
        Ok(())
    }
}

/// Whether a (normalized) URL path still hides a dot segment that an upstream decoding `%2F`,
/// `%2E` or `\\`, or stripping `;` parameters, would resolve: `..%2Fadmin`, `%2e%2e%5c`, `..;/`.
/// The `url` crate resolves plain and `%2e` dot segments; these forms survive it, so path rules
/// refuse them rather than let the upstream see a different path than the one checked.
pub fn has_hidden_dot_segments(path: &str) -> bool {
    if !path.contains(['%', '&']) {
        // Nothing to decode (`+` is kept as is below) and nothing to split the path at: it is
        // its own decoded form, without the allocations below.
        return has_dot_segment(path);
    }
    has_dot_segment(&decoded(path))
}

/// A path as an upstream decoding it would see it: percent escapes decoded, nothing else (`+`
/// and `&` are kept as they are).
fn decoded(path: &str) -> Cow<'_, str> {
    percent_encoding::percent_decode_str(path).decode_utf8_lossy()
}

/// Whether a decoded path has a `.` or `..` segment, `\\` counting as `/` and `;` parameters
/// stripped.
fn has_dot_segment(decoded: &str) -> bool {
    decoded
        .split(['/', '\\'])
        .map(|seg| seg.split(';').next().unwrap_or(""))
        .any(|seg| seg == ".." || seg == ".")
}

/// The host of a URL as policies compare it: lowercase, IPv6 without brackets. Borrowed from
/// the URL when it already has that form (the usual case: the URL parser lowercases the hosts
/// of http and https URLs and writes IPv4 addresses in dotted-decimal form).
pub fn host_for_policy(url: &url::Url) -> Option<Cow<'_, str>> {
    match url.host()? {
        url::Host::Domain(d) => {
            let d = d.trim_end_matches('.');
            Some(if d.bytes().any(|b| b.is_ascii_uppercase()) {
                Cow::Owned(d.to_ascii_lowercase())
            } else {
                Cow::Borrowed(d)
            })
        }
        // `host_str` is the address's dotted-decimal form, as `Ipv4Addr` writes it.
        url::Host::Ipv4(_) => url.host_str().map(Cow::Borrowed),
        url::Host::Ipv6(a) => Some(Cow::Owned(a.to_string())),
    }
}

/// Serde helpers for a set of HTTP methods written as strings.
pub(crate) mod methods {
    use std::collections::BTreeSet;

    use http::Method;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(m: &Option<BTreeSet<Method>>, s: S) -> Result<S::Ok, S::Error> {
        match m {
            Some(set) => s.collect_seq(set.iter().map(Method::as_str)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<BTreeSet<Method>>, D::Error> {
        let raw: Option<Vec<String>> = Option::deserialize(d)?;
        raw.map(|list| {
            list.into_iter()
                .map(|m| {
                    let upper = m.to_ascii_uppercase();
                    Method::from_bytes(upper.as_bytes())
                        .map_err(|_| serde::de::Error::custom(format!("invalid HTTP method {m:?}")))
                })
                .collect()
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_hosts_are_lowercase_without_a_trailing_dot_or_brackets() {
        let host = |u: &str| host_for_policy(&url::Url::parse(u).unwrap()).map(Cow::into_owned);
        assert_eq!(host("https://API.Example.COM./x").as_deref(), Some("api.example.com"));
        assert_eq!(host("https://api.example.com/x").as_deref(), Some("api.example.com"));
        assert_eq!(host("http://127.1/").as_deref(), Some("127.0.0.1"));
        assert_eq!(host("http://0x7f000001/").as_deref(), Some("127.0.0.1"));
        assert_eq!(host("http://[::FFFF:1.2.3.4]/").as_deref(), Some("::ffff:1.2.3.4"));
        assert_eq!(host("http://[2001:DB8::1]:8080/").as_deref(), Some("2001:db8::1"));
    }

    fn policy(json: serde_json::Value) -> EgressPolicy {
        let p: EgressPolicy = serde_json::from_value(json).unwrap();
        p.validate().unwrap();
        p
    }

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[test]
    fn hosts_match_exactly_or_as_strict_subdomains() {
        let p = policy(serde_json::json!({"allowed_hosts": ["api.github.com", "*.githubusercontent.com"]}));
        assert!(p.check(&Method::GET, &url("https://API.GitHub.com/user")).is_ok());
        assert!(
            p.check(&Method::GET, &url("https://raw.githubusercontent.com/x"))
                .is_ok()
        );
        assert!(
            p.check(&Method::GET, &url("https://a.b.githubusercontent.com/x"))
                .is_ok()
        );
        assert!(p.check(&Method::GET, &url("https://githubusercontent.com/x")).is_err());
        assert!(
            p.check(&Method::GET, &url("https://evilgithubusercontent.com/x"))
                .is_err()
        );
        assert!(p.check(&Method::GET, &url("https://api.github.com.evil.com/")).is_err());
    }

    #[test]
    fn scheme_port_method_and_path_rules_apply() {
        let p = policy(serde_json::json!({
            "allowed_hosts": ["api.example.com"],
            "allowed_methods": ["get", "POST"],
            "allowed_paths": ["/user*", "/repos/*"],
            "allowed_ports": [443]
        }));
        assert!(p.check(&Method::GET, &url("https://api.example.com/user")).is_ok());
        assert!(p.check(&Method::POST, &url("https://api.example.com/repos/a")).is_ok());
        assert!(p.check(&Method::DELETE, &url("https://api.example.com/user")).is_err());
        assert!(p.check(&Method::GET, &url("https://api.example.com/admin")).is_err());
        assert!(
            p.check(&Method::GET, &url("https://api.example.com:8443/user"))
                .is_err()
        );
        assert!(p.check(&Method::GET, &url("http://api.example.com/user")).is_err());
        assert!(p.check(&Method::GET, &url("ftp://api.example.com/user")).is_err());
    }

    #[test]
    fn encoded_traversal_cannot_slip_past_path_rules() {
        let p = policy(serde_json::json!({"allowed_hosts": ["x.com"], "allowed_paths": ["/repos/myorg/*"]}));
        for path in [
            "/repos/myorg/..%2F..%2Fadmin",
            "/repos/myorg/..%2f..%5cadmin",
            "/repos/myorg/..;/admin",
            "/repos/myorg/%2e%2e%2fadmin",
            // Behind an `&`, which a form decoder would have taken for a field separator.
            "/repos/myorg/a&/..;/admin",
            "/repos/myorg/a&b/..%2fadmin",
        ] {
            assert!(
                p.check(&Method::GET, &url(&format!("https://x.com{path}"))).is_err(),
                "{path}"
            );
        }
        assert!(
            p.check(&Method::GET, &url("https://x.com/repos/myorg/a%2Fb")).is_ok(),
            "an encoded slash alone is fine"
        );
        assert!(!has_hidden_dot_segments("/a/b.c/..d/e"));
    }

    #[test]
    fn a_path_without_escapes_is_checked_as_its_decoded_form_would_be() {
        for path in [
            "/a/b",
            "/a/../b",
            "/a/..;x/b",
            "/a\\..\\b",
            "/a+b/.+/c",
            "/.",
            "/a;/b",
            "/a=b/./c",
            "/a&b/c",
            "",
        ] {
            assert_eq!(has_hidden_dot_segments(path), has_dot_segment(&decoded(path)), "{path}");
        }
    }

    #[test]
    fn invalid_policies_are_refused() {
        assert!(serde_json::from_value::<EgressPolicy>(serde_json::json!({"allowed_hosts": ["a b"]})).is_err());
        assert!(
            serde_json::from_value::<EgressPolicy>(serde_json::json!({"allowed_hosts": ["x"], "bogus": 1})).is_err()
        );
        assert!(
            serde_json::from_value::<EgressPolicy>(
                serde_json::json!({"allowed_hosts": ["x"], "allow_private_network": ["nope"]})
            )
            .is_err()
        );
        let empty: EgressPolicy = serde_json::from_value(serde_json::json!({"allowed_hosts": []})).unwrap();
        assert!(empty.validate().is_err());
    }

    #[test]
    fn private_network_setting_round_trips() {
        let p = policy(serde_json::json!({"allowed_hosts": ["x"], "allow_private_network": ["10.1.0.0/16"]}));
        assert!(p.allow_private_network.permits("10.1.2.3".parse().unwrap()));
        assert!(!p.allow_private_network.permits("10.2.0.1".parse().unwrap()));
        let back = serde_json::to_value(&p).unwrap();
        assert_eq!(back["allow_private_network"], serde_json::json!(["10.1.0.0/16"]));
    }
}
