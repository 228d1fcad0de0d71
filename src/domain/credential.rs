//! Credential kinds, their secret data and how each is injected into a request (SPEC S4).
//!
//! Secret data lives only in [`CredentialSecret`], whose fields are `SecretString`s: their
//! `Debug` is redacted and exposing them is an explicit `expose_secret()` call.

use std::collections::BTreeMap;

use base64::Engine as _;
use http::header::{HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::DomainError;

/// The kinds of credential this build can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    ApiKey,
    BasicAuth,
    Headers,
}

impl CredentialKind {
    /// The wire name (`api_key`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiKey => "api_key",
            Self::BasicAuth => "basic_auth",
            Self::Headers => "headers",
        }
    }

    /// Parses the wire name.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        match raw {
            "api_key" => Ok(Self::ApiKey),
            "basic_auth" => Ok(Self::BasicAuth),
            "headers" => Ok(Self::Headers),
            other => Err(DomainError::new(format!(
                "unsupported credential type {other:?}; supported: api_key, basic_auth, headers"
            ))),
        }
    }
}

/// Where and how an `api_key` credential is placed in the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum Injection {
    /// A header whose value is `format` with `{key}` replaced.
    Header { header: String, format: String },
    /// A query parameter carrying the key.
    Query { query: String },
}

/// Headers a credential may never be injected as: they belong to the transport.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
];

impl Injection {
    /// Validates an injection rule for a credential kind.
    pub fn validate(&self, kind: CredentialKind) -> Result<(), DomainError> {
        if kind != CredentialKind::ApiKey {
            return Err(DomainError::new(format!(
                "inject is only configurable for api_key credentials, not {}",
                kind.as_str()
            )));
        }
        match self {
            Self::Header { header, format } => {
                let name = HeaderName::from_bytes(header.as_bytes())
                    .map_err(|_| DomainError::new("inject.header is not a valid header name"))?;
                if RESERVED_HEADERS.contains(&name.as_str()) || name.as_str().starts_with("x-keystile-") {
                    return Err(DomainError::new(format!("inject.header {name} is reserved")));
                }
                if !format.contains("{key}") {
                    return Err(DomainError::new("inject.format must contain {key}"));
                }
                check_header_safe(format, "inject.format")?;
                if format.len() > 512 {
                    return Err(DomainError::new(
                        "inject.format must be at most 512 printable characters",
                    ));
                }
                Ok(())
            }
            Self::Query { query } => {
                let ok = !query.is_empty()
                    && query.len() <= 128
                    && query
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
                if ok {
                    Ok(())
                } else {
                    Err(DomainError::new(
                        "inject.query must be 1-128 characters of A-Z, a-z, 0-9, '_', '-', '.'",
                    ))
                }
            }
        }
    }
}

/// The decrypted data of a credential. Never `Debug`-printed in the clear.
pub enum CredentialSecret {
    ApiKey {
        key: SecretString,
    },
    BasicAuth {
        username: SecretString,
        password: SecretString,
    },
    Headers {
        headers: Vec<(HeaderName, SecretString)>,
    },
}

impl std::fmt::Debug for CredentialSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialSecret([REDACTED])")
    }
}

/// The `data` object as callers send it; every value is a secret from the moment it is parsed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecretData {
    key: Option<SecretString>,
    username: Option<SecretString>,
    password: Option<SecretString>,
    headers: Option<BTreeMap<String, SecretString>>,
}

/// What an injection adds to an outgoing request.
#[derive(Clone)]
pub struct Injected {
    /// Headers to set (replacing any the caller sent under the same name).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// A query parameter to append.
    pub query: Option<(String, Zeroizing<String>)>,
}

impl CredentialSecret {
    /// Builds the secret of `kind` from a caller's `data` object.
    pub fn from_raw(kind: CredentialKind, raw: RawSecretData) -> Result<Self, DomainError> {
        let non_empty = |s: &Option<SecretString>| s.as_ref().is_some_and(|v| !v.expose_secret().is_empty());
        match kind {
            CredentialKind::ApiKey => match raw {
                RawSecretData {
                    key: Some(key),
                    username: None,
                    password: None,
                    headers: None,
                } if non_empty(&Some(key.clone())) => {
                    check_header_safe(key.expose_secret(), "data.key")?;
                    Ok(Self::ApiKey { key })
                }
                _ => Err(DomainError::new(
                    "api_key data must be {\"key\": \"…\"} with a non-empty key",
                )),
            },
            CredentialKind::BasicAuth => match raw {
                RawSecretData {
                    key: None,
                    username: Some(username),
                    password: Some(password),
                    headers: None,
                } if non_empty(&Some(username.clone())) => {
                    if username.expose_secret().contains(':') {
                        return Err(DomainError::new("data.username must not contain ':'"));
                    }
                    Ok(Self::BasicAuth { username, password })
                }
                _ => Err(DomainError::new(
                    "basic_auth data must be {\"username\": \"…\", \"password\": \"…\"}",
                )),
            },
            CredentialKind::Headers => match raw {
                RawSecretData {
                    key: None,
                    username: None,
                    password: None,
                    headers: Some(map),
                } if !map.is_empty() => {
                    let mut headers = Vec::with_capacity(map.len());
                    for (name, value) in map {
                        let name = HeaderName::from_bytes(name.as_bytes())
                            .map_err(|_| DomainError::new("data.headers has an invalid header name"))?;
                        if RESERVED_HEADERS.contains(&name.as_str()) || name.as_str().starts_with("x-keystile-") {
                            return Err(DomainError::new(format!("data.headers: {name} is reserved")));
                        }
                        check_header_safe(value.expose_secret(), "data.headers values")?;
                        headers.push((name, value));
                    }
                    Ok(Self::Headers { headers })
                }
                _ => Err(DomainError::new(
                    "headers data must be {\"headers\": {\"Name\": \"value\", …}}",
                )),
            },
        }
    }

