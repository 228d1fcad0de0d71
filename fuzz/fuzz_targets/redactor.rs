//! Streaming redaction equals whole-body redaction and never lets a secret through, whatever
//! the body and however it is chunked.
#![no_main]

use keystile::proxy::redact::{Redactor, encoded_forms};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 {
        return;
    }
    let secret_len = 4 + (data[0] as usize % 12);
    let Some(secret) = data.get(1..1 + secret_len) else { return };
    // Alphanumeric secrets, so that `[REDACTED]` next to body bytes can never spell one.
    if !secret.iter().all(u8::is_ascii_alphanumeric) {
        return;
    }
    let Ok(secret) = std::str::from_utf8(secret) else { return };
    let body = &data[1 + secret_len..];
    let redactor = Redactor::new(&encoded_forms(secret));
    let mut stream = redactor.stream();
    let mut out = Vec::new();
    for chunk in body.chunks(1 + data[0] as usize % 7) {
        out.extend_from_slice(&stream.push(chunk));
    }
    out.extend_from_slice(&stream.finish());
    assert!(!out.windows(secret.len()).any(|w| w == secret.as_bytes()));
});
