//! Keystile's rules for a project signature, and the Ed25519 check. Pure functions: the clock
//! is a parameter, so expiry and key rotation are tested with injected time.

use ed25519_dalek::{Signature, VerifyingKey};

use super::base::Component;
use super::parse::ParsedSignature;
use super::{CLOCK_SKEW_SECS, NONCE_RETENTION_SECS, SigError};
use crate::domain::ProjectName;
use crate::domain::project::KEYID_SUFFIX;

/// Components every project signature must cover (SPEC S7).
pub const REQUIRED: [Component; 3] = [Component::Method, Component::Authority, Component::TargetUri];

/// What a signature that passed [`check_params`] names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub project: ProjectName,
    /// The nonce, lowercased.
    pub nonce: String,
}

/// Picks the signature to verify: the first whose `keyid` has the project form, or else the
/// first one (which will then be refused for its `keyid`).
pub fn select(mut signatures: Vec<ParsedSignature>) -> Result<ParsedSignature, SigError> {
    if signatures.is_empty() {
        return Err(SigError::Missing);
    }
    let pos = signatures
        .iter()
        .position(|s| s.keyid.as_deref().is_some_and(|k| k.ends_with(KEYID_SUFFIX)))
        .unwrap_or(0);
    Ok(signatures.swap_remove(pos))
}

/// Checks everything but the cryptography, at `now` (Unix seconds): covered components
/// (`REQUIRED` plus `extra`), `alg`, `created` within the skew, `expires` present, after
/// `created`, not past and not beyond the nonce retention, a 32-hex-digit nonce and a project
/// `keyid`.
pub fn check_params(sig: &ParsedSignature, now: i64, extra: &[Component]) -> Result<Checked, SigError> {
    if REQUIRED.iter().chain(extra).any(|c| !sig.components.contains(c)) {
        return Err(SigError::Invalid("a required component is not covered"));
    }
    if sig.alg.as_deref().is_some_and(|a| a != "ed25519") {
        return Err(SigError::Invalid("alg must be ed25519"));
    }
    let created = sig.created.ok_or(SigError::Invalid("created is required"))?;
    let expires = sig.expires.ok_or(SigError::Invalid("expires is required"))?;
    if created > now.saturating_add(CLOCK_SKEW_SECS) {
        return Err(SigError::Invalid("created is in the future"));
    }
    if expires <= created {
        return Err(SigError::Invalid("expires must be after created"));
    }
    if expires - created > NONCE_RETENTION_SECS {
        return Err(SigError::Invalid("expires is too far after created"));
    }
    if now > expires || created < now.saturating_sub(CLOCK_SKEW_SECS) {
        return Err(SigError::Expired);
    }
    let nonce = sig.nonce.as_deref().ok_or(SigError::Invalid("nonce is required"))?;
    if nonce.len() != 32 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SigError::Invalid("nonce must be 32 hex digits"));
    }
    let keyid = sig.keyid.as_deref().ok_or(SigError::Invalid("keyid is required"))?;
    let project = ProjectName::from_keyid(keyid).ok_or(SigError::UnknownProject)?;
    Ok(Checked {
        project,
        nonce: nonce.to_ascii_lowercase(),
    })
}

