//! Fuzz target: Genesys AudioHook messages through `HookSession`, the adapter's protocol state
//! machine: text messages (`open`, `ping`, `pause`, `resumed`, `discarded`, `close`, …) and
//! binary audio frames in any order. Input: messages separated by newlines; a line starting
//! with a 0x00 byte is a binary frame (the rest of the line). Each line also goes through the
//! ISO 8601 duration parser and the `Signature-Input` parser. Invariants: no panic, the output
//! is whole stereo frames of the negotiated encoding, each message's output is bounded (at most
//! `MAX_GAP_S` of silence or the frame itself, doubled for a mono session).
#![no_main]

use attune_service::ingest::audiohook::{
    HookSession, MAX_GAP_S, SAMPLE_RATE_HZ, parse_duration_s, parse_signature_input,
};
use attune_service::session::Encoding;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut session = HookSession::new();
    let mut out = Vec::new();
    let gap_bound = (MAX_GAP_S * f64::from(SAMPLE_RATE_HZ)) as usize * 4 + 4;
    for line in data.split(|&b| b == b'\n') {
        out.clear();
        if let Some(audio) = line.strip_prefix(&[0u8]) {
            if let Err(e) = session.on_binary(audio, &mut out) {
                let _ = (e.to_string(), e.close_code());
            }
            assert!(out.len() <= 2 * audio.len());
        } else {
            let Ok(text) = std::str::from_utf8(line) else {
                continue;
            };
            if let Some(s) = parse_duration_s(text) {
                assert!(s.is_finite() && s >= 0.0, "duration {text:?} -> {s}");
            }
            let _ = parse_signature_input(text);
            match session.on_text(text, &mut out) {
                Ok(outcome) => {
                    let _ = outcome.reply.map(|r| r.len());
                }
                Err(e) => {
                    let _ = (e.to_string(), e.close_code());
                }
            }
            assert!(out.len() <= gap_bound, "{} bytes of silence", out.len());
        }
        let frame = match session.encoding() {
            Encoding::Pcm16le => 4,
            _ => 2,
        };
        assert_eq!(out.len() % frame, 0, "output is not whole stereo frames");
    }
});
