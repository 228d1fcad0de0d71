//! Names of projects, environments and configuration secrets (SPEC S7).
//!
//! A project name appears in a signature's `keyid` (`<project>.agents.keystile.local`), so it is
//! a DNS label. A secret name becomes an environment variable of `keystile run`, so it is a
//! portable variable name. Environment names are free text (they travel URL-encoded).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::DomainError;

/// The suffix of every project `keyid`.
pub const KEYID_SUFFIX: &str = ".agents.keystile.local";

/// A project name: 1–63 characters of `[a-z0-9-]`, starting and ending with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ProjectName(String);

impl ProjectName {
    /// Parses and validates a project name.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let ok_len = (1..=63).contains(&raw.len());
        let ok_chars = raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let ok_ends = !raw.starts_with('-') && !raw.ends_with('-');
        if ok_len && ok_chars && ok_ends {
            Ok(Self(raw.to_owned()))
        } else {
            Err(DomainError::new(
                "project name must be 1-63 characters of a-z, 0-9 or '-', not starting or ending with '-'",
            ))
        }
    }

    /// Reads the project out of a `keyid` of the form `<project>.agents.keystile.local`.
    pub fn from_keyid(keyid: &str) -> Option<Self> {
        let head = keyid.strip_suffix(KEYID_SUFFIX)?;
        Self::parse(head).ok()
    }

    /// The `keyid` a signer uses for this project.
    pub fn keyid(&self) -> String {
        format!("{}{KEYID_SUFFIX}", self.0)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An environment name (`production`, `prod/eu west`): 1–64 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct EnvName(String);

impl EnvName {
    /// Parses and validates an environment name.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let n = raw.chars().count();
        if !(1..=64).contains(&n) || raw.chars().any(char::is_control) || raw.trim() != raw {
            return Err(DomainError::new(
                "env must be 1-64 characters without control characters or surrounding spaces",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A secret's name, usable as an environment variable: `[A-Za-z_][A-Za-z0-9_]*`, at most 128.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SecretName(String);

impl SecretName {
    /// Parses and validates a secret name.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let ok_len = (1..=128).contains(&raw.len());
        let ok_first = raw.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
        let ok_chars = raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if ok_len && ok_first && ok_chars {
            Ok(Self(raw.to_owned()))
        } else {
            Err(DomainError::new(
                "key must be an environment variable name: 1-128 characters of A-Z, a-z, 0-9 or '_', not starting with a digit",
            ))
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! text_newtype_impls {
    ($($t:ident),+) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                $t::parse(&raw).map_err(serde::de::Error::custom)
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )+};
}
text_newtype_impls!(ProjectName, EnvName, SecretName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_are_dns_labels() {
        for ok in ["billing", "a", "web-2", &"a".repeat(63)] {
            assert!(ProjectName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a-", "Billing", "a.b", "a_b", "é", &"a".repeat(64)] {
            assert!(ProjectName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn keyids_name_exactly_one_project() {
        let p = ProjectName::parse("billing").unwrap();
        assert_eq!(p.keyid(), "billing.agents.keystile.local");
        assert_eq!(ProjectName::from_keyid(&p.keyid()), Some(p));
        for bad in [
            "billing",
            "agents.keystile.local",
            ".agents.keystile.local",
            "a.b.agents.keystile.local",
            "billing.agents.keystile.local.evil",
            "BILLING.agents.keystile.local",
        ] {
            assert_eq!(ProjectName::from_keyid(bad), None, "{bad}");
        }
    }

    #[test]
    fn env_names_may_need_url_encoding_but_not_control_characters() {
        assert!(EnvName::parse("prod/eu west").is_ok());
        assert!(EnvName::parse("ünïcode & more?=").is_ok());
        for bad in ["", " prod", "prod\n", "a\u{0}b", &"e".repeat(65)] {
            assert!(EnvName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn secret_names_are_environment_variable_names() {
        for ok in ["DATABASE_URL", "_X", "a1"] {
            assert!(SecretName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A B", "A=B", "Ä"] {
            assert!(SecretName::parse(bad).is_err(), "{bad:?}");
        }
    }
}