/// Verifies the Ed25519 signature over `base` with `public_key` (strict verification: no
/// malleable or small-order encodings).
pub fn verify_signature(sig: &ParsedSignature, base: &str, public_key: &[u8; 32]) -> Result<(), SigError> {
    let key = VerifyingKey::from_bytes(public_key).map_err(|_| SigError::Invalid("signature does not verify"))?;
    let signature =
        Signature::from_slice(&sig.signature).map_err(|_| SigError::Invalid("signature does not verify"))?;
    key.verify_strict(base.as_bytes(), &signature)
        .map_err(|_| SigError::Invalid("signature does not verify"))
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use http::HeaderMap;

    use super::*;
    use crate::crypto::httpsig::RequestView;
    use crate::crypto::httpsig::parse::parse_signatures;

    /// RFC 9421 Appendix B.1.4 `test-key-ed25519`, public part (JWK `x`).
    const B14_PUBLIC_X: &str = "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs";
    const B26_INPUT: &str = r#"sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519""#;
    const B26_SIGNATURE: &str =
        "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:";

    fn b14_key() -> [u8; 32] {
        URL_SAFE_NO_PAD.decode(B14_PUBLIC_X).unwrap().try_into().unwrap()
    }

    /// The B.2 test request.
    fn b2_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("host", "example.com".parse().unwrap());
        h.insert("date", "Tue, 20 Apr 2021 02:07:55 GMT".parse().unwrap());
        h.insert("content-type", "application/json".parse().unwrap());
        h.insert(
            "content-digest",
            "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"
                .parse()
                .unwrap(),
        );
        h.insert("content-length", "18".parse().unwrap());
        h
    }

    fn b26_base(method: &str, headers: &HeaderMap) -> (ParsedSignature, String) {
        let sig = parse_signatures(Some(B26_INPUT), Some(B26_SIGNATURE))
            .unwrap()
            .remove(0);
        let view = RequestView {
            method,
            scheme: "https",
            authority: "example.com",
            path_and_query: "/foo?param=Value&Pet=dog",
            headers,
        };
        let base = view.signature_base(&sig.components, &sig.params_line).unwrap();
        (sig, base)
    }

    #[test]
    fn rfc_9421_appendix_b_2_6_ed25519_vector_verifies() {
        let headers = b2_headers();
        let (sig, base) = b26_base("POST", &headers);
        assert_eq!(
            base,
            "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n\"@method\": POST\n\"@path\": /foo\n\"@authority\": example.com\n\
             \"content-type\": application/json\n\"content-length\": 18\n\"@signature-params\": (\"date\" \"@method\" \
             \"@path\" \"@authority\" \"content-type\" \"content-length\");created=1618884473;keyid=\"test-key-ed25519\""
        );
        assert_eq!(verify_signature(&sig, &base, &b14_key()), Ok(()));
    }

    #[test]
    fn the_vector_fails_when_anything_covered_changes_or_the_key_differs() {
        let headers = b2_headers();
        let (sig, base) = b26_base("PUT", &headers);
        assert!(verify_signature(&sig, &base, &b14_key()).is_err(), "method");
        let mut h = b2_headers();
        h.insert("content-length", "19".parse().unwrap());
        let (sig, base) = b26_base("POST", &h);
        assert!(verify_signature(&sig, &base, &b14_key()).is_err(), "header");
        let (sig, base) = b26_base("POST", &headers);
        let other = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        assert!(
            verify_signature(&sig, &base, &other.verifying_key().to_bytes()).is_err(),
            "key"
        );
        let mut truncated = sig.clone();
        truncated.signature.pop();
        assert!(verify_signature(&truncated, &base, &b14_key()).is_err(), "length");
    }

    fn project_sig(params: &str) -> ParsedSignature {
        let input = format!(r#"sig1=("@method" "@authority" "@target-uri"){params}"#);
        parse_signatures(Some(&input), Some("sig1=:AA==:")).unwrap().remove(0)
    }

    const NONCE: &str = ";nonce=\"0123456789abcdef0123456789ABCDEF\";keyid=\"billing.agents.keystile.local\"";

    #[test]
    fn valid_parameters_name_the_project_and_the_lowercased_nonce() {
        let sig = project_sig(&format!(";created=1000;expires=1300{NONCE}"));
        let checked = check_params(&sig, 1100, &[]).unwrap();
        assert_eq!(checked.project.as_str(), "billing");
        assert_eq!(checked.nonce, "0123456789abcdef0123456789abcdef");
    }

    #[test]
    fn time_rules_use_the_injected_clock() {
        let sig = project_sig(&format!(";created=1000;expires=1300{NONCE}"));
        assert!(check_params(&sig, 1000 - CLOCK_SKEW_SECS, &[]).is_ok(), "skew allowed");
        assert_eq!(
            check_params(&sig, 1000 - CLOCK_SKEW_SECS - 1, &[]),
            Err(SigError::Invalid("created is in the future"))
        );
        assert!(check_params(&sig, 1300, &[]).is_ok(), "last second");
        assert_eq!(check_params(&sig, 1301, &[]), Err(SigError::Expired));
        let long = project_sig(&format!(";created=1000;expires=1600{NONCE}"));
        assert!(check_params(&long, 1300, &[]).is_ok());
        assert_eq!(
            check_params(&long, 1301, &[]),
            Err(SigError::Expired),
            "created too old"
        );
        let capped = project_sig(&format!(";created=1000;expires=1601{NONCE}"));
        assert_eq!(
            check_params(&capped, 1000, &[]),
            Err(SigError::Invalid("expires is too far after created"))
        );
        let backwards = project_sig(&format!(";created=1000;expires=1000{NONCE}"));
        assert!(matches!(check_params(&backwards, 1000, &[]), Err(SigError::Invalid(_))));
    }

    #[test]
    fn missing_or_malformed_parameters_are_invalid() {
        let k = ";keyid=\"billing.agents.keystile.local\"";
        let n = ";nonce=\"0123456789abcdef0123456789abcdef\"";
        for params in [
            format!(";expires=1300{n}{k}"),
            format!(";created=1000{n}{k}"),
            format!(";created=1000;expires=1300{k}"),
            format!(";created=1000;expires=1300;nonce=\"short\"{k}"),
            format!(";created=1000;expires=1300;nonce=\"0123456789abcdef0123456789abcdeg\"{k}"),
            format!(";created=1000;expires=1300{n}"),
            format!(";created=1000;expires=1300{n}{k};alg=\"rsa-pss-sha512\""),
        ] {
            assert!(
                matches!(
                    check_params(&project_sig(&params), 1000, &[]),
                    Err(SigError::Invalid(_))
                ),
                "{params}"
            );
        }
        let foreign = project_sig(&format!(";created=1000;expires=1300{n};keyid=\"someone-else\""));
        assert_eq!(check_params(&foreign, 1000, &[]), Err(SigError::UnknownProject));
    }

    #[test]
    fn required_components_must_be_covered() {
        for input in [
            r#"sig1=("@method" "@authority")"#,
            r#"sig1=("@method" "@target-uri")"#,
            r#"sig1=("@authority" "@target-uri")"#,
        ] {
            let input = format!("{input};created=1000;expires=1300{NONCE}");
            let sig = parse_signatures(Some(&input), Some("sig1=:AA==:")).unwrap().remove(0);
            assert!(
                matches!(check_params(&sig, 1000, &[]), Err(SigError::Invalid(_))),
                "{input}"
            );
        }
        let sig = project_sig(&format!(";created=1000;expires=1300{NONCE}"));
        assert!(matches!(
            check_params(&sig, 1000, &[Component::Header("content-digest".into())]),
            Err(SigError::Invalid(_))
        ));
    }

    #[test]
    fn selection_prefers_a_project_keyid() {
        let all = parse_signatures(
            Some(r#"other=("@method");keyid="x", mine=("@method");keyid="p.agents.keystile.local""#),
            Some("other=:AA==:, mine=:AQ==:"),
        )
        .unwrap();
        assert_eq!(select(all).unwrap().label, "mine");
        assert_eq!(select(Vec::new()), Err(SigError::Missing));
    }
}
