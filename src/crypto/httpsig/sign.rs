//! The project signer: the headers for one request, as `keystile run` and the tests send them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer as _, SigningKey};
use http::HeaderMap;
use rand::RngCore as _;
use url::{Position, Url};

use super::base::{Component, RequestView};
use super::digest::content_digest;
use super::{DEFAULT_LIFETIME_SECS, SigError};
use crate::domain::ProjectName;

/// The label the signer uses (a verifier accepts any).
pub const LABEL: &str = "sig1";

/// Signs requests for one project.
pub struct Signer {
    project: ProjectName,
    key: SigningKey,
}

/// The headers to add to a signed request.
#[derive(Debug, Clone)]
pub struct SignedHeaders {
    pub signature_input: String,
    pub signature: String,
    pub signature_agent: String,
    /// `Content-Digest`, when a body was signed.
    pub content_digest: Option<String>,
}

impl SignedHeaders {
    /// The headers as `(name, value)` pairs.
    pub fn pairs(&self) -> Vec<(&'static str, &str)> {
        let mut out = vec![
            ("signature-input", self.signature_input.as_str()),
            ("signature", self.signature.as_str()),
            ("signature-agent", self.signature_agent.as_str()),
        ];
        if let Some(d) = &self.content_digest {
            out.push(("content-digest", d.as_str()));
        }
        out
    }
}

impl Signer {
    /// A signer for `project` with its private key.
    pub fn new(project: ProjectName, key: SigningKey) -> Self {
        Self { project, key }
    }

    /// Signs `method url` (and `body`, through `Content-Digest`) created at `created` (Unix
    /// seconds), with a fresh random nonce.
    pub fn sign(&self, method: &str, url: &Url, body: Option<&[u8]>, created: i64) -> Result<SignedHeaders, SigError> {
        let mut nonce = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        self.sign_with(method, url, body, created, &hex::encode(nonce))
    }

    /// As [`sign`](Self::sign) with a given nonce (tests replay with it).
    pub fn sign_with(
        &self,
        method: &str,
        url: &Url,
        body: Option<&[u8]>,
        created: i64,
        nonce: &str,
    ) -> Result<SignedHeaders, SigError> {
        let mut components = vec![Component::Method, Component::Authority, Component::TargetUri];
        let mut headers = HeaderMap::new();
        let digest = body.map(content_digest);
        if let Some(d) = &digest {
            components.push(Component::Header("content-digest".into()));
            headers.insert(
                "content-digest",
                d.parse()
                    .map_err(|_| SigError::Invalid("digest is not a header value"))?,
            );
        }
        let keyid = self.project.keyid();
        let names: Vec<String> = components.iter().map(|c| format!("\"{}\"", c.name())).collect();
        let params_line = format!(
            "({});created={created};expires={};nonce=\"{nonce}\";keyid=\"{keyid}\";alg=\"ed25519\"",
            names.join(" "),
            created + DEFAULT_LIFETIME_SECS
        );
        let authority = authority(url)?;
        let view = RequestView {
            method,
            scheme: url.scheme(),
            authority: &authority,
            path_and_query: &url[Position::BeforePath..Position::AfterQuery],
            headers: &headers,
        };
        let base = view.signature_base(&components, &params_line)?;
        let signature = self.key.sign(base.as_bytes());
        Ok(SignedHeaders {
            signature_input: format!("{LABEL}={params_line}"),
            signature: format!("{LABEL}=:{}:", STANDARD.encode(signature.to_bytes())),
            signature_agent: format!("\"https://{keyid}\""),
            content_digest: digest,
        })
    }
}

/// `host[:port]` as a client sends it in `Host` (the scheme's default port omitted).
pub fn authority(url: &Url) -> Result<String, SigError> {
    let host = url.host_str().ok_or(SigError::Invalid("URL has no host"))?;
    Ok(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::httpsig::{check_params, parse_signatures, verify_signature};

    #[test]
    fn what_the_signer_sends_verifies_and_binds_the_body() {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let public = key.verifying_key().to_bytes();
        let signer = Signer::new(ProjectName::parse("billing").unwrap(), key);
        let url = Url::parse("http://127.0.0.1:7400/v1/secrets?env=prod%2Feu+west").unwrap();
        let h = signer.sign("PUT", &url, Some(b"{}"), 1000).unwrap();
        let sig = parse_signatures(Some(&h.signature_input), Some(&h.signature))
            .unwrap()
            .remove(0);
        let checked = check_params(&sig, 1000, &[Component::Header("content-digest".into())]).unwrap();
        assert_eq!(checked.project.as_str(), "billing");
        let mut headers = HeaderMap::new();
        headers.insert("content-digest", h.content_digest.clone().unwrap().parse().unwrap());
        let view = RequestView {
            method: "PUT",
            scheme: "http",
            authority: "127.0.0.1:7400",
            path_and_query: "/v1/secrets?env=prod%2Feu+west",
            headers: &headers,
        };
        let base = view.signature_base(&sig.components, &sig.params_line).unwrap();
        assert_eq!(verify_signature(&sig, &base, &public), Ok(()));
        let other = RequestView {
            path_and_query: "/v1/secrets?env=prod",
            ..view
        };
        let base = other.signature_base(&sig.components, &sig.params_line).unwrap();
        assert!(verify_signature(&sig, &base, &public).is_err());
    }

    #[test]
    fn default_ports_are_left_out_of_the_authority() {
        assert_eq!(
            authority(&Url::parse("https://a.example:443/x").unwrap()).unwrap(),
            "a.example"
        );
        assert_eq!(
            authority(&Url::parse("http://A.example:8080/").unwrap()).unwrap(),
            "a.example:8080"
        );
        assert_eq!(authority(&Url::parse("http://[::1]:80/").unwrap()).unwrap(), "[::1]");
    }
}
