//! Roles: permissions and credential scopes (SPEC S3).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::glob::Glob;

/// One permission a role may grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    Read,
    Write,
    Delete,
    Execute,
    Reveal,
    Audit,
    Admin,
}

impl Permission {
    /// The wire name, as used in `Missing required permission: <p>`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Delete => "delete",
            Self::Execute => "execute",
            Self::Reveal => "reveal",
            Self::Audit => "audit",
            Self::Admin => "admin",
        }
    }
}

/// A role's permission set; `admin` implies every other permission.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Permissions(BTreeSet<Permission>);

impl Permissions {
    /// Builds a set from a list.
    pub fn new(list: impl IntoIterator<Item = Permission>) -> Self {
        Self(list.into_iter().collect())
    }

    /// Whether the set grants `p` (directly or through `admin`).
    pub fn grants(&self, p: Permission) -> bool {
        self.0.contains(&Permission::Admin) || self.0.contains(&p)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Credential scopes: glob patterns on aliases. An empty list means "no credential".
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Scopes(Vec<Glob>);

impl Scopes {
    /// Builds scopes from patterns.
    pub fn new(globs: Vec<Glob>) -> Self {
        Self(globs)
    }

    /// Whether a credential alias is within scope.
    pub fn allows(&self, alias: &str) -> bool {
        self.0.iter().any(|g| g.matches(alias))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_implies_everything_and_scopes_are_globs() {
        let admin = Permissions::new([Permission::Admin]);
        assert!(admin.grants(Permission::Reveal));
        let reader = Permissions::new([Permission::Read]);
        assert!(!reader.grants(Permission::Execute));
        let scopes = Scopes::new(vec![Glob::parse("github-*").unwrap()]);
        assert!(scopes.allows("github-ci"));
        assert!(!scopes.allows("openai"));
        assert!(!Scopes::default().allows("anything"));
    }
}
