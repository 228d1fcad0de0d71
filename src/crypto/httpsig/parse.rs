//! `Signature-Input` and `Signature` (RFC 9421 §4) parsed as RFC 8941 dictionaries.
//!
//! Every label present in `Signature-Input` is returned with its signature; the caller picks
//! one. Anything malformed refuses the whole request: a dictionary that does not parse, a label
//! given twice, a member of the wrong shape, a parameter of the wrong type, a label without a
//! signature.

use http::HeaderMap;
use sfv::visitor::{DictionaryVisitor, EntryVisitor, Ignored};
use sfv::{BareItem, Dictionary, InnerList, KeyRef, ListEntry, ListSerializer, Parser};

use super::base::Component;
use super::{MAX_FIELD_BYTES, SigError};

/// One labelled signature with its covered components and parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedSignature {
    pub label: String,
    /// Covered components, in the signer's order.
    pub components: Vec<Component>,
    pub created: Option<i64>,
    pub expires: Option<i64>,
    pub nonce: Option<String>,
    pub keyid: Option<String>,
    pub alg: Option<String>,
    /// The `@signature-params` value: the inner list with its parameters, serialized.
    pub params_line: String,
    /// The signature bytes.
    pub signature: Vec<u8>,
}

/// All field lines of `name`, combined as RFC 9110 §5.3 says (joined by `", "`). `None` when
/// absent; refused when larger than [`MAX_FIELD_BYTES`] or not visible ASCII.
pub fn combined_field(headers: &HeaderMap, name: &str) -> Result<Option<String>, SigError> {
    let mut out: Option<String> = None;
    for value in headers.get_all(name) {
        let text = value.to_str().map_err(|_| SigError::Invalid("field is not ASCII"))?;
        let joined = out.get_or_insert_with(String::new);
        if !joined.is_empty() {
            joined.push_str(", ");
        }
        if joined.len() + text.len() > MAX_FIELD_BYTES {
            return Err(SigError::Invalid("signature field too large"));
        }
        joined.push_str(text);
    }
    Ok(out)
}

/// Parses the two fields. `Missing` when either is absent or empty.
pub fn parse_signatures(input: Option<&str>, signature: Option<&str>) -> Result<Vec<ParsedSignature>, SigError> {
    let (Some(input), Some(signature)) = (input, signature) else {
        return Err(SigError::Missing);
    };
    if input.trim().is_empty() || signature.trim().is_empty() {
        return Err(SigError::Missing);
    }
    if input.len() > MAX_FIELD_BYTES || signature.len() > MAX_FIELD_BYTES {
        return Err(SigError::Invalid("signature field too large"));
    }
    let inputs = dictionary(input, "malformed Signature-Input")?;
    let signatures = dictionary(signature, "malformed Signature")?;
    let mut out = Vec::with_capacity(inputs.len());
    for (label, entry) in &inputs {
        let ListEntry::InnerList(list) = entry else {
            return Err(SigError::Invalid("Signature-Input member is not an inner list"));
        };
        let sig = match signatures.get(label.as_str()) {
            Some(ListEntry::Item(item)) => item
                .bare_item
                .as_byte_sequence()
                .ok_or(SigError::Invalid("Signature member is not a byte sequence"))?
                .to_vec(),
            Some(ListEntry::InnerList(_)) => return Err(SigError::Invalid("Signature member is not a byte sequence")),
            None => return Err(SigError::Invalid("a Signature-Input label has no Signature")),
        };
        out.push(signature_input(label.as_str(), list, sig)?);
    }
    Ok(out)
}

/// Parses a dictionary, refusing repeated keys (RFC 8941 would keep the last one silently; two
/// meanings for one label is not something a verifier should pick between).
fn dictionary(text: &str, what: &'static str) -> Result<Dictionary, SigError> {
    let keys = Parser::new(text)
        .parse_dictionary_with_visitor(KeyCollector::default())
        .map_err(|_| SigError::Invalid(what))?;
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != keys.len() {
        return Err(SigError::Invalid("duplicate label"));
    }
    Parser::new(text)
        .parse::<Dictionary>()
        .map_err(|_| SigError::Invalid(what))
}

#[derive(Default)]
struct KeyCollector(Vec<String>);

