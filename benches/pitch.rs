//! Criterion bench of the pitch tracker alone: time per 10 ms frame at 8 kHz on real telephone
//! speech (a pitchref_world `tel` file when the shared data is present, else a synthetic voice
//! with glides, pauses and noise). One iteration = one `push_frame`.
use std::hint::black_box;
use std::path::Path;

use attune_core::dsp::pitch::{PitchConfig, PitchTracker};
use attune_core::dsp::{ANALYSIS_RATE_HZ, HOP_SAMPLES};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn speech_8k() -> Vec<f32> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/pitchref_world/tel");
    let mut samples = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "wav"))
            .take(5)
        {
            if let Ok(mut reader) = hound::WavReader::open(path)
                && reader.spec().sample_rate == ANALYSIS_RATE_HZ
                && reader.spec().channels == 1
            {
                samples.extend(
                    reader
                        .samples::<i16>()
                        .map(|s| s.unwrap_or(0) as f32 / 32768.0),
                );
            }
        }
    }
    if samples.is_empty() {
        // 10 s of a synthetic voice: 1 s glides between 90 and 250 Hz, every third second a pause
        // with faint noise.
        let mut phase = 0.0f32;
        let mut noise = 12345u32;
        for n in 0..10 * ANALYSIS_RATE_HZ as usize {
            let t = n as f32 / ANALYSIS_RATE_HZ as f32;
            noise = noise.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let white = (noise >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
            let f0 = 90.0 + 160.0 * (0.5 + 0.5 * (std::f32::consts::PI * t).sin());
            phase += std::f32::consts::TAU * f0 / ANALYSIS_RATE_HZ as f32;
            let voiced: f32 = (2..12).map(|k| (k as f32 * phase).sin() / k as f32).sum();
            let gate = if (t as usize) % 3 == 2 { 0.0 } else { 0.3 };
            samples.push(gate * voiced + 0.01 * white);
        }
    }
    samples
}

fn bench_pitch(c: &mut Criterion) {
    let samples = speech_8k();
    let mut tracker = PitchTracker::new(PitchConfig::default());
    let window = tracker.window_samples();
    let half = window / 2;
    let mut padded = vec![0.0f32; half];
    padded.extend_from_slice(&samples);
    padded.resize(padded.len() + window, 0.0);
    let frames = samples.len() / HOP_SAMPLES;
    let starts: Vec<usize> = (0..frames).map(|k| k * HOP_SAMPLES).collect();

    let mut group = c.benchmark_group("pitch");
    group.throughput(Throughput::Elements(1));
    let mut next = 0usize;
    group.bench_function("push_frame (one 10 ms frame, 8 kHz)", |b| {
        b.iter(|| {
            let start = starts[next];
            next = if next + 1 == starts.len() {
                0
            } else {
                next + 1
            };
            black_box(tracker.push_frame(black_box(&padded[start..start + window])))
        })
    });

    // The floor the budget is expressed in: one 512-point FFT autocorrelation (forward, power,
    // inverse), measured under the same load.
    let mut planner = realfft::RealFftPlanner::<f32>::new();
    let forward = planner.plan_fft_forward(512);
    let inverse = planner.plan_fft_inverse(512);
    let mut input = forward.make_input_vec();
    let mut spectrum = forward.make_output_vec();
    let mut output = inverse.make_output_vec();
    let mut scratch = vec![
        realfft::num_complex::Complex32::default();
        forward.get_scratch_len().max(inverse.get_scratch_len())
    ];
    group.bench_function("reference: 512-point FFT autocorrelation", |b| {
        b.iter(|| {
            input.copy_from_slice(&padded[4000..4512]);
            forward
                .process_with_scratch(&mut input, &mut spectrum, &mut scratch)
                .ok();
            for bin in spectrum.iter_mut() {
                *bin = realfft::num_complex::Complex32::new(bin.norm_sqr(), 0.0);
            }
            inverse
                .process_with_scratch(&mut spectrum, &mut output, &mut scratch)
                .ok();
            black_box(output[10])
        })
    });
    group.finish();
}

criterion_group!(benches, bench_pitch);
criterion_main!(benches);
