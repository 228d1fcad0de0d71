//! API keys (`kst_…`): generation, hashing and constant-time comparison.
//!
//! Keys are 256 bits of randomness, so a plain SHA-256 is the right storage hash (a slow KDF
//! adds nothing against brute force of a random key and costs latency on every request).

use base64::Engine as _;
use rand::RngCore as _;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// The prefix of every generated key.
pub const KEY_PREFIX: &str = "kst_";
/// How many characters of a key are kept in clear for listing (`kst_` + 8).
pub const SHOWN_PREFIX_LEN: usize = 12;

/// The SHA-256 of a presented token.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenHash({}…)", hex::encode(&self.0[..4]))
    }
}

impl TokenHash {
    /// Hashes a presented token.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Hex form, as stored.
    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    /// Parses the stored hex form.
    pub fn from_hex(s: &str) -> Option<Self> {
        let bytes = hex::decode(s).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    /// Constant-time equality.
    pub fn ct_eq(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

/// A freshly generated key: its plaintext (shown once), hash and displayable prefix.
pub struct NewToken {
    pub plaintext: SecretString,
    pub hash: TokenHash,
    pub prefix: String,
}

/// Generates a new `kst_` key.
pub fn generate() -> NewToken {
    let mut raw = zeroize::Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(raw.as_mut());
    let text = format!(
        "{KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.as_ref())
    );
    let hash = TokenHash::of(&text);
    let prefix = text[..SHOWN_PREFIX_LEN].to_owned();
    NewToken {
        plaintext: SecretString::from(text),
        hash,
        prefix,
    }
}

/// The displayable prefix of any token (for a supplied admin token too).
pub fn display_prefix(token: &SecretString) -> String {
    token.expose_secret().chars().take(SHOWN_PREFIX_LEN).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_unique_prefixed_and_hash_consistently() {
        let a = generate();
        let b = generate();
        assert!(a.plaintext.expose_secret().starts_with("kst_"));
        assert_eq!(a.plaintext.expose_secret().len(), 4 + 43);
        assert_ne!(a.hash, b.hash);
        assert!(TokenHash::of(a.plaintext.expose_secret()).ct_eq(&a.hash));
        assert_eq!(TokenHash::from_hex(&a.hash.to_hex()), Some(a.hash));
        assert_eq!(a.prefix.len(), SHOWN_PREFIX_LEN);
    }
}
