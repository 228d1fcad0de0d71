//! Secret-echo redaction (SPEC S9): every injected secret value, and its encoded forms, is
//! replaced by `[REDACTED]` in response headers and bodies before they reach the caller.
//!
//! Bodies are redacted as they stream: between chunks [`StreamRedactor`] holds back only the
//! tail of what it has seen that is a proper prefix of some pattern — the only bytes that could
//! still become a match — so a secret split across chunk boundaries is caught without buffering
//! the body, and a chunk that cannot start a secret (say, the `\n\n` ending a server-sent
//! event) is released at once.

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue};
use zeroize::Zeroizing;

/// What replaces a secret.
pub const REDACTED: &[u8] = b"[REDACTED]";

/// Secrets shorter than this are not searched for: they would match ordinary text everywhere
/// and turn every response into noise. Injected secrets are API keys and passwords, far longer.
pub const MIN_SECRET_LEN: usize = 4;

/// A compiled set of byte patterns to redact.
#[derive(Clone)]
pub struct Redactor {
    matcher: Option<AhoCorasick>,
    patterns: std::sync::Arc<Vec<Zeroizing<Vec<u8>>>>,
    /// The longest pattern's length, and which bytes start a pattern: the hold-back scan at
    /// the end of every chunk skips positions that cannot start one (profiled hot path).
    longest: usize,
    starts: std::sync::Arc<[bool; 256]>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redactor([REDACTED])")
    }
}

/// The forms in which a secret may be echoed back: as is, base64 (standard and URL-safe, with
/// and without padding), percent-encoded, form-encoded and JSON-escaped. None for a secret
/// shorter than [`MIN_SECRET_LEN`].
pub fn encoded_forms(secret: &str) -> Vec<Zeroizing<Vec<u8>>> {
    if secret.len() < MIN_SECRET_LEN {
        return Vec::new();
    }
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut forms = vec![Zeroizing::new(secret.as_bytes().to_vec())];
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        forms.push(Zeroizing::new(engine.encode(secret).into_bytes()));
    }
    let percent: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    for form in [percent.replace('+', "%20"), percent.clone()] {
        forms.push(Zeroizing::new(lowercase_escapes(&form).into_bytes()));
        forms.push(Zeroizing::new(form.into_bytes()));
    }
    if let Ok(json) = serde_json::to_string(secret) {
        forms.push(Zeroizing::new(json.trim_matches('"').as_bytes().to_vec()));
    }
    forms.sort_by(|a, b| a.as_slice().cmp(b.as_slice()));
    forms.dedup_by(|a, b| a.as_slice() == b.as_slice());
    forms
}

