//! Names chosen by users: credential aliases and role/key names.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::DomainError;

/// A credential alias: 1–64 characters of `[A-Za-z0-9._-]`, starting with a letter or digit.
/// Aliases appear in URLs and headers, so the alphabet is deliberately small.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Alias(String);

impl Alias {
    /// Parses and validates an alias.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let ok_len = (1..=64).contains(&raw.len());
        let ok_first = raw.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        let ok_chars = raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if ok_len && ok_first && ok_chars {
            Ok(Self(raw.to_owned()))
        } else {
            Err(DomainError::new(
                "alias must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' or '-', starting with a letter or digit",
            ))
        }
    }

    /// The alias as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Alias {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Alias::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Alias {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A display name for a role or an API key: 1–128 printable characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    /// Parses and validates a name.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.chars().count() > 128 {
            return Err(DomainError::new("name must be 1-128 characters"));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(DomainError::new("name must not contain control characters"));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Name::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_accept_the_small_alphabet_only() {
        for ok in ["github", "openai-prod", "a", "x.y_z-1"] {
            assert!(Alias::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-x", "has space", "a/b", "é", &"a".repeat(65), "a\nb"] {
            assert!(Alias::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_reject_control_characters_and_empty() {
        assert!(Name::parse("  release bot ").is_ok());
        assert!(Name::parse("   ").is_err());
        assert!(Name::parse("a\u{7}b").is_err());
    }
}
