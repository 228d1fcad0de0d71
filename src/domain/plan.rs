//! A tenant's plan (SPEC S10): which proxy surfaces it may use. Operators set it; the pipeline
//! enforces it from the verified key's grant, without a store round-trip.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// A proxy surface (recorded as `proxy_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Surface {
    Path,
    Execute,
    Ephemeral,
    Route,
    Mcp,
}

impl Surface {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Path => "path",
            Self::Execute => "execute",
            Self::Ephemeral => "ephemeral",
            Self::Route => "route",
            Self::Mcp => "mcp",
        }
    }
}

/// What a tenant may use. The default enables every surface.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub disabled_surfaces: BTreeSet<Surface>,
}

impl Plan {
    /// Whether the plan enables a surface.
    pub fn allows(&self, surface: Surface) -> bool {
        !self.disabled_surfaces.contains(&surface)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_parse_and_disable_surfaces() {
        let p: Plan = serde_json::from_str(r#"{"disabled_surfaces": ["ephemeral"]}"#).unwrap();
        assert!(!p.allows(Surface::Ephemeral));
        assert!(p.allows(Surface::Path));
        assert!(Plan::default().allows(Surface::Ephemeral));
        assert!(serde_json::from_str::<Plan>(r#"{"disabled_surfaces": ["teleport"]}"#).is_err());
    }
}
