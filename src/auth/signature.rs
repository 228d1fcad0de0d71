//! Projects as callers: verifying a request signed per RFC 9421 (SPEC S7) against the
//! project's keys, once per nonce.
//!
//! The request's scheme and authority are those the *client* used: taken from the configured
//! `public_url`, or from a `Forwarded` header when (and only when) the TCP peer is a trusted
//! proxy, or else from the request itself. Must not decide what a project may read.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use http::HeaderMap;
use http::request::Parts;

use crate::api::AppState;
use crate::config::PublicAddress;
use crate::crypto::httpsig::digest::check_content_digest;
use crate::crypto::httpsig::parse::combined_field;
use crate::crypto::httpsig::{
    Component, NONCE_RETENTION_SECS, RequestView, SigError, check_params, parse_signatures, select, verify_signature,
};
use crate::store::ProjectRecord;

/// Most keys tried for one `keyid` (one per tenant holding a project of that name, plus keys
/// in their rotation overlap).
const MAX_CANDIDATE_KEYS: usize = 32;

/// Where the client sent the request: scheme, authority and the path prefix a proxy removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub scheme: String,
    pub authority: String,
    pub path_prefix: String,
}

/// Verifies a signed request and returns the project that signed it. `body` is checked against
/// a covered `Content-Digest`, which is required when `body` is `Some`.
pub async fn verify_request(
    state: &AppState,
    peer: IpAddr,
    parts: &Parts,
    body: Option<&[u8]>,
    now: DateTime<Utc>,
) -> Result<ProjectRecord, SigError> {
    let input = combined_field(&parts.headers, "signature-input")?;
    let signature = combined_field(&parts.headers, "signature")?;
    let sig = select(parse_signatures(input.as_deref(), signature.as_deref())?)?;
    let digest = Component::Header("content-digest".into());
    let extra = if body.is_some() {
        std::slice::from_ref(&digest)
    } else {
        &[]
    };
    let checked = check_params(&sig, now.timestamp(), extra)?;
    check_agent(&parts.headers, &checked.project.keyid())?;
    if let Some(body) = body {
        let field =
            combined_field(&parts.headers, "content-digest")?.ok_or(SigError::Invalid("Content-Digest is required"))?;
        check_content_digest(&field, body)?;
    }

    let origin = origin(state.public_address(), peer, parts)?;
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let full_path = format!("{}{path_and_query}", origin.path_prefix);
    let view = RequestView {
        method: parts.method.as_str(),
        scheme: &origin.scheme,
        authority: &origin.authority,
        path_and_query: &full_path,
        headers: &parts.headers,
    };
    let base = view.signature_base(&sig.components, &sig.params_line)?;

    let candidates = state
        .store()
        .project_keys_by_name(&checked.project, now)
        .await
        .map_err(|e| {
            tracing::error!(error = format!("{e:#}"), "looking up project keys");
            SigError::Invalid("project keys unavailable")
        })?;
    if candidates.is_empty() {
        return Err(SigError::UnknownProject);
    }
    let project = candidates
        .iter()
        .take(MAX_CANDIDATE_KEYS)
        .find(|(_, key)| verify_signature(&sig, &base, &key.public_key).is_ok())
        .map(|(p, _)| p.clone())
        .ok_or(SigError::Invalid("signature does not verify"))?;

    // Only a verified signature spends its nonce, so garbage cannot burn a client's nonces.
    let keep_until = now + Duration::seconds(NONCE_RETENTION_SECS + 1);
    let fresh = state
        .store()
        .consume_nonce(&project.id, &checked.nonce, keep_until, now)
        .await
        .map_err(|e| {
            tracing::error!(error = format!("{e:#}"), "recording a signature nonce");
            SigError::Invalid("nonce could not be recorded")
        })?;
    if !fresh {
        return Err(SigError::Replayed);
    }
    Ok(project)
}

/// `Signature-Agent`, when sent, must name the same agent as the `keyid`: an sf-string holding
/// the keyid or `https://<keyid>`, alone or as a dictionary member.
fn check_agent(headers: &HeaderMap, keyid: &str) -> Result<(), SigError> {
    let Some(field) = combined_field(headers, "signature-agent")? else {
        return Ok(());
    };
    let names_keyid = |s: &str| {
        let host = s.strip_prefix("https://").unwrap_or(s).trim_end_matches('/');
        host == keyid
    };
    if let Ok(item) = sfv::Parser::new(&field).parse::<sfv::Item>() {
        if item.bare_item.as_string().is_some_and(|s| names_keyid(s.as_str())) {
            return Ok(());
        }
    } else if let Ok(dict) = sfv::Parser::new(&field).parse::<sfv::Dictionary>() {
        let ok = dict.values().all(|entry| match entry {
            sfv::ListEntry::Item(i) => i.bare_item.as_string().is_some_and(|s| names_keyid(s.as_str())),
            sfv::ListEntry::InnerList(_) => false,
        });
        if ok && !dict.is_empty() {
            return Ok(());
        }
    }
    Err(SigError::Invalid("Signature-Agent does not match the keyid"))
}

