//! The dialog tracker's cost against the signal core's: both channels of 10 s of a call through
//! two [`ChannelAnalyzer`]s, and the same call's 1000 frame pairs through the
//! [`DialogTracker`] (frames built outside the timed loop). The budget: tracking adds
//! under 5 % to the per-call cost of the signal core.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use attune_core::dialog::{DialogConfig, DialogTracker};
use attune_core::dsp::ANALYSIS_RATE_HZ;
use attune_core::features::{AnalyzerConfig, ChannelAnalyzer, FrameFeatures};

const SECONDS: f64 = 10.0;

/// A voice with missing fundamental and a syllable envelope, talking in `spans` (seconds),
/// plus a faint copy of `other` (crosstalk) and a little noise.
fn channel(spans: &[(f64, f64)], seed: u32) -> Vec<f32> {
    let n = (SECONDS * ANALYSIS_RATE_HZ as f64) as usize;
    let mut state = 0x2545_f491_u32 ^ seed;
    (0..n)
        .map(|i| {
            let t = i as f64 / ANALYSIS_RATE_HZ as f64;
            let f0 =
                120.0 + 40.0 * seed as f64 + 20.0 * (2.0 * std::f64::consts::PI * 0.7 * t).sin();
            let mut v = 0.0;
            for h in 3..20 {
                if h as f64 * f0 < 3400.0 {
                    v += (2.0 * std::f64::consts::PI * h as f64 * f0 * t).sin() / h as f64;
                }
            }
            let syllable = (std::f64::consts::PI * t / 0.22).sin().abs();
            let talking = spans.iter().any(|&(s, e)| (s..e).contains(&t));
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let noise = (state as f64 / u32::MAX as f64 - 0.5) * 0.002;
            let voice = if talking { 0.2 * v * syllable } else { 0.0 };
            (voice + noise) as f32
        })
        .collect()
}

fn frames_of(signal: &[f32], config: &AnalyzerConfig) -> Vec<FrameFeatures> {
    let mut analyzer = ChannelAnalyzer::new(0, config);
    let mut out = Vec::new();
    analyzer.push(signal, &mut |f| out.push(*f));
    analyzer.finish(&mut |f| out.push(*f));
    out
}

fn tracker_vs_signal_core(c: &mut Criterion) {
    let agent = channel(&[(0.2, 3.5), (6.0, 9.5)], 0);
    let caller = channel(&[(3.2, 6.3), (7.0, 7.4)], 1);
    let config = AnalyzerConfig::default();
    let agent_frames = frames_of(&agent, &config);
    let caller_frames = frames_of(&caller, &config);
    let frames = agent_frames.len().min(caller_frames.len());

    let mut group = c.benchmark_group("dialog_10s_8k");
    group.throughput(Throughput::Elements(frames as u64));
    group.sample_size(20);
    group.bench_function("signal_core_both_channels", |b| {
        b.iter(|| {
            let mut count = 0u32;
            for signal in [&agent, &caller] {
                let mut analyzer = ChannelAnalyzer::new(0, &config);
                let mut tally = |f: &FrameFeatures| count += u32::from(f.voiced);
                analyzer.push(black_box(signal), &mut tally);
                analyzer.finish(&mut tally);
            }
            black_box(count)
        })
    });
    group.bench_function("dialog_tracker", |b| {
        b.iter(|| {
            let mut tracker = DialogTracker::new(DialogConfig::default()).unwrap();
            let mut events = 0usize;
            for (a, c) in agent_frames[..frames].iter().zip(&caller_frames[..frames]) {
                events += tracker.push(black_box(a), black_box(c)).len();
            }
            events += tracker.finish().len();
            black_box((events, tracker.report().turns.len()))
        })
    });
    group.finish();
}

criterion_group!(benches, tracker_vs_signal_core);
criterion_main!(benches);