impl<'de> DictionaryVisitor<'de> for KeyCollector {
    type Out = Vec<String>;
    type Error = std::convert::Infallible;

    fn entry(&mut self, key: &'de KeyRef) -> Result<impl EntryVisitor<'de>, Self::Error> {
        self.0.push(key.as_str().to_owned());
        Ok(Ignored)
    }

    fn finish(self) -> Result<Self::Out, Self::Error> {
        Ok(self.0)
    }
}

fn signature_input(label: &str, list: &InnerList, signature: Vec<u8>) -> Result<ParsedSignature, SigError> {
    let mut components = Vec::with_capacity(list.items.len());
    for item in &list.items {
        let name = item
            .bare_item
            .as_string()
            .ok_or(SigError::Invalid("component identifier is not a string"))?;
        if !item.params.is_empty() {
            return Err(SigError::Invalid("component parameters are not supported"));
        }
        let component = Component::parse(name.as_str())?;
        if components.contains(&component) {
            return Err(SigError::Invalid("component covered twice"));
        }
        components.push(component);
    }
    let mut parsed = ParsedSignature {
        label: label.to_owned(),
        components,
        created: None,
        expires: None,
        nonce: None,
        keyid: None,
        alg: None,
        params_line: String::new(),
        signature,
    };
    for (key, value) in &list.params {
        match key.as_str() {
            "created" => parsed.created = Some(integer(value)?),
            "expires" => parsed.expires = Some(integer(value)?),
            "nonce" => parsed.nonce = Some(string(value)?),
            "keyid" => parsed.keyid = Some(string(value)?),
            "alg" => parsed.alg = Some(string(value)?),
            "tag" => {
                string(value)?;
            }
            // Other parameters are covered by the signature (they are in `@signature-params`)
            // and otherwise ignored, as RFC 9421 allows.
            _ => {}
        }
    }
    let entry = ListEntry::InnerList(list.clone());
    let mut ser = ListSerializer::new();
    ser.members([&entry]);
    parsed.params_line = ser.finish().ok_or(SigError::Invalid("empty Signature-Input member"))?;
    Ok(parsed)
}

fn integer(value: &BareItem) -> Result<i64, SigError> {
    value
        .as_integer()
        .map(i64::from)
        .ok_or(SigError::Invalid("signature parameter has the wrong type"))
}

fn string(value: &BareItem) -> Result<String, SigError> {
    value
        .as_string()
        .map(|s| s.as_str().to_owned())
        .ok_or(SigError::Invalid("signature parameter has the wrong type"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIG: &str = "sig1=:AAAA:";

    fn one(input: &str) -> Result<ParsedSignature, SigError> {
        parse_signatures(Some(input), Some(SIG)).map(|mut v| v.remove(0))
    }

    #[test]
    fn any_label_order_and_extra_parameters_are_read() {
        let p = one(r#"sig1=("@target-uri" "@method" "@authority" "content-digest");alg="ed25519";nonce="abc";keyid="k";expires=20;created=10;ext=?1;weight=1.5"#).unwrap();
        assert_eq!(p.label, "sig1");
        assert_eq!(
            p.components,
            vec![
                Component::TargetUri,
                Component::Method,
                Component::Authority,
                Component::Header("content-digest".into())
            ]
        );
        assert_eq!((p.created, p.expires), (Some(10), Some(20)));
        assert_eq!(p.nonce.as_deref(), Some("abc"));
        assert_eq!(p.keyid.as_deref(), Some("k"));
        assert_eq!(p.alg.as_deref(), Some("ed25519"));
        assert_eq!(
            p.params_line,
            r#"("@target-uri" "@method" "@authority" "content-digest");alg="ed25519";nonce="abc";keyid="k";expires=20;created=10;ext;weight=1.5"#,
            "re-serialized canonically (RFC 8941 writes a true boolean parameter bare)"
        );
        assert_eq!(p.signature, vec![0, 0, 0]);
    }

    #[test]
    fn several_labels_are_all_returned_with_their_signatures() {
        let all = parse_signatures(
            Some(r#"a=("@method");created=1, b=("@authority");created=2"#),
            Some("b=:AQ==:, a=:Ag==:"),
        )
        .unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].label.as_str(), all[0].signature.as_slice()), ("a", &[2u8][..]));
        assert_eq!((all[1].label.as_str(), all[1].signature.as_slice()), ("b", &[1u8][..]));
    }

    #[test]
    fn absent_or_empty_fields_are_missing() {
        assert_eq!(parse_signatures(None, Some(SIG)), Err(SigError::Missing));
        assert_eq!(parse_signatures(Some("sig1=()"), None), Err(SigError::Missing));
        assert_eq!(parse_signatures(Some("  "), Some(SIG)), Err(SigError::Missing));
    }

    #[test]
    fn malformed_dictionaries_are_invalid() {
        for bad in [
            "sig1=(\"@method\"",
            "sig1=(\"@method\");created=",
            "sig1=(\"@method\"),,",
            "Sig1=(\"@method\")",
            "sig1=(\"@method\") trailing",
            "sig1=(\"@method\");created=1.5.5",
            "sig1=(\"unterminated)",
            "1sig=(\"@method\")",
            "sig1=(\"\\x\")",
        ] {
            assert!(matches!(one(bad), Err(SigError::Invalid(_))), "{bad}");
        }
        assert!(matches!(
            parse_signatures(Some("sig1=(\"@method\")"), Some("sig1=:not base64!:")),
            Err(SigError::Invalid(_))
        ));
    }

    #[test]
    fn duplicate_labels_are_refused_in_either_field() {
        assert_eq!(
            one(r#"sig1=("@method");created=1, sig1=("@authority");created=1"#),
            Err(SigError::Invalid("duplicate label"))
        );
        assert_eq!(
            parse_signatures(Some(r#"sig1=("@method")"#), Some("sig1=:AA==:, sig1=:AQ==:")),
            Err(SigError::Invalid("duplicate label"))
        );
    }

    #[test]
    fn members_and_parameters_of_the_wrong_type_are_invalid() {
        for bad in [
            r#"sig1="@method""#,
            r#"sig1=(@method)"#,
            r#"sig1=("@method" 1)"#,
            r#"sig1=("@method");created="1""#,
            r#"sig1=("@method");expires=?1"#,
            r#"sig1=("@method");nonce=abc"#,
            r#"sig1=("@method");keyid=1"#,
            r#"sig1=("@method");alg=ed25519"#,
            r#"sig1=("@method";req)"#,
            r#"sig1=("@method" "@method")"#,
            r#"sig1=("@unknown")"#,
            r#"sig1=("@signature-params")"#,
            r#"sig1=("Content-Type")"#,
        ] {
            assert!(matches!(one(bad), Err(SigError::Invalid(_))), "{bad}");
        }
        assert!(matches!(
            parse_signatures(Some(r#"sig1=("@method")"#), Some("sig1=(:AA==:)")),
            Err(SigError::Invalid(_))
        ));
        assert!(matches!(
            parse_signatures(Some(r#"sig1=("@method")"#), Some("other=:AA==:")),
            Err(SigError::Invalid(_))
        ));
    }

    #[test]
    fn huge_input_is_refused_before_parsing() {
        let huge = format!("sig1=(\"@method\");x=\"{}\"", "a".repeat(MAX_FIELD_BYTES));
        assert_eq!(one(&huge), Err(SigError::Invalid("signature field too large")));
        let mut headers = HeaderMap::new();
        for _ in 0..200 {
            headers.append(
                "signature",
                "sig1=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA:"
                    .parse()
                    .unwrap(),
            );
        }
        assert_eq!(
            combined_field(&headers, "signature"),
            Err(SigError::Invalid("signature field too large"))
        );
    }

    #[test]
    fn field_lines_are_combined_in_order() {
        let mut headers = HeaderMap::new();
        headers.append("signature-input", "a=(\"@method\")".parse().unwrap());
        headers.append("signature-input", "b=(\"@path\")".parse().unwrap());
        assert_eq!(
            combined_field(&headers, "signature-input").unwrap().as_deref(),
            Some("a=(\"@method\"), b=(\"@path\")")
        );
        assert_eq!(combined_field(&headers, "signature").unwrap(), None);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_input_never_panics(input in ".{0,300}", sig in ".{0,100}") {
            let _ = parse_signatures(Some(&input), Some(&sig));
        }
    }
}
