//! Criterion bench of the voice-quality stage: ns per `VoiceQualityAnalyzer::analyze` call on
//! voiced telephone-like input (glottal pulses with a little jitter, a formant and noise at ~20 dB).
use std::hint::black_box;

use attune_core::dsp::voice_quality::VoiceQualityAnalyzer;
use criterion::{Criterion, criterion_group, criterion_main};

const FS: f32 = 8000.0;

/// Voiced signal at `f0`: Gaussian-derivative pulses with +-1 % period wobble, a 700 Hz formant
/// and deterministic noise about 20 dB down.
fn voiced(len: usize, f0: f32) -> Vec<f32> {
    let sigma = 0.0003 * FS;
    let mut x = vec![0.0f32; len];
    let mut t = 2.3f32;
    let mut k = 0u32;
    while t < len as f32 {
        let lo = (t - 10.0 * sigma).max(0.0) as usize;
        let hi = ((t + 10.0 * sigma) as usize).min(len);
        for (i, v) in x.iter_mut().enumerate().take(hi).skip(lo) {
            let u = (i as f32 - t) / sigma;
            *v -= u * (-0.5 * u * u).exp();
        }
        t += FS / f0 * (1.0 + 0.01 * ((k * 7919) % 13) as f32 / 6.0 - 0.01);
        k += 1;
    }
    let (r, f) = ((-std::f32::consts::PI * 120.0 / FS).exp(), 700.0 / FS);
    let (a1, a2) = (2.0 * r * (2.0 * std::f32::consts::PI * f).cos(), -r * r);
    let (mut y1, mut y2, mut seed) = (0.0f32, 0.0f32, 12345u32);
    for v in x.iter_mut() {
        let y = (1.0 - r) * *v + a1 * y1 + a2 * y2;
        y2 = y1;
        y1 = y;
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        *v = 0.3 * y + 0.01 * ((seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5);
    }
    x
}

fn bench_voice_quality(c: &mut Criterion) {
    for f0 in [90.0f32, 140.0, 220.0, 400.0] {
        let x = voiced(16_000, f0);
        let mut vq = VoiceQualityAnalyzer::new();
        let w = vq.window_samples();
        let windows: Vec<&[f32]> = (0..(x.len() - w) / 80)
            .map(|k| &x[k * 80..k * 80 + w])
            .collect();
        assert!(windows.iter().all(|win| vq.analyze(win, f0).is_some()));
        let mut i = 0;
        c.bench_function(&format!("voice_quality_analyze_f0_{f0}"), |b| {
            b.iter(|| {
                i = (i + 1) % windows.len();
                black_box(vq.analyze(black_box(windows[i]), f0))
            })
        });
    }
}

criterion_group!(benches, bench_voice_quality);
criterion_main!(benches);
