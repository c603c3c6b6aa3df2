//! The per-channel prosody track against its floor: the whole [`ChannelAnalyzer`] over 10 s of
//! speech-like audio at 8 kHz, each stage alone, and the bare FFTs a frame needs (the cost no
//! FFT-based design can go below). Inputs are built outside the timed loops.
//!
//! Read the results as "times real time": 10 s of audio / time per iteration.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use realfft::RealFftPlanner;

use attune_core::dsp::spectrum::{SPECTRUM_WINDOW_SAMPLES, SpectrumAnalyzer};
use attune_core::dsp::{ANALYSIS_RATE_HZ, HOP_SAMPLES};
use attune_core::features::{AnalyzerConfig, ChannelAnalyzer};

const SECONDS: f64 = 10.0;

/// Speech-like test signal: a vibrato voice with missing fundamental, syllable envelope, pauses
/// and a little noise.
fn speech_like() -> Vec<f32> {
    let n = (SECONDS * ANALYSIS_RATE_HZ as f64) as usize;
    let mut state = 0x2545_f491_u32;
    (0..n)
        .map(|i| {
            let t = i as f64 / ANALYSIS_RATE_HZ as f64;
            let f0 = 140.0 + 30.0 * (2.0 * std::f64::consts::PI * 0.7 * t).sin();
            let phase = 2.0
                * std::f64::consts::PI
                * (140.0 * t
                    - 30.0 / (2.0 * std::f64::consts::PI * 0.7)
                        * (2.0 * std::f64::consts::PI * 0.7 * t).cos());
            let mut v = 0.0;
            for h in 3..20 {
                if h as f64 * f0 < 3400.0 {
                    v += (h as f64 * phase).sin() / h as f64;
                }
            }
            let syllable = (std::f64::consts::PI * t / 0.22).sin().abs();
            let in_pause = (t % 3.0) > 2.4;
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let noise = (state as f64 / u32::MAX as f64 - 0.5) * 0.002;
            let voice = if in_pause { 0.0 } else { 0.2 * v * syllable };
            (voice + noise) as f32
        })
        .collect()
}

fn whole_track(c: &mut Criterion) {
    let signal = speech_like();
    let config = AnalyzerConfig::default();
    let mut group = c.benchmark_group("prosody_track_10s_8k");
    group.throughput(Throughput::Elements(signal.len() as u64));
    group.sample_size(20);
    group.bench_function("channel_analyzer", |b| {
        b.iter(|| {
            let mut analyzer = ChannelAnalyzer::new(0, &config);
            let mut voiced = 0u32;
            let mut count =
                |f: &attune_core::features::FrameFeatures| voiced += u32::from(f.voiced);
            analyzer.push(black_box(&signal), &mut count);
            analyzer.finish(&mut count);
            black_box(voiced)
        })
    });
    group.bench_function("spectrum_and_shape_only", |b| {
        let mut spectrum = SpectrumAnalyzer::new();
        b.iter(|| {
            let mut acc = 0.0f32;
            let frames = (signal.len() - SPECTRUM_WINDOW_SAMPLES) / HOP_SAMPLES;
            for k in 0..frames {
                let start = k * HOP_SAMPLES;
                acc += spectrum.analyze(&signal[start..start + SPECTRUM_WINDOW_SAMPLES]);
                acc += spectrum.shape().flux;
            }
            black_box(acc)
        })
    });
    for size in [256usize, 512] {
        group.bench_function(format!("fft_floor_forward_{size}"), |b| {
            let mut planner = RealFftPlanner::<f32>::new();
            let fft = planner.plan_fft_forward(size);
            let mut input = fft.make_input_vec();
            let mut output = fft.make_output_vec();
            let mut scratch = fft.make_scratch_vec();
            let frames = (signal.len() - size) / HOP_SAMPLES;
            b.iter(|| {
                for k in 0..frames {
                    let start = k * HOP_SAMPLES;
                    input.copy_from_slice(&signal[start..start + size]);
                    let _ = fft.process_with_scratch(&mut input, &mut output, &mut scratch);
                }
                black_box(output[1])
            })
        });
    }
    group.finish();
}

criterion_group!(benches, whole_track);
criterion_main!(benches);
