//! Envelope encryption (SPEC S2): each record gets its own random 256-bit data key; the value
//! is sealed with AES-256-GCM under the data key and the data key is sealed under the master
//! key. Both seals bind associated data naming the tenant, the object and its version, so a
//! ciphertext copied to another row, tenant or version fails to decrypt.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore as _;
use zeroize::Zeroizing;

use super::{DecryptError, MasterKey};

const NONCE_LEN: usize = 12;

/// What a ciphertext is bound to.
#[derive(Debug, Clone, Copy)]
pub struct Aad<'a> {
    /// The kind of object (`credential`, `secret`, …), so kinds cannot be swapped either.
    pub kind: &'a str,
    pub tenant: &'a str,
    pub object_id: &'a str,
    pub version: i64,
}

impl Aad<'_> {
    fn bytes(&self, layer: &str) -> Vec<u8> {
        // Length-prefixed fields: no two distinct tuples share an encoding.
        let mut out = Vec::with_capacity(96);
        for field in [
            b"keystile/v1".as_slice(),
            layer.as_bytes(),
            self.kind.as_bytes(),
            self.tenant.as_bytes(),
            self.object_id.as_bytes(),
        ] {
            out.extend_from_slice(&(field.len() as u32).to_be_bytes());
            out.extend_from_slice(field);
        }
        out.extend_from_slice(&self.version.to_be_bytes());
        out
    }
}

/// A sealed value as stored: the wrapped data key and the ciphertext, each `nonce || ct || tag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub wrapped_key: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl Sealed {
    /// Encrypts `plaintext` under a fresh data key wrapped by `master`.
    pub fn seal(master: &MasterKey, aad: Aad<'_>, plaintext: &[u8]) -> Self {
        let mut data_key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(data_key.as_mut());
        let ciphertext = encrypt(&data_key, &aad.bytes("data"), plaintext);
        let wrapped_key = encrypt(master.bytes(), &aad.bytes("key"), data_key.as_ref());
        Self {
            wrapped_key,
            ciphertext,
        }
    }

    /// Decrypts; any tampering, transplant or wrong key gives [`DecryptError`].
    pub fn open(&self, master: &MasterKey, aad: Aad<'_>) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        let data_key = decrypt(master.bytes(), &aad.bytes("key"), &self.wrapped_key)?;
        let key: &[u8; 32] = data_key.as_slice().try_into().map_err(|_| DecryptError)?;
        decrypt(key, &aad.bytes("data"), &self.ciphertext)
    }
}

fn encrypt(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(key.into());
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    // AES-GCM encryption only fails for plaintexts over ~64 GiB, far beyond any body limit.
    let ct = cipher
        .encrypt(&Nonce::from(nonce), Payload { msg: plaintext, aad })
        .unwrap_or_default();
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

fn decrypt(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
    if sealed.len() < NONCE_LEN + 16 {
        return Err(DecryptError);
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| DecryptError)?;
    let cipher = Aes256Gcm::new(key.into());
    cipher
        .decrypt(&Nonce::from(nonce), Payload { msg: ct, aad })
        .map(Zeroizing::new)
        .map_err(|_| DecryptError)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aad<'a>(tenant: &'a str, id: &'a str, version: i64) -> Aad<'a> {
        Aad {
            kind: "credential",
            tenant,
            object_id: id,
            version,
        }
    }

    #[test]
    fn round_trip() {
        let mk = MasterKey::generate();
        let s = Sealed::seal(&mk, aad("t1", "c1", 1), b"secret");
        assert_eq!(s.open(&mk, aad("t1", "c1", 1)).unwrap().as_slice(), b"secret");
        assert!(!s.ciphertext.windows(6).any(|w| w == b"secret"));
    }

    #[test]
    fn tampering_with_any_byte_fails() {
        let mk = MasterKey::generate();
        let s = Sealed::seal(&mk, aad("t1", "c1", 1), b"secret value");
        for i in 0..s.ciphertext.len() {
            let mut bad = s.clone();
            bad.ciphertext[i] ^= 0x01;
            assert_eq!(bad.open(&mk, aad("t1", "c1", 1)), Err(DecryptError), "byte {i}");
        }
        for i in 0..s.wrapped_key.len() {
            let mut bad = s.clone();
            bad.wrapped_key[i] ^= 0x80;
            assert_eq!(bad.open(&mk, aad("t1", "c1", 1)), Err(DecryptError), "key byte {i}");
        }
        let mut short = s.clone();
        short.ciphertext.truncate(5);
        assert_eq!(short.open(&mk, aad("t1", "c1", 1)), Err(DecryptError));
    }

    #[test]
    fn moving_to_another_row_tenant_version_or_kind_fails() {
        let mk = MasterKey::generate();
        let s = Sealed::seal(&mk, aad("t1", "c1", 1), b"secret");
        assert!(s.open(&mk, aad("t1", "c2", 1)).is_err());
        assert!(s.open(&mk, aad("t2", "c1", 1)).is_err());
        assert!(s.open(&mk, aad("t1", "c1", 2)).is_err());
        assert!(
            s.open(
                &mk,
                Aad {
                    kind: "secret",
                    ..aad("t1", "c1", 1)
                }
            )
            .is_err()
        );
        assert!(s.open(&MasterKey::generate(), aad("t1", "c1", 1)).is_err());
    }
}
