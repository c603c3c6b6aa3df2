//! Fuzz target: G.711 mu-law and A-law. Every byte decodes as its table says and re-encodes to
//! itself (mu-law's two zeros aside); every 16-bit sample round-trips within one step.
#![no_main]

use attune_core::audio::g711::{
    ALAW_TO_LINEAR, MULAW_TO_LINEAR, decode_alaw, decode_mulaw, encode_alaw, encode_mulaw,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for &code in data {
        let mu = decode_mulaw(code);
        let a = decode_alaw(code);
        assert_eq!(mu, MULAW_TO_LINEAR[usize::from(code)]);
        assert_eq!(a, ALAW_TO_LINEAR[usize::from(code)]);
        assert_eq!(encode_alaw(a), code, "a-law {code:#04x}");
        // Mu-law has +0 (0xFF) and -0 (0x7F); both encode back as 0xFF.
        let expected = if code == 0x7F { 0xFF } else { code };
        assert_eq!(encode_mulaw(mu), expected, "mu-law {code:#04x}");
    }
    for pair in data.chunks_exact(2) {
        let sample = i16::from_le_bytes([pair[0], pair[1]]);
        let s = i32::from(sample);
        let mu = i32::from(decode_mulaw(encode_mulaw(sample)));
        let a = i32::from(decode_alaw(encode_alaw(sample)));
        assert!((mu - s).abs() <= 1024 + 700, "mu-law {sample} -> {mu}");
        assert!((a - s).abs() <= 1024 + 600, "a-law {sample} -> {a}");
        if s.abs() < 1000 {
            assert!((mu - s).abs() <= 32, "mu-law small {sample} -> {mu}");
            assert!((a - s).abs() <= 32, "a-law small {sample} -> {a}");
        }
        // Encoding is monotonic in the decoded domain: a larger sample never decodes smaller.
        if sample < i16::MAX {
            let next = sample + 1;
            assert!(i32::from(decode_mulaw(encode_mulaw(next))) >= mu);
            assert!(i32::from(decode_alaw(encode_alaw(next))) >= a);
        }
    }
});
