//! The signature parsers never panic, whatever `Signature-Input`, `Signature` and
//! `Content-Digest` they are given; a parsed signature's
//! `@signature-params` line parses again to the same signature.
#![no_main]

use keystile::crypto::httpsig::digest::check_content_digest;
use keystile::crypto::httpsig::parse_signatures;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (input, rest) = text.split_once('\n').unwrap_or((text, ""));
    let (signature, digest) = rest.split_once('\n').unwrap_or((rest, ""));
    if let Ok(all) = parse_signatures(Some(input), Some(signature)) {
        for sig in all {
            let again = format!("{}={}", sig.label, sig.params_line);
            let sig_field = format!("{}=:{}:", sig.label, "AA==");
            let reparsed = parse_signatures(Some(&again), Some(&sig_field)).expect("canonical form re-parses");
            assert_eq!(reparsed[0].components, sig.components);
            assert_eq!(reparsed[0].params_line, sig.params_line);
        }
    }
    let _ = check_content_digest(digest, input.as_bytes());
});
