//! Cryptography: envelope encryption of stored secrets and API-key tokens.
//!
//! Owns every use of a cipher, hash or random generator for secrets. Must not do I/O other
//! than reading/writing the master key file.

pub mod envelope;
pub mod httpsig;
pub mod master_key;
pub mod token;

pub use envelope::{Aad, Sealed};
pub use master_key::MasterKey;

/// A decryption failure. Deliberately carries no detail: a tampered ciphertext, a ciphertext
/// moved to another row and a wrong master key all look the same to an attacker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("decryption failed")]
pub struct DecryptError;
