//! `Content-Digest` (RFC 9530): the body's SHA-256, so a signature covering the field covers
//! the body too.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sfv::{Dictionary, ListEntry, Parser};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::{MAX_FIELD_BYTES, SigError};

/// The `Content-Digest` value for `body`: `sha-256=:<base64>:`.
pub fn content_digest(body: &[u8]) -> String {
    format!("sha-256=:{}:", STANDARD.encode(Sha256::digest(body)))
}

/// Checks a `Content-Digest` field against the body. Only `sha-256` is accepted; other
/// algorithms in the field are ignored, but a `sha-256` member must be present and match.
pub fn check_content_digest(field: &str, body: &[u8]) -> Result<(), SigError> {
    if field.len() > MAX_FIELD_BYTES {
        return Err(SigError::Invalid("Content-Digest too large"));
    }
    let dict: Dictionary = Parser::new(field)
        .parse()
        .map_err(|_| SigError::Invalid("malformed Content-Digest"))?;
    let Some(ListEntry::Item(item)) = dict.get("sha-256") else {
        return Err(SigError::Invalid("Content-Digest has no sha-256 member"));
    };
    let claimed = item
        .bare_item
        .as_byte_sequence()
        .ok_or(SigError::Invalid("malformed Content-Digest"))?;
    let actual = Sha256::digest(body);
    if bool::from(claimed.ct_eq(&actual[..])) {
        Ok(())
    } else {
        Err(SigError::Invalid("Content-Digest does not match the body"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_9530_example_digest() {
        // RFC 9530 §2 example: {"hello": "world"}
        let body = b"{\"hello\": \"world\"}";
        assert_eq!(
            content_digest(body),
            "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
        );
        assert_eq!(check_content_digest(&content_digest(body), body), Ok(()));
        assert_eq!(
            check_content_digest(
                "sha-512=:AA==:, sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
                body
            ),
            Ok(())
        );
    }

    #[test]
    fn a_swapped_body_or_a_malformed_field_is_refused() {
        let field = content_digest(b"original");
        assert!(check_content_digest(&field, b"swapped").is_err());
        for bad in [
            "",
            "sha-256",
            "sha-256=abc",
            "sha-512=:AA==:",
            "sha-256=:AA==",
            "sha-256=(:AA==:)",
        ] {
            assert!(check_content_digest(bad, b"original").is_err(), "{bad}");
        }
    }
}