/// Reconstructs where the client sent the request.
pub fn origin(public: &PublicAddress, peer: IpAddr, parts: &Parts) -> Result<Origin, SigError> {
    if let Some(url) = &public.public_url {
        let authority = crate::crypto::httpsig::sign::authority(url)?;
        return Ok(Origin {
            scheme: url.scheme().to_owned(),
            authority,
            path_prefix: url.path().trim_end_matches('/').to_owned(),
        });
    }
    let peer = peer.to_canonical();
    let mut scheme = "http".to_owned();
    let mut authority = request_authority(parts)?;
    if public.trusted_proxies.iter().any(|net| net.contains(&peer))
        && let Some(field) = combined_field(&parts.headers, "forwarded")?
        && let Some(last) = forwarded_elements(&field).pop()
    {
        for (key, value) in last {
            match key.as_str() {
                "proto" if matches!(value.to_ascii_lowercase().as_str(), "http" | "https") => {
                    scheme = value.to_ascii_lowercase();
                }
                "host" => {
                    let parsed: http::uri::Authority = value
                        .parse()
                        .map_err(|_| SigError::Invalid("Forwarded host is malformed"))?;
                    authority = parsed.as_str().to_ascii_lowercase();
                }
                _ => {}
            }
        }
    }
    Ok(Origin {
        authority: without_default_port(&authority, &scheme),
        scheme,
        path_prefix: String::new(),
    })
}

/// The client's address for per-address limits: the TCP peer, or — when the peer is a trusted
/// proxy — the `for=` of the last `Forwarded` element (the one that proxy appended), so that
/// one client behind the proxy cannot get every other client refused. Never a header of an
/// untrusted peer.
pub fn client_address(public: &PublicAddress, peer: IpAddr, headers: &http::HeaderMap) -> IpAddr {
    let peer = peer.to_canonical();
    if !public.trusted_proxies.iter().any(|net| net.contains(&peer)) {
        return peer;
    }
    let Ok(Some(field)) = combined_field(headers, "forwarded") else {
        return peer;
    };
    forwarded_elements(&field)
        .pop()
        .and_then(|last| last.into_iter().find(|(k, _)| k == "for").map(|(_, v)| v))
        .and_then(|v| forwarded_node_ip(&v))
        .map_or(peer, |ip| ip.to_canonical())
}