    /// The kind of this secret.
    pub fn kind(&self) -> CredentialKind {
        match self {
            Self::ApiKey { .. } => CredentialKind::ApiKey,
            Self::BasicAuth { .. } => CredentialKind::BasicAuth,
            Self::Headers { .. } => CredentialKind::Headers,
        }
    }

    /// Serializes to JSON for encryption. The buffer is zeroized on drop and sized up front so
    /// that growing it never leaves an unzeroized copy behind.
    pub fn to_plaintext(&self) -> Zeroizing<Vec<u8>> {
        #[derive(Serialize)]
        #[serde(untagged)]
        enum Plain<'a> {
            ApiKey { key: &'a str },
            Basic { username: &'a str, password: &'a str },
            Headers { headers: BTreeMap<&'a str, &'a str> },
        }
        let plain = match self {
            Self::ApiKey { key } => Plain::ApiKey {
                key: key.expose_secret(),
            },
            Self::BasicAuth { username, password } => Plain::Basic {
                username: username.expose_secret(),
                password: password.expose_secret(),
            },
            Self::Headers { headers } => Plain::Headers {
                headers: headers.iter().map(|(n, v)| (n.as_str(), v.expose_secret())).collect(),
            },
        };
        let budget: usize = match self {
            Self::ApiKey { key } => key.expose_secret().len(),
            Self::BasicAuth { username, password } => username.expose_secret().len() + password.expose_secret().len(),
            Self::Headers { headers } => headers
                .iter()
                .map(|(n, v)| n.as_str().len() + v.expose_secret().len())
                .sum(),
        };
        // JSON escaping at most sextuples a byte (\u00XX); plus room for the structure.
        let mut out = Zeroizing::new(Vec::with_capacity(budget * 6 + 64 * (1 + self.field_count())));
        // Serializing plain `&str`s into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &plain);
        out
    }

    fn field_count(&self) -> usize {
        match self {
            Self::Headers { headers } => headers.len(),
            _ => 2,
        }
    }

    /// Parses decrypted JSON back into a secret of `kind`.
    pub fn from_plaintext(kind: CredentialKind, bytes: &[u8]) -> Result<Self, DomainError> {
        let raw: RawSecretData =
            serde_json::from_slice(bytes).map_err(|_| DomainError::new("stored credential data is malformed"))?;
        Self::from_raw(kind, raw)
    }

    /// The values that must never be echoed back to a caller (SPEC S9): the key, the password
    /// and `user:password` (whose base64 is the Basic header), each header value.
    pub fn secret_values(&self) -> Vec<Zeroizing<String>> {
        match self {
            Self::ApiKey { key } => vec![Zeroizing::new(key.expose_secret().to_owned())],
            Self::BasicAuth { username, password } => vec![
                Zeroizing::new(password.expose_secret().to_owned()),
                Zeroizing::new(format!("{}:{}", username.expose_secret(), password.expose_secret())),
            ],
            // A header value such as `Bearer sk-…` may be echoed without its scheme word.
            Self::Headers { headers } => headers
                .iter()
                .flat_map(|(_, v)| {
                    let v = v.expose_secret();
                    let tail = v.rsplit_once(' ').map(|(_, t)| Zeroizing::new(t.to_owned()));
                    std::iter::once(Zeroizing::new(v.to_owned())).chain(tail)
                })
                .collect(),
        }
    }

