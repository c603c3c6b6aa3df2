//! The live service's per-call cost: one call's [`CallAnalyzer`] over 10 s of a real stereo
//! call (examples/calls/calm.wav, 8 kHz) fed in 100 ms chunks as a session does, and the
//! session's decoding of those chunks (G.711 mu-law and PCM16 into per-channel samples).
//! Throughput is in seconds of stereo call audio: "N elem/s" = N× real time for one call on
//! one core, i.e. how many live calls one core could analyse.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use attune_core::call::{CallAnalyzer, CallConfig};
use attune_service::session::{Encoding, decode_chunk, encode_chunk};

const SECONDS: usize = 10;
const CHUNK_FRAMES: usize = 800;

fn bench(c: &mut Criterion) {
    let audio = attune_qa::files::read_wav(Path::new("examples/calls/calm.wav")).expect("calm.wav");
    let n = audio.sample_rate_hz as usize * SECONDS;
    let (left, right) = (&audio.channels[0][..n], &audio.channels[1][..n]);
    let model =
        Arc::new(attune_qa::files::load_model(Path::new("models/emotion.json")).expect("model"));
    let config = CallConfig {
        sample_rate_hz: audio.sample_rate_hz,
        ..CallConfig::default()
    };

    let mut group = c.benchmark_group("service");
    group.sample_size(10);
    group.throughput(Throughput::Elements(SECONDS as u64));
    // The shipped rules, and the same without the caller_upset onset path (its short caller
    // windows are its whole cost).
    let mut without_onset = config.clone();
    without_onset.rules.caller_upset_onset = None;
    for (name, config) in [
        ("call_analyzer_10s_stereo_8k", &config),
        (
            "call_analyzer_10s_stereo_8k_without_onset_windows",
            &without_onset,
        ),
    ] {
        group.bench_function(name, |b| {
            let mut events = Vec::with_capacity(64);
            b.iter(|| {
                let mut call = CallAnalyzer::new(config.clone(), model.clone()).expect("call");
                for (l, r) in left.chunks(CHUNK_FRAMES).zip(right.chunks(CHUNK_FRAMES)) {
                    call.push(0, l, &mut events);
                    call.push(1, r, &mut events);
                    events.clear();
                }
                black_box(call.analysed_s())
            })
        });
    }
    for encoding in [Encoding::Mulaw, Encoding::Pcm16le] {
        let chunks: Vec<Vec<u8>> = left
            .chunks(CHUNK_FRAMES)
            .zip(right.chunks(CHUNK_FRAMES))
            .map(|(l, r)| {
                let mut bytes = Vec::new();
                encode_chunk(encoding, &[l, r], &mut bytes);
                bytes
            })
            .collect();
        let mut decoded = [
            Vec::with_capacity(CHUNK_FRAMES),
            Vec::with_capacity(CHUNK_FRAMES),
        ];
        group.bench_function(format!("decode_10s_stereo_8k_{encoding:?}"), |b| {
            b.iter(|| {
                for chunk in &chunks {
                    decode_chunk(encoding, 2, black_box(chunk), &mut decoded);
                }
                black_box(decoded[0].len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