/// The address in a `Forwarded` node (`192.0.2.1`, `192.0.2.1:80`, `[2001:db8::1]:443`); `None`
/// for `unknown`, obfuscated identifiers or anything malformed.
fn forwarded_node_ip(node: &str) -> Option<IpAddr> {
    if let Some(rest) = node.strip_prefix('[') {
        return rest
            .split(']')
            .next()?
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(IpAddr::V6);
    }
    node.parse::<IpAddr>()
        .ok()
        .or_else(|| node.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
}

fn request_authority(parts: &Parts) -> Result<String, SigError> {
    if let Some(host) = parts.headers.get(http::header::HOST) {
        let text = host.to_str().map_err(|_| SigError::Invalid("Host is malformed"))?;
        let parsed: http::uri::Authority = text.parse().map_err(|_| SigError::Invalid("Host is malformed"))?;
        return Ok(parsed.as_str().to_ascii_lowercase());
    }
    parts
        .uri
        .authority()
        .map(|a| a.as_str().to_ascii_lowercase())
        .ok_or(SigError::Invalid("request has no authority"))
}

fn without_default_port(authority: &str, scheme: &str) -> String {
    let default = if scheme == "https" { ":443" } else { ":80" };
    authority.strip_suffix(default).unwrap_or(authority).to_owned()
}

/// Splits a `Forwarded` field (RFC 7239 §4) into elements of `(lowercase key, value)` pairs,
/// honouring quoted strings. Malformed pairs are skipped.
fn forwarded_elements(field: &str) -> Vec<Vec<(String, String)>> {
    let mut elements = vec![Vec::new()];
    let mut key = String::new();
    let mut value = String::new();
    let (mut in_value, mut quoted, mut escaped) = (false, false, false);
    let finish_pair = |key: &mut String, value: &mut String, elements: &mut Vec<Vec<(String, String)>>| {
        let k = key.trim().to_ascii_lowercase();
        if !k.is_empty()
            && let Some(last) = elements.last_mut()
        {
            last.push((k, value.trim().to_owned()));
        }
        key.clear();
        value.clear();
    };
    for c in field.chars() {
        if quoted {
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => quoted = false,
                _ => {
                    value.push(c);
                    escaped = false;
                }
            }
            continue;
        }
        match c {
            '"' if in_value => quoted = true,
            '=' if !in_value => in_value = true,
            ';' => {
                finish_pair(&mut key, &mut value, &mut elements);
                in_value = false;
            }
            ',' => {
                finish_pair(&mut key, &mut value, &mut elements);
                in_value = false;
                elements.push(Vec::new());
            }
            _ if in_value => value.push(c),
            _ => key.push(c),
        }
    }
    finish_pair(&mut key, &mut value, &mut elements);
    elements
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut req = http::Request::builder().uri("/v1/secrets?env=prod");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(()).unwrap().into_parts().0
    }

    fn public(url: Option<&str>, trusted: &[&str]) -> PublicAddress {
        PublicAddress {
            public_url: url.map(|u| u.parse().unwrap()),
            trusted_proxies: trusted.iter().map(|t| t.parse().unwrap()).collect(),
        }
    }

    const PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 1, 2, 3));

    #[test]
    fn without_configuration_the_host_header_is_the_authority() {
        let p = parts(&[
            ("host", "Gateway.Local:80"),
            ("forwarded", "proto=https;host=evil.example"),
        ]);
        let o = origin(&public(None, &[]), PEER, &p).unwrap();
        assert_eq!((o.scheme.as_str(), o.authority.as_str()), ("http", "gateway.local"));
    }

    #[test]
    fn forwarded_is_honoured_only_from_a_trusted_peer_and_its_last_element_counts() {
        let p = parts(&[
            ("host", "10.0.0.5:7400"),
            (
                "forwarded",
                "for=1.2.3.4;host=spoofed.example, for=5.6.7.8;proto=https;host=\"Keystile.Example.com\"",
            ),
        ]);
        let o = origin(&public(None, &["10.0.0.0/8"]), PEER, &p).unwrap();
        assert_eq!(
            (o.scheme.as_str(), o.authority.as_str()),
            ("https", "keystile.example.com")
        );
        let o = origin(&public(None, &["192.168.0.0/16"]), PEER, &p).unwrap();
        assert_eq!((o.scheme.as_str(), o.authority.as_str()), ("http", "10.0.0.5:7400"));
        let bad = parts(&[("host", "h"), ("forwarded", "host=\"a/b c\"")]);
        assert!(origin(&public(None, &["10.0.0.0/8"]), PEER, &bad).is_err());
    }

    #[test]
    fn a_public_url_wins_and_may_carry_a_path_prefix() {
        let p = parts(&[("host", "internal:7400")]);
        let o = origin(&public(Some("https://ks.example.com:443/gateway/"), &[]), PEER, &p).unwrap();
        assert_eq!(
            o,
            Origin {
                scheme: "https".into(),
                authority: "ks.example.com".into(),
                path_prefix: "/gateway".into()
            }
        );
    }

    #[test]
    fn a_signature_agent_must_name_the_keyid() {
        let keyid = "web.agents.keystile.local";
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert("signature-agent", v.parse().unwrap());
            check_agent(&h, keyid)
        };
        assert_eq!(check_agent(&HeaderMap::new(), keyid), Ok(()), "optional");
        assert_eq!(with("\"https://web.agents.keystile.local\""), Ok(()));
        assert_eq!(with("\"web.agents.keystile.local\""), Ok(()));
        assert_eq!(with("sig1=\"https://web.agents.keystile.local\""), Ok(()));
        for bad in [
            "\"https://other.agents.keystile.local\"",
            "sig1=\"https://web.agents.keystile.local\", sig2=\"https://evil.example\"",
            "web.agents.keystile.local",
            "(\"x\")",
        ] {
            assert!(with(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_client_address_comes_from_forwarded_only_behind_a_trusted_proxy() {
        let public = PublicAddress {
            public_url: None,
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
        };
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "forwarded",
            "for=203.0.113.9, for=\"[2001:db8::7]:4711\";proto=https"
                .parse()
                .unwrap(),
        );
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(
            client_address(&public, proxy, &headers),
            "2001:db8::7".parse::<IpAddr>().unwrap(),
            "the element the trusted proxy appended"
        );
        assert_eq!(
            client_address(&public, stranger, &headers),
            stranger,
            "untrusted peers: never a header"
        );
        for value in ["for=unknown", "for=_hidden", "for=\"not an ip\"", "proto=https"] {
            headers.insert("forwarded", value.parse().unwrap());
            assert_eq!(client_address(&public, proxy, &headers), proxy, "{value}");
        }
        headers.insert("forwarded", "for=192.0.2.60:8080".parse().unwrap());
        assert_eq!(
            client_address(&public, proxy, &headers),
            "192.0.2.60".parse::<IpAddr>().unwrap()
        );
        headers.remove("forwarded");
        assert_eq!(client_address(&public, proxy, &headers), proxy);
    }

    #[test]
    fn forwarded_elements_parse_quoted_strings() {
        let e = forwarded_elements("for=\"[2001:db8::1]:4711\";proto=https, host=\"a,b\\\"c\";By=x");
        assert_eq!(e.len(), 2);
        assert_eq!(e[0][1], ("proto".into(), "https".into()));
        assert_eq!(e[1][0], ("host".into(), "a,b\"c".into()));
        assert_eq!(e[1][1], ("by".into(), "x".into()));
    }
}
