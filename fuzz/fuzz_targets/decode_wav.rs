//! Fuzz target: arbitrary bytes through the WAV reader (header parser and every sample decoder)
//! and through the raw-stream decoders. Any panic, hang or out-of-range sample is a bug.
#![no_main]

use attune_core::audio::{AudioReader, RawFormat, SampleEncoding};
use libfuzzer_sys::fuzz_target;

const ENCODINGS: [SampleEncoding; 8] = [
    SampleEncoding::PcmU8,
    SampleEncoding::Pcm16,
    SampleEncoding::Pcm24,
    SampleEncoding::Pcm32,
    SampleEncoding::Float32,
    SampleEncoding::Float64,
    SampleEncoding::MuLaw,
    SampleEncoding::ALaw,
];

/// Reads every frame, checking the reader's invariants.
fn drain(mut reader: AudioReader) {
    let channels = usize::from(reader.spec().channels);
    assert!(channels >= 1);
    let mut out = vec![Vec::new(); channels];
    // Vary the chunk size so partial frames and buffer boundaries get exercised.
    let mut max_frames = 1;
    while let Ok(n) = reader.read_frames(max_frames, &mut out) {
        if n == 0 {
            break;
        }
        assert!(n <= max_frames);
        for ch in &out {
            assert_eq!(ch.len(), n);
            assert!(ch.iter().all(|v| v.is_finite() && (-1.0..=1.0).contains(v)));
        }
        max_frames = max_frames * 7 % 4093 + 1;
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(reader) = AudioReader::from_wav_bytes(data.to_vec()) {
        drain(reader);
    }
    // The first byte picks a raw format; the rest is the stream.
    if let Some((&selector, rest)) = data.split_first() {
        let format = RawFormat {
            encoding: ENCODINGS[usize::from(selector & 7)],
            sample_rate_hz: 8_000,
            channels: u16::from(selector >> 3) % 4 + 1,
        };
        let reader =
            AudioReader::from_raw_reader(Box::new(std::io::Cursor::new(rest.to_vec())), format)
                .expect("valid raw format");
        drain(reader);
    }
});
