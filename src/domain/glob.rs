//! A deliberately small glob: `*` matches any run of characters (including none); every other
//! character matches itself. Used for credential scopes (`github-*`) and path prefixes
//! (`/repos/*`).
//!
//! Written here rather than taken from a crate because policy globs must not carry surprising
//! extra syntax (`?`, `[...]`, `{a,b}`, `**`) that a policy author did not mean; the matcher is
//! a few lines, linear-time, and covered by property tests.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::DomainError;

/// A validated `*`-only glob pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Glob(String);

impl Glob {
    /// Parses a glob: 1–256 characters, no control characters.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        if raw.is_empty() || raw.len() > 256 || raw.chars().any(char::is_control) {
            return Err(DomainError::new(
                "pattern must be 1-256 characters without control characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The pattern text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        wildcard_match(self.0.as_bytes(), text.as_bytes())
    }
}

impl<'de> Deserialize<'de> for Glob {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Glob::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Iterative wildcard matching with single-star backtracking: O(pattern × text) worst case,
/// no recursion, so hostile patterns cannot blow the stack.
pub(crate) fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn g(p: &str) -> Glob {
        Glob::parse(p).unwrap()
    }

    #[test]
    fn stars_match_runs_and_literals_match_themselves() {
        assert!(g("github-*").matches("github-prod"));
        assert!(g("github-*").matches("github-"));
        assert!(!g("github-*").matches("gitlab-prod"));
        assert!(g("*").matches(""));
        assert!(g("/repos/*").matches("/repos/a/b"));
        assert!(!g("/repos/*").matches("/repo"));
        assert!(g("a*b*c").matches("aXXbYYc"));
        assert!(!g("a*b*c").matches("aXXbYY"));
        assert!(g("exact").matches("exact"));
        assert!(!g("exact").matches("exactly"));
    }

    proptest! {
        #[test]
        fn a_literal_pattern_matches_only_itself(s in "[a-z/._-]{0,20}", t in "[a-z/._-]{0,20}") {
            prop_assume!(!s.is_empty());
            prop_assert_eq!(wildcard_match(s.as_bytes(), t.as_bytes()), s == t);
        }

        #[test]
        fn prefix_star_matches_every_extension(s in "[a-z/]{1,10}", rest in "[a-z/*]{0,10}") {
            let pattern = format!("{s}*");
            let text = format!("{s}{rest}");
            prop_assert!(wildcard_match(pattern.as_bytes(), text.as_bytes()));
        }
    }
}
