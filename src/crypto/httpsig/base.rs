//! Covered components and the signature base (RFC 9421 §2.1, §2.2, §2.5).

use http::HeaderMap;

use super::{MAX_FIELD_BYTES, SigError};

/// A covered component this verifier can compute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Component {
    Method,
    Authority,
    TargetUri,
    Path,
    Query,
    Scheme,
    RequestTarget,
    /// A header field, by lowercase name.
    Header(String),
}

impl Component {
    /// Parses a component identifier's name. Header names must already be lowercase (RFC 9421
    /// §2.1); derived components other than the request ones above are refused.
    pub fn parse(name: &str) -> Result<Self, SigError> {
        Ok(match name {
            "@method" => Self::Method,
            "@authority" => Self::Authority,
            "@target-uri" => Self::TargetUri,
            "@path" => Self::Path,
            "@query" => Self::Query,
            "@scheme" => Self::Scheme,
            "@request-target" => Self::RequestTarget,
            n if n.starts_with('@') => return Err(SigError::Invalid("unsupported derived component")),
            n if !n.is_empty() && n.bytes().all(is_lower_tchar) => Self::Header(n.to_owned()),
            _ => return Err(SigError::Invalid("component name is not a lowercase field name")),
        })
    }

    /// The component's name as it appears in the signature base.
    pub fn name(&self) -> &str {
        match self {
            Self::Method => "@method",
            Self::Authority => "@authority",
            Self::TargetUri => "@target-uri",
            Self::Path => "@path",
            Self::Query => "@query",
            Self::Scheme => "@scheme",
            Self::RequestTarget => "@request-target",
            Self::Header(h) => h,
        }
    }
}

fn is_lower_tchar(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The request as the signer addressed it: scheme and authority as the client saw them (see
/// the server's public-URL / trusted-proxy handling) and the request target exactly as sent.
#[derive(Debug, Clone)]
pub struct RequestView<'a> {
    pub method: &'a str,
    /// Lowercase scheme (`http`, `https`).
    pub scheme: &'a str,
    /// Lowercase `host[:port]`, without the scheme's default port.
    pub authority: &'a str,
    /// Path and query exactly as sent (percent-encoding untouched).
    pub path_and_query: &'a str,
    pub headers: &'a HeaderMap,
}

impl RequestView<'_> {
    /// The value of one component (RFC 9421 §2.2 for derived components, §2.1 for fields).
    pub fn component(&self, c: &Component) -> Result<String, SigError> {
        let (path, query) = match self.path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (self.path_and_query, None),
        };
        Ok(match c {
            Component::Method => self.method.to_owned(),
            Component::Authority => self.authority.to_owned(),
            Component::Scheme => self.scheme.to_owned(),
            Component::TargetUri => format!("{}://{}{}", self.scheme, self.authority, self.path_and_query),
            Component::RequestTarget => self.path_and_query.to_owned(),
            Component::Path => if path.is_empty() { "/" } else { path }.to_owned(),
            Component::Query => format!("?{}", query.unwrap_or("")),
            Component::Header(name) => {
                // Each field line's surrounding whitespace is trimmed, then the lines are joined
                // with ", " (RFC 9421 §2.1).
                let mut lines = Vec::new();
                let mut total = 0;
                for v in self.headers.get_all(name.as_str()) {
                    let text = v
                        .to_str()
                        .map_err(|_| SigError::Invalid("a covered header is not ASCII"))?;
                    total += text.len();
                    if total > MAX_FIELD_BYTES * 8 {
                        return Err(SigError::Invalid("a covered header is too large"));
                    }
                    lines.push(text.trim());
                }
                if lines.is_empty() {
                    return Err(SigError::Invalid("a covered header is missing"));
                }
                lines.join(", ")
            }
        })
    }

    /// The signature base for these covered components and `@signature-params` line.
    pub fn signature_base(&self, components: &[Component], params_line: &str) -> Result<String, SigError> {
        let mut base = String::with_capacity(256);
        for c in components {
            let value = self.component(c)?;
            if value.contains('\n') || value.contains('\r') {
                return Err(SigError::Invalid("component value contains a line break"));
            }
            base.push('"');
            base.push_str(c.name());
            base.push_str("\": ");
            base.push_str(&value);
            base.push('\n');
        }
        base.push_str("\"@signature-params\": ");
        base.push_str(params_line);
        Ok(base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view<'a>(headers: &'a HeaderMap, pq: &'a str) -> RequestView<'a> {
        RequestView {
            method: "POST",
            scheme: "https",
            authority: "example.com",
            path_and_query: pq,
            headers,
        }
    }

    #[test]
    fn derived_components_follow_rfc_9421_section_2_2() {
        let h = HeaderMap::new();
        let v = view(&h, "/path?param=value&foo=bar&baz=bat%2Dman");
        let get = |c| v.component(&c).unwrap();
        assert_eq!(get(Component::Method), "POST");
        assert_eq!(get(Component::Authority), "example.com");
        assert_eq!(get(Component::Scheme), "https");
        assert_eq!(
            get(Component::TargetUri),
            "https://example.com/path?param=value&foo=bar&baz=bat%2Dman"
        );
        assert_eq!(get(Component::Path), "/path");
        assert_eq!(get(Component::Query), "?param=value&foo=bar&baz=bat%2Dman");
        assert_eq!(get(Component::RequestTarget), "/path?param=value&foo=bar&baz=bat%2Dman");
        let bare = view(&h, "/");
        assert_eq!(bare.component(&Component::Query).unwrap(), "?");
    }

    #[test]
    fn header_fields_are_trimmed_and_combined() {
        let mut h = HeaderMap::new();
        h.append("x-list", "  a ".parse().unwrap());
        h.append("x-list", "b".parse().unwrap());
        let v = view(&h, "/");
        assert_eq!(v.component(&Component::Header("x-list".into())).unwrap(), "a, b");
        assert_eq!(
            v.component(&Component::Header("x-absent".into())),
            Err(SigError::Invalid("a covered header is missing"))
        );
    }

    #[test]
    fn the_base_lists_components_in_the_signers_order_then_the_params() {
        let h = HeaderMap::new();
        let v = view(&h, "/x");
        let base = v
            .signature_base(
                &[Component::Authority, Component::Method],
                "(\"@authority\" \"@method\")",
            )
            .unwrap();
        assert_eq!(
            base,
            "\"@authority\": example.com\n\"@method\": POST\n\"@signature-params\": (\"@authority\" \"@method\")"
        );
    }
}