/// `%3A` → `%3a`: some encoders emit lowercase hex digits.
fn lowercase_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut hex_left = 0;
    for c in s.chars() {
        if c == '%' {
            hex_left = 2;
            out.push(c);
        } else if hex_left > 0 {
            hex_left -= 1;
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

impl Redactor {
    /// A redactor for these patterns (see [`encoded_forms`]).
    pub fn new(patterns: &[Zeroizing<Vec<u8>>]) -> Self {
        let usable: Vec<Zeroizing<Vec<u8>>> = patterns.iter().filter(|p| !p.is_empty()).cloned().collect();
        let matcher = if usable.is_empty() {
            None
        } else {
            // Building only fails for pattern sets far beyond any credential's size.
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(usable.iter().map(|p| p.as_slice()))
                .ok()
        };
        let mut starts = [false; 256];
        for p in &usable {
            if let Some(&b) = p.first() {
                starts[usize::from(b)] = true;
            }
        }
        Self {
            matcher,
            longest: usable.iter().map(|p| p.len()).max().unwrap_or(0),
            patterns: std::sync::Arc::new(usable),
            starts: std::sync::Arc::new(starts),
        }
    }

    /// Whether `tail` could still grow into a longer pattern.
    fn is_proper_prefix(&self, tail: &[u8]) -> bool {
        self.patterns
            .iter()
            .any(|p| p.len() > tail.len() && p.starts_with(tail))
    }

    /// Where the held-back tail of `buf[from..]` starts: the earliest position whose suffix is
    /// a proper prefix of a pattern, or `buf.len()` when nothing needs holding.
    fn hold_from(&self, buf: &[u8], from: usize) -> usize {
        let start = from.max(buf.len().saturating_sub(self.longest.saturating_sub(1)));
        (start..buf.len())
            .find(|&p| self.starts[usize::from(buf[p])] && self.is_proper_prefix(&buf[p..]))
            .unwrap_or(buf.len())
    }

    /// Whether there is anything to redact.
    pub fn is_active(&self) -> bool {
        self.matcher.is_some()
    }

    /// Redacts a complete byte string; `None` when nothing matched.
    pub fn redact_all(&self, input: &[u8]) -> Option<Vec<u8>> {
        let m = self.matcher.as_ref()?;
        if !m.is_match(input) {
            return None;
        }
        let mut out = Vec::with_capacity(input.len());
        m.replace_all_with_bytes(input, &mut out, |_, _, dst| {
            dst.extend_from_slice(REDACTED);
            true
        });
        Some(out)
    }

    /// Redacts every header value in place.
    pub fn redact_headers(&self, headers: &mut HeaderMap) {
        if !self.is_active() {
            return;
        }
        for value in headers.values_mut() {
            if let Some(clean) = self.redact_all(value.as_bytes()) {
                // `[REDACTED]` is a valid header value, and so is what surrounded it.
                if let Ok(v) = HeaderValue::from_bytes(&clean) {
                    *value = v;
                } else {
                    *value = HeaderValue::from_static("[REDACTED]");
                }
            }
        }
    }

    /// A streaming redactor for one body.
    pub fn stream(&self) -> StreamRedactor {
        StreamRedactor {
            redactor: self.clone(),
            carry: BytesMut::new(),
        }
    }
}

/// Redacts one body chunk by chunk.
pub struct StreamRedactor {
    redactor: Redactor,
    carry: BytesMut,
}

impl StreamRedactor {
    /// Feeds a chunk; returns what can be released now.
    pub fn push(&mut self, chunk: &[u8]) -> Bytes {
        let Some(m) = self.redactor.matcher.as_ref() else {
            return Bytes::copy_from_slice(chunk);
        };
        self.carry.extend_from_slice(chunk);
        let buf = std::mem::take(&mut self.carry);
        // Everything from `hold` on could still become (part of) a longer match, so only
        // matches starting before it are final: a longer pattern starting there would make
        // `hold` earlier. (`abcd` vs `abcd-more`, `abc` vs `abc==` are decided later.)
        let hold = self.redactor.hold_from(&buf, 0);
        let mut out = BytesMut::with_capacity(buf.len());
        let mut at = 0;
        for found in m.find_iter(&buf[..]) {
            if found.start() >= hold {
                break;
            }
            out.extend_from_slice(&buf[at..found.start()]);
            out.extend_from_slice(REDACTED);
            at = found.end();
        }
        let keep = hold.max(at);
        out.extend_from_slice(&buf[at..keep]);
        self.carry.extend_from_slice(&buf[keep..]);
        out.freeze()
    }

    /// Ends the body; returns the held-back tail, redacted.
    pub fn finish(&mut self) -> Bytes {
        let tail = std::mem::take(&mut self.carry);
        match self.redactor.redact_all(&tail) {
            Some(clean) => Bytes::from(clean),
            None => tail.freeze(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn redactor(secrets: &[&str]) -> Redactor {
        let forms: Vec<_> = secrets.iter().flat_map(|s| encoded_forms(s)).collect();
        Redactor::new(&forms)
    }

    /// `body` cut into chunks at the given offsets (clamped, in any order).
    fn split_at(body: &[u8], cuts: Vec<usize>) -> Vec<&[u8]> {
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(body.len())).collect();
        cuts.sort();
        let mut chunks = Vec::new();
        let mut prev = 0;
        for c in cuts {
            chunks.push(&body[prev..c]);
            prev = c;
        }
        chunks.push(&body[prev..]);
        chunks
    }

    fn streamed(r: &Redactor, chunks: &[&[u8]]) -> Vec<u8> {
        let mut s = r.stream();
        let mut out = Vec::new();
        for c in chunks {
            out.extend_from_slice(&s.push(c));
        }
        out.extend_from_slice(&s.finish());
        out
    }

    #[test]
    fn a_secret_split_at_every_offset_is_redacted() {
        let r = redactor(&["sk-live-0123456789"]);
        let body = b"{\"echo\": \"sk-live-0123456789\", \"n\": 1}";
        let expected = b"{\"echo\": \"[REDACTED]\", \"n\": 1}".to_vec();
        for i in 0..=body.len() {
            for j in i..=body.len() {
                let out = streamed(&r, &[&body[..i], &body[i..j], &body[j..]]);
                assert_eq!(out, expected, "split at {i}/{j}");
            }
        }
    }

    #[test]
    fn one_byte_chunks_and_many_occurrences() {
        let r = redactor(&["abcd1234"]);
        let body = b"abcd1234xxabcd1234abcd123";
        let chunks: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(streamed(&r, &chunks), b"[REDACTED]xx[REDACTED]abcd123".to_vec());
    }

    #[test]
    fn encoded_forms_are_redacted() {
        let r = redactor(&["user:p@ss word/+"]);
        let b64 = base64::engine::general_purpose::STANDARD.encode("user:p@ss word/+");
        for echoed in [b64.as_str(), "user%3Ap%40ss%20word%2F%2B", "user%3Ap%40ss+word%2F%2B"] {
            let out = r.redact_all(format!("x={echoed};").as_bytes()).unwrap();
            assert_eq!(out, b"x=[REDACTED];".to_vec(), "{echoed}");
        }
        let r = redactor(&["quote\"back\\slash"]);
        assert!(r.redact_all(br#"{"v":"quote\"back\\slash"}"#).is_some());
    }

    #[test]
    fn only_a_possible_secret_prefix_is_held_back() {
        let r = redactor(&["sk-live-0123456789"]);
        let mut s = r.stream();
        assert_eq!(
            &s.push(b"data: {\"x\": 1}\n\n")[..],
            b"data: {\"x\": 1}\n\n",
            "an SSE event passes at once"
        );
        assert_eq!(&s.push(b"data: sk-li")[..], b"data: ", "a possible secret start waits");
        assert_eq!(
            &s.push(b"ght\n\n")[..],
            b"sk-light\n\n",
            "and is released once it cannot match"
        );
        assert!(s.finish().is_empty());
    }

    #[test]
    fn headers_are_redacted_and_short_secrets_ignored() {
        let r = redactor(&["sekrit-value"]);
        let mut h = HeaderMap::new();
        h.insert("x-echo", HeaderValue::from_static("Bearer sekrit-value"));
        h.insert("x-other", HeaderValue::from_static("fine"));
        r.redact_headers(&mut h);
        assert_eq!(h["x-echo"], "Bearer [REDACTED]");
        assert_eq!(h["x-other"], "fine");
        assert!(!redactor(&["abc"]).is_active());
    }

    #[test]
    fn a_secret_that_extends_another_is_redacted_whole_at_every_split() {
        let r = redactor(&["abcd1234", "abcd1234-secret-rest"]);
        let body = b"x abcd1234-secret-rest y abcd1234 z";
        for i in 0..=body.len() {
            let out = streamed(&r, &[&body[..i], &body[i..]]);
            assert_eq!(out, b"x [REDACTED] y [REDACTED] z".to_vec(), "split at {i}");
        }
    }

    proptest! {
        #[test]
        fn overlapping_secrets_never_leak_across_chunks(
            short in "[a-z0-9]{4,8}",
            tail in "[a-z0-9-]{1,8}",
            parts in proptest::collection::vec("[a-z0-9 ]{0,6}", 1..5),
            cuts in proptest::collection::vec(0usize..60, 0..5),
        ) {
            let long = format!("{short}{tail}");
            let r = redactor(&[&short, &long]);
            let body = parts.join(&long).into_bytes();
            let out = streamed(&r, &split_at(&body, cuts));
            let whole = r.redact_all(&body).unwrap_or_else(|| body.clone());
            prop_assert_eq!(&out, &whole);
            prop_assert!(!out.windows(short.len()).any(|w| w == short.as_bytes()));
        }

        #[test]
        fn streaming_equals_whole_body_redaction(
            secret in "[a-z0-9]{4,12}",
            parts in proptest::collection::vec("[a-z0-9 ]{0,10}", 0..6),
            cuts in proptest::collection::vec(0usize..80, 0..5),
        ) {
            let r = redactor(&[&secret]);
            let body = parts.join(&secret).into_bytes();
            let whole = r.redact_all(&body).unwrap_or_else(|| body.clone());
            let out = streamed(&r, &split_at(&body, cuts));
            prop_assert_eq!(&out, &whole);
            prop_assert!(!out.windows(secret.len()).any(|w| w == secret.as_bytes()));
        }
    }
}
