//! Validated domain types: identifiers, names, globs, egress policies, credentials and roles.
//!
//! Everything here is parsed at the edge ("parse, don't validate") and performs no I/O.

pub mod credential;
pub mod glob;
pub mod ids;
pub mod names;
pub mod plan;
pub mod policy;
pub mod project;
pub mod role;
pub mod route;

pub use credential::{CredentialKind, CredentialSecret, Injection};
pub use ids::{ApiKeyId, CredentialId, ProjectId, ProjectKeyId, RoleId, RouteId, SecretId, TenantId};
pub use names::{Alias, Name};
pub use plan::{Plan, Surface};
pub use policy::EgressPolicy;
pub use project::{EnvName, ProjectName, SecretName};
pub use role::{Permission, Permissions, Scopes};
pub use route::RouteSpec;

/// Why a piece of input was refused. The message is safe to show to the caller: it never
/// contains a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DomainError(pub String);

impl DomainError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}