    /// Computes the headers / query parameter to inject, following `inject` or the kind's default.
    pub fn inject(&self, inject: Option<&Injection>) -> Result<Injected, DomainError> {
        let mut headers = Vec::new();
        let mut query = None;
        match (self, inject) {
            (Self::ApiKey { key }, None) => {
                let value = Zeroizing::new(format!("Bearer {}", key.expose_secret()));
                headers.push((http::header::AUTHORIZATION, sensitive(&value)?));
            }
            (Self::ApiKey { key }, Some(Injection::Header { header, format })) => {
                let name = HeaderName::from_bytes(header.as_bytes())
                    .map_err(|_| DomainError::new("inject.header is not a valid header name"))?;
                let value = Zeroizing::new(format.replace("{key}", key.expose_secret()));
                headers.push((name, sensitive(&value)?));
            }
            (Self::ApiKey { key }, Some(Injection::Query { query: name })) => {
                query = Some((name.clone(), Zeroizing::new(key.expose_secret().to_owned())));
            }
            (Self::BasicAuth { username, password }, _) => {
                let pair = Zeroizing::new(format!("{}:{}", username.expose_secret(), password.expose_secret()));
                let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(pair.as_bytes()));
                let value = Zeroizing::new(format!("Basic {}", encoded.as_str()));
                headers.push((http::header::AUTHORIZATION, sensitive(&value)?));
            }
            (Self::Headers { headers: list }, _) => {
                for (name, value) in list {
                    headers.push((name.clone(), sensitive(value.expose_secret())?));
                }
            }
        }
        Ok(Injected { headers, query })
    }
}

/// A header value marked sensitive (so HTTP/2 HPACK never indexes it).
fn sensitive(value: &str) -> Result<HeaderValue, DomainError> {
    let mut v =
        HeaderValue::from_str(value).map_err(|_| DomainError::new("credential data cannot be placed in a header"))?;
    v.set_sensitive(true);
    Ok(v)
}

/// Refuses values that could never be sent as a header (CR, LF, NUL, other controls).
/// Only visible ASCII, space and tab can go in a header value; refusing anything else here means
/// a stored credential can always be injected (never a 500 at use time).
fn check_header_safe(value: &str, what: &str) -> Result<(), DomainError> {
    if !value.chars().all(|c| c == '\t' || (' '..='~').contains(&c)) {
        return Err(DomainError::new(format!(
            "{what} must be printable ASCII (it is sent in a header)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: serde_json::Value) -> RawSecretData {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn api_key_defaults_to_bearer_and_honours_custom_rules() {
        let s = CredentialSecret::from_raw(CredentialKind::ApiKey, raw(serde_json::json!({"key": "sk-1"}))).unwrap();
        let i = s.inject(None).unwrap();
        assert_eq!(i.headers[0].0, http::header::AUTHORIZATION);
        assert_eq!(i.headers[0].1, "Bearer sk-1");
        assert!(i.headers[0].1.is_sensitive());
        let rule = Injection::Header {
            header: "x-api-key".into(),
            format: "{key}".into(),
        };
        rule.validate(CredentialKind::ApiKey).unwrap();
        let i = s.inject(Some(&rule)).unwrap();
        assert_eq!(i.headers[0].0.as_str(), "x-api-key");
        assert_eq!(i.headers[0].1, "sk-1");
        let i = s
            .inject(Some(&Injection::Query {
                query: "api_key".into(),
            }))
            .unwrap();
        assert_eq!(
            i.query.as_ref().map(|(n, v)| (n.as_str(), v.as_str())),
            Some(("api_key", "sk-1"))
        );
    }

    #[test]
    fn basic_auth_is_base64_of_user_colon_password() {
        let s = CredentialSecret::from_raw(
            CredentialKind::BasicAuth,
            raw(serde_json::json!({"username": "u", "password": "p@ss"})),
        )
        .unwrap();
        let i = s.inject(None).unwrap();
        assert_eq!(i.headers[0].1, "Basic dTpwQHNz");
    }

    #[test]
    fn data_must_fit_the_kind() {
        let wrong = CredentialSecret::from_raw(CredentialKind::ApiKey, raw(serde_json::json!({"username": "u"})));
        assert!(wrong.is_err());
        let crlf = CredentialSecret::from_raw(CredentialKind::ApiKey, raw(serde_json::json!({"key": "a\r\nX: y"})));
        assert!(crlf.is_err());
        let reserved = CredentialSecret::from_raw(
            CredentialKind::Headers,
            raw(serde_json::json!({"headers": {"Host": "x"}})),
        );
        assert!(reserved.is_err());
        assert!(
            Injection::Header {
                header: "x".into(),
                format: "no placeholder".into()
            }
            .validate(CredentialKind::ApiKey)
            .is_err()
        );
        assert!(
            Injection::Query { query: "k".into() }
                .validate(CredentialKind::Headers)
                .is_err()
        );
    }

    #[test]
    fn plaintext_round_trips_and_debug_is_redacted() {
        let s = CredentialSecret::from_raw(
            CredentialKind::Headers,
            raw(serde_json::json!({"headers": {"X-A": "one", "X-B": "two\"q"}})),
        )
        .unwrap();
        let bytes = s.to_plaintext();
        let back = CredentialSecret::from_plaintext(CredentialKind::Headers, &bytes).unwrap();
        let i = back.inject(None).unwrap();
        assert_eq!(i.headers.len(), 2);
        assert_eq!(i.headers[1].1, "two\"q");
        assert!(!format!("{back:?}").contains("one"));
    }
}
