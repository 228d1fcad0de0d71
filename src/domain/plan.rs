//! A tenant's plan (SPEC S10): which proxy surfaces it may use and how much. Operators set it;
//! the pipeline enforces it from the verified key's grant, without a store round-trip.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::DomainError;

/// The largest `template_expressions_per_request` a plan may set.
pub const MAX_TEMPLATE_EXPRESSIONS: u32 = 1000;
/// Template expressions per request when the plan does not say (SPEC S8).
pub const DEFAULT_TEMPLATE_EXPRESSIONS: u32 = 20;

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

    /// Parses the wire name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Path, Self::Execute, Self::Ephemeral, Self::Route, Self::Mcp]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// What a tenant may use. The default enables every surface with no quota.
///
/// Every limit is optional; absent means unlimited (template expressions: the SPEC default).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub disabled_surfaces: BTreeSet<Surface>,
    /// Proxied operations (calls on any proxy surface) per calendar month (UTC); past it,
    /// 429 `quota_exceeded` until the next month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operations_per_month: Option<u64>,
    /// Proxied requests per second for the whole tenant; past it, 429 `rate_limited`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<u32>,
    /// Template expressions allowed in one request (SPEC S8). Stored and validated; it takes
    /// effect once request templating exists (it does not yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_expressions_per_request: Option<u32>,
}

impl Plan {
    /// Whether the plan enables a surface.
    pub fn allows(&self, surface: Surface) -> bool {
        !self.disabled_surfaces.contains(&surface)
    }

    /// Checks the numbers an operator gave (zero rates and absurd template counts are refused;
    /// `operations_per_month: 0` is allowed and blocks every proxied call).
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.requests_per_second == Some(0) {
            return Err(DomainError::new(
                "plan.requests_per_second must be at least 1 (omit it for no limit)",
            ));
        }
        if self
            .template_expressions_per_request
            .is_some_and(|n| n > MAX_TEMPLATE_EXPRESSIONS)
        {
            return Err(DomainError::new(format!(
                "plan.template_expressions_per_request must be at most {MAX_TEMPLATE_EXPRESSIONS}"
            )));
        }
        Ok(())
    }

    /// Template expressions allowed per request under this plan.
    pub fn template_expressions(&self) -> u32 {
        self.template_expressions_per_request
            .unwrap_or(DEFAULT_TEMPLATE_EXPRESSIONS)
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

    #[test]
    fn plan_limits_parse_round_trip_and_are_validated() {
        let p: Plan = serde_json::from_str(
            r#"{"operations_per_month": 1000, "requests_per_second": 5, "template_expressions_per_request": 3}"#,
        )
        .unwrap();
        assert_eq!(p.operations_per_month, Some(1000));
        assert_eq!(p.requests_per_second, Some(5));
        assert_eq!(p.template_expressions(), 3);
        assert!(p.validate().is_ok());
        let again: Plan = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(again, p);
        assert_eq!(Plan::default().template_expressions(), DEFAULT_TEMPLATE_EXPRESSIONS);
        assert_eq!(serde_json::to_string(&Plan::default()).unwrap(), "{}");

        let zero_rps: Plan = serde_json::from_str(r#"{"requests_per_second": 0}"#).unwrap();
        assert!(zero_rps.validate().is_err());
        let many: Plan = serde_json::from_str(r#"{"template_expressions_per_request": 1001}"#).unwrap();
        assert!(many.validate().is_err());
        assert!(serde_json::from_str::<Plan>(r#"{"operations_per_month": -1}"#).is_err());
        assert!(serde_json::from_str::<Plan>(r#"{"requests_per_minute": 1}"#).is_err());
    }
}
