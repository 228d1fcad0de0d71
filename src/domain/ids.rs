//! Identifier newtypes. Every id is a random UUID (v4) kept as its text form.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::DomainError;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A fresh random id.
            pub fn generate() -> Self {
                Self(uuid::Uuid::new_v4().to_string())
            }

            /// Parses an id given by a caller or read from the store.
            pub fn parse(raw: &str) -> Result<Self, DomainError> {
                uuid::Uuid::parse_str(raw)
                    .map(|u| Self(u.to_string()))
                    .map_err(|_| DomainError::new(concat!("invalid ", stringify!($name))))
            }

            /// The id's text form.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// Identifies a tenant.
    TenantId
);
id_type!(
    /// Identifies a credential.
    CredentialId
);
id_type!(
    /// Identifies a role.
    RoleId
);
id_type!(
    /// Identifies an API key.
    ApiKeyId
);
id_type!(
    /// Identifies a route.
    RouteId
);
id_type!(
    /// Identifies a project (SPEC S7).
    ProjectId
);
id_type!(
    /// Identifies one public key of a project.
    ProjectKeyId
);
id_type!(
    /// Identifies a project's configuration secret.
    SecretId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_garbage() {
        let id = CredentialId::generate();
        assert_eq!(CredentialId::parse(id.as_str()).unwrap(), id);
        assert!(CredentialId::parse("../etc").is_err());
        assert!(RoleId::parse("").is_err());
    }
}
