//! Bounded text: every string a client can shape reaches the audit trail as a [`Text`], which
//! can only be built by cutting it to its size (SPEC S15). So no event, journal line or row can
//! be larger than the sum of its fields' bounds, whatever a request carried.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a cut value ends with, so a reader sees that something was left out.
pub const TRUNCATED: &str = "…[truncated]";

/// Most bytes of a recorded HTTP method.
pub const METHOD_BYTES: usize = 32;
/// Most bytes of a recorded target host (a DNS name has at most 253).
pub const HOST_BYTES: usize = 255;
/// Most bytes of a recorded target path (with its redacted query).
pub const PATH_BYTES: usize = 2048;
/// Most bytes of a recorded credential alias.
pub const CREDENTIAL_BYTES: usize = 128;
/// Most bytes of a recorded action (`proxy.request`, `POST /v1/credentials/{alias}`, …).
pub const ACTION_BYTES: usize = 160;
/// Most bytes of a recorded outcome (`ok` or an error code).
pub const OUTCOME_BYTES: usize = 64;

/// A string of at most `MAX` bytes (UTF-8). Longer input is cut at a character boundary and
/// ends with [`TRUNCATED`]; the result, marker included, still fits in `MAX` bytes.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Text<const MAX: usize>(String);

impl<const MAX: usize> Text<MAX> {
    /// `value`, cut to `MAX` bytes if it is longer. Cutting twice changes nothing.
    pub fn cut(value: impl Into<String>) -> Self {
        let mut s: String = value.into();
        if s.len() > MAX {
            let mut keep = MAX.saturating_sub(TRUNCATED.len());
            while !s.is_char_boundary(keep) {
                keep -= 1;
            }
            s.truncate(keep);
            s.push_str(TRUNCATED);
            // A bound smaller than the marker itself: keep what fits of the marker.
            while s.len() > MAX {
                s.pop();
            }
        }
        Self(s)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the value was cut.
    pub fn was_cut(&self) -> bool {
        self.0.ends_with(TRUNCATED)
    }
}

impl<const MAX: usize> fmt::Debug for Text<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<const MAX: usize> fmt::Display for Text<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<const MAX: usize> std::ops::Deref for Text<MAX> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> PartialEq<str> for Text<MAX> {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl<const MAX: usize> PartialEq<&str> for Text<MAX> {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl<const MAX: usize> From<&str> for Text<MAX> {
    fn from(value: &str) -> Self {
        // Cut before copying: a huge input is never copied whole.
        let mut end = value.len().min(MAX);
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        if end == value.len() {
            Self(value.to_owned())
        } else {
            // One byte more than the bound is enough to make `cut` mark it.
            let mut longer = end.saturating_add(1).min(value.len());
            while !value.is_char_boundary(longer) {
                longer += 1;
            }
            Self::cut(&value[..longer])
        }
    }
}

impl<const MAX: usize> From<String> for Text<MAX> {
    fn from(value: String) -> Self {
        Self::cut(value)
    }
}

impl<const MAX: usize> Serialize for Text<MAX> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for Text<MAX> {
    /// Cut on the way in too: a line that was not written by us still yields a bounded value.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(Self::from(s.as_ref()))
    }
}

impl<const MAX: usize> utoipa::PartialSchema for Text<MAX> {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        String::schema()
    }
}

impl<const MAX: usize> utoipa::ToSchema for Text<MAX> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_kept_as_it_is() {
        assert_eq!(Text::<8>::cut("abc").as_str(), "abc");
        assert_eq!(Text::<3>::cut("abc").as_str(), "abc");
        assert!(!Text::<3>::cut("abc").was_cut());
    }

    #[test]
    fn long_text_is_cut_to_its_bound_with_a_visible_marker() {
        let t = Text::<32>::cut("x".repeat(300_000));
        assert_eq!(t.as_str().len(), 32);
        assert!(t.as_str().ends_with(TRUNCATED));
        assert!(t.was_cut());
        assert_eq!(t.as_str(), format!("{}{TRUNCATED}", "x".repeat(32 - TRUNCATED.len())));
    }

    #[test]
    fn cutting_never_splits_a_character_and_is_idempotent() {
        for len in 0..40 {
            let s = "é€😀a".repeat(len);
            let t = Text::<24>::cut(s.clone());
            assert!(t.as_str().len() <= 24, "{t:?}");
            assert_eq!(Text::<24>::cut(t.as_str()), t, "cutting twice changes nothing");
            assert_eq!(Text::<24>::from(s.as_str()), t, "from &str agrees with cut");
            if s.len() <= 24 {
                assert_eq!(t.as_str(), s);
            }
        }
    }

    #[test]
    fn a_bound_below_the_markers_size_still_holds() {
        let t = Text::<5>::cut("abcdefgh");
        assert!(t.as_str().len() <= 5, "{t:?}");
    }

    #[test]
    fn deserializing_cuts_too() {
        let long = format!("\"{}\"", "y".repeat(5000));
        let t: Text<PATH_BYTES> = serde_json::from_str(&long).unwrap();
        assert_eq!(t.as_str().len(), PATH_BYTES);
        assert!(t.was_cut());
    }
}
