//! HTTP Message Signatures (RFC 9421) with Ed25519, as projects use them (SPEC S7).
//!
//! - [`parse`]: `Signature-Input` / `Signature` through a real RFC 8941 structured-field parser
//!   (`sfv`): any label, any component order, extra parameters; strict about types.
//! - [`base`]: the signature base (RFC 9421 §2.5) from a [`RequestView`].
//! - [`verify`]: the Keystile rules (required components, clock skew, `expires` cap, nonce
//!   shape, `keyid`) and the Ed25519 check. Pure: time comes in as a parameter.
//! - [`digest`]: `Content-Digest` (RFC 9530, sha-256) checked against a body.
//! - [`keys`]: Ed25519 key pairs and the public-key formats accepted (hex, JWK).
//! - [`sign`]: the signer used by the CLI (`keystile run`) and the tests.
//!
//! Must not do I/O: finding keys and remembering nonces belong to the caller.

pub mod base;
pub mod digest;
pub mod keys;
pub mod parse;
pub mod sign;
pub mod verify;

pub use base::{Component, RequestView};
pub use parse::{ParsedSignature, parse_signatures};
pub use sign::{SignedHeaders, Signer};
pub use verify::{Checked, REQUIRED, check_params, select, verify_signature};

/// Largest accepted `Signature`, `Signature-Input`, `Signature-Agent` or `Content-Digest`
/// field (all lines together). Anything longer is refused before parsing.
pub const MAX_FIELD_BYTES: usize = 8 * 1024;
/// How far `created` may be from the verifier's clock, either way, in seconds.
pub const CLOCK_SKEW_SECS: i64 = 300;
/// The lifetime a signer gives a signature (`expires = created + 300`).
pub const DEFAULT_LIFETIME_SECS: i64 = 300;
/// How long an accepted nonce is remembered, in seconds. A signature is accepted at most until
/// `created + CLOCK_SKEW_SECS`, and `created` is at most `now + CLOCK_SKEW_SECS`, so a nonce
/// kept this long from its first use outlives every signature that carries it. `expires` may
/// not lie further than this after `created` either.
pub const NONCE_RETENTION_SECS: i64 = 600;

/// Why a signed request was refused. Each variant is one S7 error code; the text is safe to
/// show (it never contains key material or header values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    /// No `Signature-Input`/`Signature` at all.
    #[error("request is not signed: Signature-Input and Signature headers are required")]
    Missing,
    /// The `keyid` names no project.
    #[error("the signature's keyid names no project")]
    UnknownProject,
    /// Malformed, incomplete, or not made by a valid key of the project.
    #[error("invalid signature: {0}")]
    Invalid(&'static str),
    /// `expires` has passed, or `created` is older than the allowed skew.
    #[error("signature has expired")]
    Expired,
    /// The nonce was already used.
    #[error("signature nonce has already been used")]
    Replayed,
}

impl SigError {
    /// The S7/S13 error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "missing_signature",
            Self::UnknownProject => "unknown_project",
            Self::Invalid(_) => "invalid_signature",
            Self::Expired => "expired",
            Self::Replayed => "replayed_nonce",
        }
    }
}
