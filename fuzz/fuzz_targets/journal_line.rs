//! Any bytes as an audit journal line: decoding never panics, and whatever decodes is a bounded
//! event whose own line is one line, no longer than `MAX_LINE_BYTES`, that decodes to it again.
#![no_main]

use keystile::audit::journal::{MAX_LINE_BYTES, decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(event) = decode(data) else { return };
    let line = encode(&event);
    assert!(line.len() <= MAX_LINE_BYTES, "{} bytes", line.len());
    assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
    assert_eq!(line.last(), Some(&b'\n'));
    assert_eq!(decode(&line[..line.len() - 1]), Some(event));
});
