//! Fuzz target: Twilio Media Streams text messages (`connected`, `start`, `media`, `dtmf`,
//! `mark`, `stop`, anything else) through `TwilioStream`, the adapter's protocol state
//! machine. Input: one config byte, then messages separated by newlines. Invariants: no panic,
//! output whole stereo frames, and each message's output bounded (gap + skew + one payload).
#![no_main]

use attune_service::ingest::twilio::{MAX_PAYLOAD_BYTES, Track, TwilioStream};
use libfuzzer_sys::fuzz_target;

const SKEWS_MS: [u32; 4] = [0, 20, 200, 1000];
const GAPS_MS: [u32; 4] = [0, 100, 1000, 5000];

fuzz_target!(|data: &[u8]| {
    let Some((&config, rest)) = data.split_first() else {
        return;
    };
    let agent = if config & 1 == 0 {
        Track::Outbound
    } else {
        Track::Inbound
    };
    let skew_ms = SKEWS_MS[usize::from(config >> 1) & 3];
    let gap_ms = GAPS_MS[usize::from(config >> 3) & 3];
    let mut stream = TwilioStream::new(agent, skew_ms, gap_ms);
    // Samples of 8 kHz per ms; at least one sample of skew (the aligner's floor).
    let bound = 2 * (8 * (u64::from(skew_ms) + u64::from(gap_ms)) + 1 + MAX_PAYLOAD_BYTES as u64);
    let mut out = Vec::new();
    for line in rest.split(|&b| b == b'\n') {
        let Ok(text) = std::str::from_utf8(line) else {
            continue;
        };
        let before = out.len();
        match stream.on_text(text, &mut out) {
            Ok(_) => {}
            Err(e) => {
                let _ = (e.to_string(), e.close_code());
            }
        }
        let grown = (out.len() - before) as u64;
        assert!(
            grown <= bound,
            "one message emitted {grown} bytes (bound {bound})"
        );
        assert_eq!(out.len() % 2, 0, "output is not whole stereo frames");
        // Keep memory flat across a long input: the output is the caller's business.
        out.clear();
    }
    stream.finish(&mut out);
    assert_eq!(out.len() % 2, 0);
    assert!(stream.frames_late <= stream.frames);
});
