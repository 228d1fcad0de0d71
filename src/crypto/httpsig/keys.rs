//! Ed25519 key pairs of projects: generation, and the public-key formats accepted from callers
//! (64 hex digits, or an OKP/Ed25519 JWK).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use crate::domain::DomainError;

/// A freshly generated key pair: the private seed (hex, shown once) and the public key.
pub struct GeneratedKey {
    pub private_hex: Zeroizing<String>,
    pub public_key: [u8; 32],
}

/// Generates a key pair from the operating system's random source.
pub fn generate() -> GeneratedKey {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    GeneratedKey {
        private_hex: Zeroizing::new(hex::encode(key.to_bytes())),
        public_key: key.verifying_key().to_bytes(),
    }
}

/// Parses a public key given as 64 hex digits, as a JWK object, or as a JWK in a string.
/// The point must be a valid Ed25519 public key.
pub fn parse_public_key(value: &serde_json::Value) -> Result<[u8; 32], DomainError> {
    let bytes = match value {
        serde_json::Value::String(s) if s.trim_start().starts_with('{') => {
            let jwk: serde_json::Value =
                serde_json::from_str(s).map_err(|_| DomainError::new("public_key is not valid JWK JSON"))?;
            jwk_x(&jwk)?
        }
        serde_json::Value::String(s) => {
            hex::decode(s.trim()).map_err(|_| DomainError::new("public_key must be 64 hex digits or a JWK"))?
        }
        serde_json::Value::Object(_) => jwk_x(value)?,
        _ => return Err(DomainError::new("public_key must be 64 hex digits or a JWK")),
    };
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|_| DomainError::new("public_key must be 32 bytes"))?;
    VerifyingKey::from_bytes(&key).map_err(|_| DomainError::new("public_key is not a valid Ed25519 key"))?;
    Ok(key)
}

fn jwk_x(jwk: &serde_json::Value) -> Result<Vec<u8>, DomainError> {
    if jwk.get("kty").and_then(|v| v.as_str()) != Some("OKP")
        || jwk.get("crv").and_then(|v| v.as_str()) != Some("Ed25519")
    {
        return Err(DomainError::new("JWK public_key must have kty OKP and crv Ed25519"));
    }
    if jwk.get("d").is_some() {
        return Err(DomainError::new("JWK public_key must not contain the private key (d)"));
    }
    let x = jwk
        .get("x")
        .and_then(|v| v.as_str())
        .ok_or_else(|| DomainError::new("JWK public_key needs x"))?;
    URL_SAFE_NO_PAD
        .decode(x.trim_end_matches('='))
        .map_err(|_| DomainError::new("JWK x is not base64url"))
}

/// Reads a private key file's content: the 32-byte seed as 64 hex digits.
pub fn parse_private_hex(text: &str) -> Result<SigningKey, DomainError> {
    let bytes =
        Zeroizing::new(hex::decode(text.trim()).map_err(|_| DomainError::new("private key must be 64 hex digits"))?);
    let seed: &[u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| DomainError::new("private key must be 64 hex digits"))?;
    Ok(SigningKey::from_bytes(seed))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn hex_and_jwk_forms_of_the_same_key_agree() {
        let g = generate();
        let x = URL_SAFE_NO_PAD.encode(g.public_key);
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": x});
        assert_eq!(
            parse_public_key(&json!(hex::encode(g.public_key))).unwrap(),
            g.public_key
        );
        assert_eq!(parse_public_key(&jwk).unwrap(), g.public_key);
        assert_eq!(parse_public_key(&json!(jwk.to_string())).unwrap(), g.public_key);
        let signing = parse_private_hex(&g.private_hex).unwrap();
        assert_eq!(signing.verifying_key().to_bytes(), g.public_key);
    }

    #[test]
    fn wrong_forms_are_refused() {
        let g = generate();
        let x = URL_SAFE_NO_PAD.encode(g.public_key);
        for bad in [
            json!("abcd"),
            json!("zz".repeat(32)),
            json!(1),
            json!({"kty": "EC", "crv": "Ed25519", "x": x}),
            json!({"kty": "OKP", "crv": "X25519", "x": x}),
            json!({"kty": "OKP", "crv": "Ed25519"}),
            json!({"kty": "OKP", "crv": "Ed25519", "x": x, "d": x}),
            json!("{not json"),
        ] {
            assert!(parse_public_key(&bad).is_err(), "{bad}");
        }
        assert!(parse_private_hex("abc").is_err());
    }
}
