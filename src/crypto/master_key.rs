//! The master key: loaded from `KEYSTILE_MASTER_KEY`, a file, or generated for the embedded
//! default into the data directory with mode 0600.

use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

/// The 32-byte key-encryption key. `Debug` never shows it.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey(id={})", self.id())
    }
}

/// Why a master key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("master key must be base64 of exactly 32 bytes")]
    Malformed,
    #[error("cannot read or write the master key file {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

impl MasterKey {
    /// Parses base64 text (standard alphabet, padding optional; surrounding whitespace ignored).
    pub fn from_base64(text: &str) -> Result<Self, MasterKeyError> {
        let trimmed = text.trim();
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(trimmed)
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed))
                .map_err(|_| MasterKeyError::Malformed)?,
        );
        let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| MasterKeyError::Malformed)?;
        Ok(Self(Zeroizing::new(arr)))
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        Self(key)
    }

    /// Reads a key file (base64 text).
    pub fn read_file(path: &Path) -> Result<Self, MasterKeyError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| MasterKeyError::Io {
            path: path.display().to_string(),
            source,
        })?);
        Self::from_base64(&text)
    }

    /// Loads the key file at `path`, or creates it (mode 0600) with a fresh key.
    /// Returns the key and whether it was generated now.
    pub fn load_or_generate(path: &Path) -> Result<(Self, bool), MasterKeyError> {
        if path.exists() {
            return Ok((Self::read_file(path)?, false));
        }
        let key = Self::generate();
        let io = |source| MasterKeyError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(io)?;
        let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(key.0.as_ref()));
        file.write_all(encoded.as_bytes()).map_err(io)?;
        file.write_all(b"\n").map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok((key, true))
    }

    /// A short, non-secret identifier of this key (first 8 hex digits of SHA-256 of a label
    /// and the key), so logs and rows can say which key wrapped a data key.
    pub fn id(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"keystile master key id");
        h.update(self.0.as_ref());
        hex::encode(&h.finalize()[..4])
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_file_is_private_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let (k1, created) = MasterKey::load_or_generate(&path).unwrap();
        assert!(created);
        let (k2, created) = MasterKey::load_or_generate(&path).unwrap();
        assert!(!created);
        assert_eq!(k1.id(), k2.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn malformed_keys_are_refused_and_debug_hides_the_key() {
        assert!(MasterKey::from_base64("c2hvcnQ=").is_err());
        assert!(MasterKey::from_base64("not base64!").is_err());
        let k = MasterKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([7u8; 32])).unwrap();
        assert!(!format!("{k:?}").contains("BwcH"));
    }
}
